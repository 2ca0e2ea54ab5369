"""YAML loading that remembers line numbers, so config errors can name file and line.

``load(path)`` returns plain data in which every mapping is a ``LineDict``:
``d.line`` is the 1-based line of the mapping and ``d.line_of(key)`` the line of
one key. ``ConfigError`` is raised for unreadable or syntactically bad files.
``where(path, node, key)`` formats ``file:line`` for messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


class LineDict(dict):
    """A dict that knows the source line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if hasattr(k, "value")}
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


def load(path: Path) -> Any:
    """Parse ``path``; raise ``ConfigError`` naming file and line on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else "?"
        raise ConfigError(f"{path}:{line}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def where(path: Path, node: Any = None, key: str | None = None) -> str:
    """``file:line`` of ``node`` (or of ``key`` inside it), for error messages."""
    if isinstance(node, LineDict):
        return f"{path}:{node.line_of(key) if key else node.line}"
    return str(path)
