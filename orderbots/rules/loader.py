"""Loading rule files (``rules/*.yaml``) into a ``RuleSet``, with file:line errors.

A rule file is a mapping::

    modules: [mycompany.orderrules]     # optional: Python modules with custom @rule kinds
    rules:
      - code: unknown_item              # unique across all rule files
        kind: known_item                # a registered rule kind (see registry.kind_names())
        severity: reject                # reject | hold | warn
        params: {}                      # the kind's parameters, if any
        message:                        # one text per locale, placeholders in {braces}
          en: "Item {sku} is not in our catalogue."
          zh-CN: "物料 {sku} 不在我们的目录中。"
        description: optional note for people

Every YAML file in the rules folder is a rule file. Anything wrong (bad YAML,
unknown kind, key or parameter, missing code/severity/message, a bad severity,
a message locale or placeholder that does not exist, a parameter value the kind
refuses, a code used twice) raises ``ConfigError`` naming file, line and reason.
"""

from __future__ import annotations

import importlib
import string
from pathlib import Path
from typing import Any

from .. import yamlfile
from ..errors import ConfigError
from ..model import LOCALES, SEVERITIES
from ..yamlfile import LineDict
from . import registry
from .engine import Rule, RuleSet

RULE_KEYS = ("code", "kind", "severity", "params", "message", "description")
FILE_KEYS = ("modules", "rules")


def load_rules(directory: Path) -> RuleSet:
    """Compile every ``*.yaml`` file in ``directory`` (sorted by name) into one ``RuleSet``."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise ConfigError(f"{directory}: no rule files (*.yaml); ship at least rules/orders.yaml")
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in files:
        for r in load_rule_file(path):
            if r.code in seen:
                raise ConfigError(f"{r.where}: rule code {r.code!r} is already used at {seen[r.code]}; "
                                  f"codes must be unique")
            seen[r.code] = r.where
            rules.append(r)
    return RuleSet(rules)


def load_rule_file(path: Path) -> list[Rule]:
    """The compiled rules of one file; ``ConfigError`` (file:line: reason) if it is malformed."""
    doc = yamlfile.load(path)
    if not isinstance(doc, LineDict):
        raise ConfigError(f"{path}:1: a rule file must be a mapping with a 'rules:' list")
    _no_unknown_keys(path, doc, FILE_KEYS, "rule file")
    if "rules" not in doc:
        raise ConfigError(f"{path}:{doc.line}: no 'rules:' list (every YAML file in the rules folder is a rule file)")
    _import_modules(path, doc)
    entries = doc["rules"]
    if not isinstance(entries, list):
        raise ConfigError(f"{yamlfile.where(path, doc, 'rules')}: 'rules' must be a list of rules")
    return [_compile(path, entry, doc.line_of("rules")) for entry in entries]


def _import_modules(path: Path, doc: LineDict) -> None:
    modules = doc.get("modules") or []
    at = yamlfile.where(path, doc, "modules")
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError(f"{at}: 'modules' must be a list of Python module names")
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{at}: cannot import rule module {name!r}: {exc}") from exc


def _compile(path: Path, entry: Any, list_line: int) -> Rule:
    if not isinstance(entry, LineDict):
        raise ConfigError(f"{path}:{list_line}: each rule must be a mapping with code, kind, severity and "
                          f"message, not {entry!r}")
    _no_unknown_keys(path, entry, RULE_KEYS, "rule")
    for key in ("code", "kind", "severity", "message"):
        if key not in entry or entry[key] in (None, ""):
            raise ConfigError(f"{path}:{entry.line}: rule is missing '{key}'")
    code = entry["code"]
    if not isinstance(code, str) or not code.replace("_", "").isalnum():
        raise ConfigError(f"{yamlfile.where(path, entry, 'code')}: code {code!r} must be a word "
                          f"(letters, digits, _)")
    severity = entry["severity"]
    if severity not in SEVERITIES:
        raise ConfigError(f"{yamlfile.where(path, entry, 'severity')}: rule {code}: severity {severity!r} "
                          f"must be one of {', '.join(SEVERITIES)}")
    kind = registry.kind(entry["kind"]) if isinstance(entry["kind"], str) else None
    if kind is None:
        raise ConfigError(f"{yamlfile.where(path, entry, 'kind')}: rule {code}: unknown rule kind "
                          f"{entry['kind']!r}; known kinds: {', '.join(registry.kind_names())}")
    params = _params(path, entry, code, kind)
    messages = _messages(path, entry, code, kind)
    try:
        check = kind.build(params)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{yamlfile.where(path, entry, 'params')}: rule {code}: bad params for "
                          f"{kind.name}: {exc}") from exc
    return Rule(code, severity, messages, check, kind.name, f"{path}:{entry.line}")


def _params(path: Path, entry: LineDict, code: str, kind: registry.RuleKind) -> dict[str, Any]:
    params = entry.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, LineDict):
        raise ConfigError(f"{yamlfile.where(path, entry, 'params')}: rule {code}: 'params' must be a mapping")
    for name in params:
        if name not in kind.params:
            accepted = ", ".join(kind.params) or "none"
            raise ConfigError(f"{yamlfile.where(path, params, name)}: rule {code}: unknown param {name!r} for "
                              f"kind {kind.name} (accepted: {accepted})")
    missing = [n for n, required in kind.params.items() if required and n not in params]
    if missing:
        raise ConfigError(f"{yamlfile.where(path, entry, 'params' if 'params' in entry else None)}: rule {code}: "
                          f"kind {kind.name} needs param(s) {', '.join(missing)}")
    return dict(params)


def _messages(path: Path, entry: LineDict, code: str, kind: registry.RuleKind) -> dict[str, str]:
    message = entry["message"]
    if not isinstance(message, LineDict):
        raise ConfigError(f"{yamlfile.where(path, entry, 'message')}: rule {code}: 'message' must map each "
                          f"locale ({', '.join(LOCALES)}) to a text")
    for locale in LOCALES:
        if not isinstance(message.get(locale), str) or not message[locale].strip():
            raise ConfigError(f"{yamlfile.where(path, entry, 'message')}: rule {code}: message for locale "
                              f"{locale!r} is missing")
    allowed = None if kind.placeholders is None else {*kind.placeholders, *registry.COMMON_PLACEHOLDERS}
    for locale, text in message.items():
        at = yamlfile.where(path, message, locale)
        if locale not in LOCALES:
            raise ConfigError(f"{at}: rule {code}: unknown locale {locale!r} (use {', '.join(LOCALES)})")
        for name in _placeholder_names(at, code, text):
            if allowed is not None and name not in allowed:
                raise ConfigError(f"{at}: rule {code}: unknown placeholder {{{name}}} for kind {kind.name} "
                                  f"(available: {', '.join(sorted(allowed))})")
    return dict(message)


def _placeholder_names(at: str, code: str, text: str) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"{at}: rule {code}: bad message template: {exc} (write {{{{ for a literal brace)") from exc
    for name in names:
        if not name.isidentifier():
            raise ConfigError(f"{at}: rule {code}: placeholder {{{name}}} must be a plain name like {{sku}}")
    return names


def _no_unknown_keys(path: Path, node: LineDict, allowed: tuple[str, ...], what: str) -> None:
    for key in node:
        if key not in allowed:
            raise ConfigError(f"{yamlfile.where(path, node, key)}: unknown key {key!r} in {what} "
                              f"(allowed: {', '.join(allowed)})")
