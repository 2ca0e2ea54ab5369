"""Rendering notices from Jinja2 templates: a subject, a plain-text body and an HTML body.

Layout of the templates folder (one folder per locale, English is the fallback)::

    templates/_layout.html               shared HTML layout (every HTML body extends it)
    templates/<locale>/_base.html        the layout with the locale's greeting and footer
    templates/<locale>/<kind>.subject.txt
    templates/<locale>/<kind>.txt
    templates/<locale>/<kind>.html

Contract:
- ``Renderer(folder).render(kind, locale, payload)`` returns ``Rendered``. Each of
  the three parts comes from the customer's locale if that folder has it, else
  from ``en``. The payload is the template context, plus ``locale``.
- HTML templates autoescape; text and subject templates do not (they are never
  read as HTML). Undefined variables are errors (``StrictUndefined``). The
  ``one_line`` filter flattens customer text quoted in a body (e.g. a subject).
- The subject is one line: control characters (CR, LF, ...) become spaces,
  runs of spaces collapse, and it is cut at ``MAX_SUBJECT`` characters.
- A missing template, a template syntax error or a payload missing a field the
  template needs is a ``ConfigError`` naming the template file and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .errors import ConfigError

FALLBACK_LOCALE = "en"
PARTS = ("subject.txt", "txt", "html")
MAX_SUBJECT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


@dataclass(frozen=True)
class Rendered:
    """A rendered notice: one-line ``subject``, ``text`` body and ``html`` body."""

    subject: str
    text: str
    html: str


def one_line(value: str, limit: int = MAX_SUBJECT) -> str:
    """``value`` with control characters (CR, LF, NUL, ...) replaced by spaces, trimmed to ``limit``."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()[:limit]


class Renderer:
    """Renders notice templates from one templates folder; see module docstring."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.folder)),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["one_line"] = one_line

    def render(self, kind: str, locale: str, payload: dict[str, Any]) -> Rendered:
        """Subject, text and HTML of notice ``kind`` in ``locale`` (falling back to English)."""
        locale = (locale or FALLBACK_LOCALE).replace("_", "-")
        context = {**payload, "locale": locale}
        subject, text, html = (self._render_part(kind, locale, part, context) for part in PARTS)
        return Rendered(one_line(subject), text, html)

    def _render_part(self, kind: str, locale: str, part: str, context: dict[str, Any]) -> str:
        names = [f"{loc}/{kind}.{part}" for loc in dict.fromkeys((locale, FALLBACK_LOCALE))]
        try:
            template = self.env.select_template(names)
            return template.render(context)
        except jinja2.TemplatesNotFound as exc:
            raise ConfigError(f"no template for notice kind {kind!r}: expected {self.folder / names[-1]}") from exc
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"template {self.folder / exc.name} is missing "
                              f"(the {kind!r} notice needs it)") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{exc.filename}:{exc.lineno}: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"{self.folder / template.name}: {exc.message}; "
                              f"the {kind!r} notice payload lacks it") from exc
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{self.folder / names[-1]}: {exc}") from exc


@lru_cache(maxsize=8)
def renderer_for(folder: str) -> Renderer:
    """A cached ``Renderer`` per templates folder (templates are compiled once)."""
    return Renderer(folder)


def render_notice(kind: str, locale: str, payload: dict[str, Any], folder: str | Path = "templates") -> Rendered:
    """Render notice ``kind`` with the templates in ``folder``; see module docstring."""
    return renderer_for(str(Path(folder).resolve())).render(kind, locale, payload)
