"""Orders typed into an email body: a ``Key: value`` header block plus a line table, as plain rows.

``text_tables(text, aliases)`` and ``html_tables(html, aliases)`` return a list
of ``Table`` (rows of cell text ready for ``orderbots.tabular``): the
header row names the header-block keys (PO, Customer, Ship to, Requested
date, ...) followed by the line table's columns, and every line row repeats
the header-block values. Nothing is evaluated; a body without a line table
(a row naming at least an item and a quantity column) gives ``[]``.

Plain text: the line table's columns are separated by ``|``, ``;``, tabs or
runs of spaces; separator lines (``---``, ``|---|---|``) are skipped; quoted
reply lines (``> ...``) and everything after a signature marker (``-- ``) are
ignored. ``first_row`` is the text line of the table's header, so row numbers
in messages are body line numbers. HTML: every ``<table>`` is a candidate; a
two-column table of known keys (``PO | 4711``) and ``Key: value`` text outside
tables make the header block; scripts and styles are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Iterable, Mapping

from .tabular import Table

LINE_FIELDS = ("sku", "qty", "unit_price", "description", "unit")
_KEY_VALUE = re.compile(r"^\s*[*_]*([^\W\d][^:：]{0,39}?)[*_]*\s*[:：]\s*[*_]*(.*?)[*_]*\s*$")
_SEPARATOR = re.compile(r"^[\s|+:=_-]*$")


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


class _Fields:
    """Header text -> order field, from the same aliases the spreadsheet reader uses."""

    def __init__(self, aliases: Mapping[str, Iterable[str]]):
        self.lookup = {_norm(a): name for name, names in aliases.items() for a in names}

    def of(self, text: str) -> str | None:
        return self.lookup.get(_norm(text))

    def is_line_header(self, cells: list[str]) -> bool:
        found = {self.of(c) for c in cells}
        return "sku" in found and "qty" in found

    def header_block(self, pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str]]:
        """field -> (key as written, value) for order-level keys; the first occurrence wins."""
        block: dict[str, tuple[str, str]] = {}
        for key, value in pairs:
            name = self.of(key)
            if name and name not in LINE_FIELDS and value and name not in block:
                block[name] = (key.strip(), value.strip())
        return block


def _split(line: str, spaces: str = r"\s{2,}") -> list[str]:
    stripped = line.strip()
    if "|" in stripped:
        cells = stripped.strip("|").split("|")
    elif "\t" in stripped:
        cells = stripped.split("\t")
    elif ";" in stripped:
        cells = stripped.split(";")
    else:
        cells = re.split(spaces, stripped)
    return [c.strip() for c in cells]


def _combine(block: dict[str, tuple[str, str]], header: list[str], lines: list[list[str]]) -> list[list[str]]:
    """Header-block keys prepended to the line table's header and every non-blank line."""
    keys = [k for f, (k, _) in block.items()]
    values = [v for f, (_, v) in block.items()]
    return [keys + header] + [(values + cells) if cells else [] for cells in lines]


# -- plain text ----------------------------------------------------------------

def text_tables(text: str, aliases: Mapping[str, Iterable[str]]) -> list[Table]:
    """The order table typed in ``text`` (at most one), see module docstring."""
    fields = _Fields(aliases)
    lines = []
    for line in text.splitlines():
        if line.rstrip() == "--":
            break
        lines.append("" if line.lstrip().startswith(">") else line)
    for index, line in enumerate(lines):
        for spaces in (r"\s{2,}", r"\s+"):
            header = _split(line, spaces)
            if len(header) >= 2 and fields.is_line_header(header):
                body, end = _line_rows(lines, index + 1, header, spaces, fields)
                if not any(body):
                    continue
                outside = lines[:index] + lines[end:]
                pairs = [(m[1], m[2]) for m in map(_KEY_VALUE.match, outside) if m]
                block = {f: kv for f, kv in fields.header_block(pairs).items() if f not in
                         {fields.of(h) for h in header}}
                return [Table("text", _combine(block, header, body), first_row=index + 1)]
    return []


def _line_rows(lines: list[str], start: int, header: list[str], spaces: str,
               fields: _Fields) -> tuple[list[list[str]], int]:
    """Rows of the line table from ``start`` to its end (blank line after data, or a non-row line)."""
    rows: list[list[str]] = []
    description = next((i for i, h in enumerate(header) if fields.of(h) == "description"), None)
    end = start
    for end in range(start, len(lines) + 1):
        if end == len(lines):
            break
        line = lines[end]
        if _SEPARATOR.match(line):
            if line.strip() == "" and any(rows):
                break
            rows.append([])
            continue
        cells = _split(line, spaces)
        if len(cells) > len(header) and description is not None and spaces == r"\s+":
            extra = len(cells) - len(header)
            cells = (cells[:description] + [" ".join(cells[description:description + extra + 1])]
                     + cells[description + extra + 1:])
        if len(cells) < 2:
            break
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows, end


# -- HTML ---------------------------------------------------------------------

class _HtmlTables(HTMLParser):
    """Collects every table's rows of cell text, and the text outside tables (one line per block)."""

    BLOCKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.outside: list[str] = [""]
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            if not self._stack[-1]:
                self._stack[-1].append([])
            self._cell = []
        elif tag in self.BLOCKS:
            self._newline()

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in self.SKIP:
            self._skip -= 1

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._stack and self._cell is not None:
            self._stack[-1][-1].append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())
            self._newline()
        elif tag in self.BLOCKS:
            self._newline()

    def handle_data(self, data):
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif not self._stack:
            self.outside[-1] += data

    def _newline(self):
        if not self._stack:
            self.outside.append("")


def html_tables(html: str, aliases: Mapping[str, Iterable[str]]) -> list[Table]:
    """Order tables of an HTML body, see module docstring."""
    parser = _HtmlTables()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; a failure leaves what was read so far
        pass
    fields = _Fields(aliases)
    pairs = [(m[1], m[2]) for m in map(_KEY_VALUE.match, parser.outside) if m]
    pairs += [(row[0], row[1]) for t in parser.tables for row in t if len(row) == 2]
    block = fields.header_block(pairs)
    result = []
    for table in parser.tables:
        start = next((i for i, row in enumerate(table) if fields.is_line_header(row)), None)
        if start is None or len(table) <= start + 1:
            continue
        header = table[start]
        own = {fields.of(h) for h in header}
        rows = _combine({f: kv for f, kv in block.items() if f not in own}, header, table[start + 1:])
        result.append(Table(f"table {len(result) + 1}", rows))
    return result
