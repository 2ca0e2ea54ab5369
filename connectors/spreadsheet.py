"""Reading spreadsheets and delimited text into plain tables; no business decisions here.

``read_tables(data, filename)`` returns one ``Table`` per worksheet: its name,
its rows as lists of cell values (``str``, ``float``, ``int``, ``bool``,
``datetime``/``date``/``time``/``timedelta`` or ``None`` for blank) and the
1-based spreadsheet row number of ``rows[0]`` (``first_col``: 0-based column
of ``row[0]``, so messages can name real cells).

Contract:
- The format comes from the bytes, never the extension: zip (xlsx, xlsm, xlsb,
  ods), OLE2 (xls; an ``EncryptedPackage`` stream means password protected) or
  text (csv, tsv, txt). Workbooks are read by python-calamine, which reads cached
  values only: formulas and macros are never evaluated.
- Text: UTF-8 (with or without BOM), UTF-16 with BOM, GB18030 (Chinese Excel
  "Save as CSV"), then Windows-1252 / Latin-1; delimiter sniffed among
  ``, ; TAB |``; CR, LF and CRLF line ends; NUL bytes removed.
- Merged cells are filled with the value of their top-left cell.
- Anything that cannot be read safely (too big, corrupt, encrypted, zip bomb,
  absurd repeat counts) raises ``InputError`` with a reason a person can act on.
  Limits: ``max_bytes`` (file size), ``max_rows`` per sheet, ``max_cells`` per
  sheet as declared by the file, checked before the workbook is parsed.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from pathlib import PurePath
from typing import Any
from xml.etree import ElementTree

import python_calamine

from orderbots.errors import InputError
from orderbots.tabular import Table

MB = 1024 * 1024
MAX_BYTES = 100 * MB
MAX_ROWS = 1_048_576
MAX_CELLS = 20_000_000
MAX_UNZIPPED = 1024 * 1024 * 1024
MAX_RATIO = 200

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
WORKBOOK_EXTENSIONS = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".xltx", ".xltm"}
DELIMITERS = (",", ";", "\t", "|")
ODS_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
ODS_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


def read_tables(data: bytes, filename: str, *, max_rows: int = MAX_ROWS,
                max_bytes: int = MAX_BYTES, max_cells: int = MAX_CELLS) -> list[Table]:
    """The worksheets of ``data``; see the module docstring. ``filename`` is used in messages only."""
    check_size(len(data), filename, max_bytes)
    if not data.strip(b"\x00 \t\r\n"):
        raise InputError(f"{filename}: the file is empty")
    if data.startswith(ZIP_MAGIC):
        tables = _read_zip(data, filename, max_cells, max_rows)
    elif data.startswith(OLE2_MAGIC):
        tables = _read_ole2(data, filename, max_rows)
    else:
        tables = [_read_text(data, filename)]
    for t in tables:
        _check_rows(t.name, len(t.rows), filename, max_rows)
    return tables


def _check_rows(sheet: str, rows: int, filename: str, max_rows: int) -> None:
    if rows > max_rows:
        raise InputError(f"{filename}: sheet {sheet!r} has {rows} rows, more than the limit of "
                         f"{max_rows}; split it into smaller files")


def check_size(size: int, filename: str, max_bytes: int = MAX_BYTES) -> None:
    """``InputError`` if a file of ``size`` bytes is over ``max_bytes`` (check before reading it)."""
    if size > max_bytes:
        raise InputError(f"{filename}: the file is {size / MB:.1f} MB, over the limit of "
                         f"{max_bytes / MB:.1f} MB; split it into smaller files")


# -- workbooks ---------------------------------------------------------------

def _read_zip(data: bytes, filename: str, max_cells: int, max_rows: int) -> list[Table]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError) as exc:
        raise InputError(f"{filename}: the file is a damaged zip archive ({exc}); "
                         "open it in Excel or LibreOffice and save it again") from exc
    _check_zip_bomb(members, filename)
    names = {m.filename.replace("\\", "/").lower() for m in members}
    if "encryptedpackage" in names:
        raise _encrypted(filename)
    if "content.xml" in names and ("mimetype" in names or "meta-inf/manifest.xml" in names):
        _check_ods_repeats(archive, filename, max_cells)
        suffix = ".ods"
    elif any(n.endswith("workbook.bin") for n in names):
        suffix = ".xlsb"
    elif any(n.endswith("workbook.xml") for n in names):
        suffix = ".xlsx"
    else:
        raise InputError(f"{filename}: a zip archive that is not a spreadsheet (no workbook inside); "
                         "send the order sheet itself as .xlsx, .ods or .csv")
    return _read_workbook(data, filename, suffix, max_rows)


def _check_zip_bomb(members: list[zipfile.ZipInfo], filename: str) -> None:
    total = sum(m.file_size for m in members)
    if total > MAX_UNZIPPED:
        raise InputError(f"{filename}: unpacks to {total / MB:.0f} MB, over the limit of "
                         f"{MAX_UNZIPPED / MB:.0f} MB; split it into smaller files")
    for m in members:
        if m.file_size > 10_000_000 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise InputError(f"{filename}: part {m.filename!r} expands {m.file_size // max(m.compress_size, 1)}x "
                             "(a zip bomb?); the file was not opened")


def _check_ods_repeats(archive: zipfile.ZipFile, filename: str, max_cells: int) -> None:
    """Count the cells an ODS declares (repeat counts included) before calamine expands them.

    Only rows holding a value count, each as wide as its last value: blank rows and
    trailing blank cells repeated a million times (as Excel Online writes) are harmless.
    """
    cells, row_repeat, width, value_width, table = 0, 1, 0, 0, ""
    try:
        with archive.open(_member(archive, "content.xml")) as content:
            for event, el in ElementTree.iterparse(content, events=("start", "end")):
                tag = el.tag
                if event == "start":
                    if tag == ODS_TABLE + "table":
                        table = el.get(ODS_TABLE + "name", "")
                    elif tag == ODS_TABLE + "table-row":
                        row_repeat, width, value_width = int(el.get(ODS_TABLE + "number-rows-repeated", 1)), 0, 0
                    continue
                if tag in (ODS_TABLE + "table-cell", ODS_TABLE + "covered-table-cell"):
                    width += int(el.get(ODS_TABLE + "number-columns-repeated", 1))
                    if el.get(ODS_OFFICE + "value-type") or len(el):
                        value_width = width
                    el.clear()
                elif tag == ODS_TABLE + "table-row":
                    if value_width:
                        cells += row_repeat * value_width
                        if cells > max_cells:
                            raise InputError(
                                f"{filename}: sheet {table!r} declares more than {max_cells} filled cells "
                                "(repeated rows/columns); it was not opened. Save it again without the "
                                "repeated block, or as .xlsx")
                    el.clear()
                elif tag == ODS_TABLE + "table":
                    cells = 0
    except InputError:
        raise
    except Exception as exc:  # zlib.error, ParseError, BadZipFile, NotImplementedError, ...: damage
        raise InputError(f"{filename}: the ODS content is damaged ({exc}); "
                         "open it in LibreOffice and save it again") from exc


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    for m in archive.infolist():
        if m.filename.replace("\\", "/").lower() == name:
            return m
    raise KeyError(name)


def _read_ole2(data: bytes, filename: str, max_rows: int) -> list[Table]:
    if "EncryptedPackage".encode("utf-16-le") in data:
        raise _encrypted(filename)
    return _read_workbook(data, filename, ".xls", max_rows)


def _encrypted(filename: str) -> InputError:
    return InputError(f"{filename}: the workbook is password protected; save a copy without a password "
                      "(File > Info > Protect Workbook > Encrypt with Password: clear it) and send that")


def _open_workbook(data: bytes, suffix: str) -> python_calamine.CalamineWorkbook:
    """The workbook, read from memory. If calamine cannot open it so, it is opened from a temporary copy
    named with the real ``suffix``: calamine then knows the format and gives its precise error message
    (from memory it only says "cannot detect file format")."""
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - a damaged file: open it again below for the precise reason
        pass
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="orderbots-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return python_calamine.CalamineWorkbook.from_path(path)
    finally:
        os.unlink(path)


def _read_workbook(data: bytes, filename: str, suffix: str, max_rows: int) -> list[Table]:
    """Every worksheet of the workbook in ``data``; any failure of the reader is an ``InputError``."""
    kind = {".xls": "Excel 97-2003", ".ods": "OpenDocument"}.get(suffix, "Excel")
    advice = "open it in Excel or LibreOffice and save it again as .xlsx"
    try:
        workbook = _open_workbook(data, suffix)
        tables = []
        for meta in workbook.sheets_metadata:
            if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
                continue
            sheet = workbook.get_sheet_by_name(meta.name)
            _check_rows(meta.name, sheet.height, filename, max_rows)  # before converting the cells
            tables.append(_sheet_table(sheet, meta))
        workbook.close()
        return tables
    except InputError:
        raise
    except python_calamine.PasswordError as exc:
        raise _encrypted(filename) from exc
    except Exception as exc:  # calamine reports damage as CalamineError, XmlError, OSError, ValueError...
        raise InputError(f"{filename}: cannot read this {kind} workbook ({exc}); {advice}") from exc
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":  # pyo3: a crash inside calamine on this file
            raise
        raise InputError(f"{filename}: the {kind} reader failed on this file ({exc}); {advice}") from exc


def _sheet_table(sheet, meta) -> Table:
    rows = sheet.to_python(skip_empty_area=True)
    for row in rows:
        _none_where_blank(row, row)
    first_row = sheet.start[0] + 1 if sheet.start else 1
    first_col = sheet.start[1] if sheet.start else 0
    for (r0, c0), (r1, c1) in sheet.merged_cell_ranges or ():
        _fill_merged(rows, r0 - first_row + 1, c0 - first_col, r1 - first_row + 1, c1 - first_col)
    hidden = meta.visible != python_calamine.SheetVisibleEnum.Visible
    return Table(meta.name, rows, first_row, first_col, hidden)


def _none_where_blank(row: list[Any], probe: list[Any]) -> list[Any]:
    """``row`` with ``None`` (in place) wherever ``probe`` (the row, or its stripped texts) holds ``""``;
    C-level scans only (a count, then one per blank cell), as this runs for every row."""
    i = -1
    for _ in range(probe.count("")):
        i = probe.index("", i + 1)
        row[i] = None
    return row


def _fill_merged(rows: list[list[Any]], r0: int, c0: int, r1: int, c1: int) -> None:
    if not (0 <= r0 < len(rows) and 0 <= c0 < len(rows[r0])):
        return
    value = rows[r0][c0]
    for r in range(r0, min(r1, len(rows) - 1) + 1):
        for c in range(max(c0, 0), min(c1, len(rows[r]) - 1) + 1):
            if rows[r][c] is None:
                rows[r][c] = value


# -- delimited text ----------------------------------------------------------

def _read_text(data: bytes, filename: str) -> Table:
    text = decode_text(data, filename)
    suffix = PurePath(filename).suffix.lower()
    if suffix in WORKBOOK_EXTENSIONS:
        head = text.lstrip()[:200].lower()
        if head.startswith(("<html", "<!doctype", "<table", "<?xml")):
            raise InputError(f"{filename}: named {suffix} but holds an HTML/XML page, not a workbook; "
                             "open it in Excel and save it as .xlsx")
    delimiter = sniff_delimiter(text)
    if suffix in WORKBOOK_EXTENSIONS and delimiter is None:
        raise InputError(f"{filename}: named {suffix} but is neither a workbook nor a table of text "
                         f"(it starts with {text.strip()[:60]!r}); send the real spreadsheet")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or ",")
    try:
        rows = [_none_where_blank(row, list(map(str.strip, row))) for row in reader]
    except csv.Error as exc:
        raise InputError(f"{filename}: line {reader.line_num}: {exc} (a cell of more than "
                         f"{csv.field_size_limit()} characters, or a quote that is never closed?); "
                         "correct the file and send it again") from exc
    return Table(PurePath(filename).stem or "csv", rows)


def decode_text(data: bytes, filename: str = "") -> str:
    """Decode text bytes: BOMs first, then UTF-8, GB18030 (if it reads as Chinese), CP1252, Latin-1."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
                          (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return _clean(data[len(bom):].decode(encoding))
            except UnicodeDecodeError as exc:
                raise InputError(f"{filename}: starts with a {encoding} byte-order mark but is not valid "
                                 f"{encoding} ({exc.reason} at byte {exc.start}); save it again as UTF-8") from exc
    try:
        return _clean(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
        if _reads_as_chinese(text):
            return _clean(text)
    except UnicodeDecodeError:
        pass
    try:
        return _clean(data.decode("cp1252"))
    except UnicodeDecodeError:
        return _clean(data.decode("latin-1"))


def _clean(text: str) -> str:
    return text.replace("\x00", "")


def _reads_as_chinese(text: str) -> bool:
    """Whether non-ASCII text decoded as GB18030 looks like Chinese rather than mis-read Latin-1.

    Real Chinese puts CJK characters in runs; Latin-1 bytes read as GB18030 give
    isolated ideographs between Latin letters ("M黮ler").
    """
    non_ascii = [ch for ch in text if ord(ch) > 127]
    if not non_ascii:
        return True
    cjk = sum(1 for ch in non_ascii if _is_cjk(ch))
    runs = re.findall(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]{2,}", text)
    in_runs = sum(len(r) for r in runs)
    return cjk >= 0.9 * len(non_ascii) and in_runs >= 0.5 * len(non_ascii)


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef" \
        or unicodedata.east_asian_width(ch) in ("W", "F")


def sniff_delimiter(text: str) -> str | None:
    """The delimiter among ``, ; TAB |`` that splits the first records most consistently, or None.

    Each candidate parses the first 50 records (quotes honoured); the winner gives
    the most records with the same field count (more than one field).
    """
    sample = text[:65536]
    best, best_score = None, 0
    for delimiter in DELIMITERS:
        if delimiter not in sample:
            continue
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        counts = [len(row) for _, row in zip(range(50), reader) if any(c.strip() for c in row)]
        wide = [c for c in counts if c > 1]
        if not wide:
            continue
        mode = max(set(wide), key=wide.count)
        score = wide.count(mode) * 1000 + mode
        if score > best_score:
            best, best_score = delimiter, score
    return best
