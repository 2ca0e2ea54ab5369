"""Rule files: malformed ones fail at load time naming file and line; custom rule kinds plug in by name."""

from __future__ import annotations

import textwrap
import pytest

from orderbots.errors import ConfigError
from orderbots.model import Address
from orderbots.rules import Hit, load_rule_file, load_rules, rule
from tests.plugins.rules import acme_order

GOOD_RULE = """\
  - code: unknown_item
    kind: known_item
    severity: reject
    message:
      en: "Item {sku} is unknown."
      zh-CN: "物料 {sku} 未知。"
"""


def write(tmp_path, text, name="orders.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_rule_file(path)
    return str(info.value)


# (rule file text, line the error must name, words the reason must contain)
MALFORMED = {
    "bad_yaml": ("rules:\n" + GOOD_RULE + "  - code: [unclosed\n    kind: known_item\n", 9, []),
    "tab_indent": ("rules:\n  - code: x\n\tkind: known_item\n", 3, []),
    "unknown_kind": ("rules:\n" + GOOD_RULE + GOOD_RULE.replace("unknown_item", "x").replace("known_item", "nonsense"),
                     9, ["unknown rule kind 'nonsense'", "known_customer"]),
    "missing_code": ("rules:\n" + GOOD_RULE + "  - kind: known_item\n    severity: hold\n    message: {en: a, zh-CN: b}\n",
                     8, ["missing 'code'"]),
    "missing_severity": ("rules:\n  - code: a\n    kind: known_item\n    message: {en: a, zh-CN: b}\n",
                         2, ["missing 'severity'"]),
    "missing_message": ("rules:\n  - code: a\n    kind: known_item\n    severity: hold\n", 2, ["missing 'message'"]),
    "bad_severity": ("rules:\n" + GOOD_RULE.replace("severity: reject", "severity: block"), 4,
                     ["severity 'block'", "reject, hold, warn"]),
    "unknown_param": ("rules:\n  - code: p\n    kind: price_tolerance\n    severity: hold\n    params:\n"
                      "      tolerance_percent: 2\n      tolerance_pct: 3\n    message: {en: a, zh-CN: b}\n",
                      7, ["unknown param 'tolerance_pct'", "accepted: tolerance_percent"]),
    "param_for_kind_without_params": ("rules:\n" + GOOD_RULE + "    params: {strict: true}\n", 8,
                                      ["unknown param 'strict'", "accepted: none"]),
    "bad_param_value": ("rules:\n  - code: p\n    kind: price_tolerance\n    severity: hold\n"
                        "    params: {tolerance_percent: -1}\n    message: {en: a, zh-CN: b}\n",
                        5, ["tolerance_percent must be a number >= 0"]),
    "unknown_field": ("rules:\n  - code: r\n    kind: required\n    severity: hold\n    params:\n"
                      "      fields: [po_number, purchase_order]\n    message: {en: a, zh-CN: b}\n",
                      5, ["unknown field 'purchase_order'"]),
    "bad_regex": ("rules:\n  - code: r\n    kind: postcode\n    severity: hold\n"
                  "    params: {countries: {IE: '[A-Z'}}\n    message: {en: a, zh-CN: b}\n",
                  5, ["pattern for IE is not a valid regular expression"]),
    "missing_required_param": ("rules:\n  - code: r\n    kind: required\n    severity: hold\n"
                               "    message: {en: a, zh-CN: b}\n", 2, ["needs param(s) fields"]),
    "typo_in_key": ("rules:\n" + GOOD_RULE.replace("severity:", "severty:"), 4, ["unknown key 'severty'"]),
    "missing_chinese": ("rules:\n" + GOOD_RULE.replace('      zh-CN: "物料 {sku} 未知。"\n', ""), 5,
                        ["locale 'zh-CN' is missing"]),
    "unknown_locale": ("rules:\n" + GOOD_RULE + "      de: \"Artikel {sku} unbekannt\"\n", 8, ["unknown locale 'de'"]),
    "unknown_placeholder": ("rules:\n" + GOOD_RULE.replace('zh-CN: "物料 {sku} 未知。"', 'zh-CN: "物料 {item} 未知。"'),
                            7, ["unknown placeholder {item}", "sku"]),
    "attribute_placeholder": ("rules:\n" + GOOD_RULE.replace("Item {sku}", "Item {sku.__class__}"), 6,
                              ["must be a plain name"]),
    "rules_not_a_list": ("modules: []\nrules: {code: a}\n", 2, ["'rules' must be a list"]),
    "rule_not_a_mapping": ("rules:\n  - just a string\n", 1, ["each rule must be a mapping"]),
    "no_rules_key": ("# aliases for columns\ncolumns: {PO: po_number}\n", 2, ["unknown key 'columns'"]),
    "bad_module": ("modules: [no_such_rules_module_xyz]\nrules: []\n", 1, ["cannot import rule module"]),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_rule_file_names_file_line_and_reason(tmp_path, case):
    text, line, words = MALFORMED[case]
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}:{line}:"), message
    assert all(w in message for w in words), message


def test_code_used_twice_across_files_names_both_places(tmp_path):
    write(tmp_path, "rules:\n" + GOOD_RULE, "a.yaml")
    write(tmp_path, "rules:\n  - code: other\n    kind: active_item\n    severity: hold\n"
                    "    message: {en: a, zh-CN: b}\n" + GOOD_RULE, "b.yaml")
    with pytest.raises(ConfigError) as info:
        load_rules(tmp_path)
    assert f"{tmp_path / 'b.yaml'}:6: rule code 'unknown_item' is already used at {tmp_path / 'a.yaml'}:2" \
        in str(info.value)


def test_empty_rules_folder_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no rule files"):
        load_rules(tmp_path)


def test_shipped_rule_files_load_and_cover_every_kind(shipped_rules):
    from orderbots.rules import builtin  # noqa: F401
    from orderbots.rules.registry import kind_names
    builtin_kinds = {k for k in kind_names() if not k.startswith("test_")}
    assert builtin_kinds <= {r.kind for r in shipped_rules.rules}


@rule("test_no_po_box", placeholders=("street",))
def no_po_box(*, words=("PO BOX",)):
    """Carriers cannot deliver to PO boxes."""
    words = tuple(w.upper() for w in words)

    def check(order, ctx):
        if any(w in order.ship_to.street.upper() for w in words):
            yield Hit("ship_to.street", {"street": order.ship_to.street})
    return check


CUSTOM = """\
rules:
  - code: po_box
    kind: test_no_po_box
    severity: hold
    params: {words: [PO BOX, POSTFACH]}
    message:
      en: "We cannot deliver to a PO box ({street})."
      zh-CN: "无法送货到邮政信箱（{street}）。"
"""


def test_custom_rule_registered_by_name(tmp_path, rule_ctx):
    rules = load_rules(write(tmp_path, CUSTOM).parent)
    boxed = acme_order(ship_to=Address("Berlin Bürobedarf", "Postfach 12 34", "Berlin", "10117", "DE"))
    [finding] = rules.evaluate(boxed, rule_ctx)
    assert (finding.code, finding.severity, finding.field) == ("po_box", "hold", "ship_to.street")
    assert finding.messages == {"en": "We cannot deliver to a PO box (Postfach 12 34).",
                                "zh-CN": "无法送货到邮政信箱（Postfach 12 34）。"}
    assert rules.evaluate(acme_order(), rule_ctx) == []


def test_custom_rule_params_are_checked_against_its_signature(tmp_path):
    path = write(tmp_path, CUSTOM.replace("params: {words: [PO BOX, POSTFACH]}", "params: {word: PO BOX}"))
    assert "unknown param 'word' for kind test_no_po_box (accepted: words)" in load_error(path)


def test_custom_rule_module_listed_in_rule_file_is_imported(tmp_path, monkeypatch, rule_ctx):
    package = tmp_path / "site"
    package.mkdir()
    (package / "acme_extra_rules.py").write_text(textwrap.dedent('''
        from decimal import Decimal
        from orderbots.rules import Hit, rule

        @rule("test_min_order_value", placeholders=("total", "minimum"))
        def min_order_value(*, minimum):
            minimum = Decimal(str(minimum))
            def check(order, ctx):
                if order.total < minimum:
                    yield Hit(None, {"total": order.total, "minimum": minimum})
            return check
    '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(package))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    write(rules_dir, """\
        modules: [acme_extra_rules]
        rules:
          - code: small_order
            kind: test_min_order_value
            severity: warn
            params: {minimum: 2000}
            message:
              en: "Order value {total} is below the minimum of {minimum}."
              zh-CN: "订单金额 {total} 低于最低金额 {minimum}。"
    """)
    [finding] = load_rules(rules_dir).evaluate(acme_order(), rule_ctx)
    assert finding.messages["en"] == "Order value 1358.00 is below the minimum of 2000."
    assert finding.severity == "warn"


def test_registering_a_different_function_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        rule("test_no_po_box")(lambda: None)


def test_custom_kind_parameters_must_be_keyword_only():
    with pytest.raises(TypeError, match="keyword-only"):
        rule("test_positional")(lambda words: None)


def test_a_failing_custom_check_surfaces_as_an_exception(tmp_path, rule_ctx):
    @rule("test_broken")
    def broken():
        def check(order, ctx):
            raise RuntimeError("bug in custom rule")
        return check

    rules = load_rules(write(tmp_path, CUSTOM.replace("test_no_po_box", "test_broken")
                             .replace("    params: {words: [PO BOX, POSTFACH]}\n", "")).parent)
    with pytest.raises(RuntimeError, match="bug in custom rule"):
        rules.evaluate(acme_order(), rule_ctx)
