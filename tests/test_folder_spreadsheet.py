"""connectors.spreadsheet: every format, encoding and hostile file ends as tables or a clear InputError."""

import datetime
import io
import random
import zipfile

import pytest

from connectors.spreadsheet import decode_text, read_tables, sniff_delimiter
from orderbots.errors import InputError
from tests.plugins.folder import csv_bytes, xlsx_bytes
from tests.plugins.home import corpus

ROWS = [["PO Number", "SKU", "Qty"], ["PO-1", "SKU-1001", "3"], ["PO-1", "SKU-1002", "4"]]


def test_xlsx_cells_come_back_typed():
    data = xlsx_bytes(("Orders", [["PO", "Qty", "When"], ["PO-1", 3, datetime.date(2030, 1, 5)]]))
    [table] = read_tables(data, "orders.xlsx")
    assert table.name == "Orders"
    assert table.rows == [["PO", "Qty", "When"], ["PO-1", 3.0, datetime.date(2030, 1, 5)]]


def test_format_comes_from_the_bytes_not_the_extension():
    as_csv = read_tables(xlsx_bytes(("S", ROWS)), "really-a-workbook.csv")
    as_xlsx = read_tables(csv_bytes(ROWS), "really-text.xlsx")
    assert as_csv[0].rows[1] == as_xlsx[0].rows[1] == ["PO-1", "SKU-1001", "3"]
    wrong_xls = read_tables(corpus("sheets", "rpaframework-wrong_extension.xls").read_bytes(), "x.xls")
    wrong_xlsx = read_tables(corpus("sheets", "rpaframework-wrong_extension.xlsx").read_bytes(), "x.xlsx")
    assert [t.name for t in wrong_xls] == [t.name for t in wrong_xlsx] == ["First", "Second"]
    assert wrong_xls[0].rows[:3] == wrong_xlsx[0].rows[:3]


def test_workbook_data_on_later_sheets_and_hidden_flags():
    tables = read_tables(corpus("sheets", "csvkit-sheets.xlsx").read_bytes(), "sheets.xlsx")
    assert [t.name for t in tables] == ["not this one", "data", "ʤ"]
    any_sheets = read_tables(corpus("sheets", "calamine-any_sheets.xlsb").read_bytes(), "any.xlsb")
    assert [(t.name, t.hidden) for t in any_sheets] == [("Visible", False), ("Hidden", True), ("VeryHidden", True)]


def test_merged_cells_take_the_value_of_their_top_left_cell():
    data = xlsx_bytes(("S", [["PO", "SKU"], ["PO-7", "A"], [None, "B"]]), merged={"S": ["A2:A3"]})
    assert read_tables(data, "m.xlsx")[0].rows[2] == ["PO-7", "B"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030", "cp1252"])
def test_text_encodings(encoding):
    text = "客户订单号,物料编码,数量\r\nPO-1,SKU-1001,5\r\n" if encoding != "cp1252" else \
        "PO,Artikel,Menge\r\nPO-1,Müller € Café,5\r\n"
    [table] = read_tables(text.encode(encoding), "t.csv")
    assert table.rows == [row.split(",") for row in text.strip().split("\r\n")]


def test_latin1_is_not_mistaken_for_chinese():
    assert decode_text("Müller;Straße".encode("latin-1")) == "Müller;Straße"
    assert decode_text("上海华联贸易有限公司".encode("gb18030")) == "上海华联贸易有限公司"


def test_taobao_gb18030_reads_the_same_as_its_utf8_twin():
    utf8 = read_tables(corpus("sheets", "taobao_order_2016.csv").read_bytes(), "taobao.csv")
    gb = read_tables(corpus("sheets", "taobao_order_2016.gb18030.csv").read_bytes(), "taobao.csv")
    assert utf8[0].rows == gb[0].rows
    assert utf8[0].rows[0] == ["文件序号", "序号", "日期", "商家", "商品名", "总价", "价格"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(delimiter):
    rows = [["PO", "SKU", "Qty", "Notes"], ["PO-1", "SKU-1", "1,5", "a, b"], ["PO-2", "SKU-2", "2", "c"]]
    data = "\r\n".join(delimiter.join(f'"{c}"' if "," in c and delimiter == "," else c for c in r) for r in rows)
    assert read_tables(data.encode(), "d.txt")[0].rows == rows


def test_cr_only_newlines_nul_bytes_and_a_quoted_newline():
    assert read_tables(corpus("sheets", "csvkit-mac_newlines.csv").read_bytes(), "mac.csv")[0].rows == [
        ["a", "b", "c"], ["1", "2", "3"], ["Once upon\ra time", "5", "6"]]
    assert read_tables(corpus("sheets", "csvkit-null_byte.csv").read_bytes(), "nul.csv")[0].rows == [
        ["a", "b", "c"], [None, "2", "3"]]
    assert sniff_delimiter(corpus("sheets", "csvkit-test_header_newline.csv").read_text()) == ","


@pytest.mark.timeout(20)
def test_hostile_ods_with_a_billion_repeated_cells_is_refused_quickly():
    with pytest.raises(InputError, match="declares more than .* filled cells"):
        read_tables(corpus("sheets", "calamine-issue_594_dos.ods").read_bytes(), "dos.ods")


def test_blank_rows_repeated_a_million_times_are_fine():
    tables = read_tables(corpus("sheets", "calamine-number_rows_repeated.ods").read_bytes(), "rep.ods")
    assert tables[0].rows[:3] == [["A", "B"], ["C", "D"], ["C", "D"]]


def _zip_of_a_text_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize("name, make, reason", [
    ("protected.xlsx", lambda: corpus("sheets", "calamine-pass_protected.xlsx").read_bytes(), "password protected"),
    ("truncated.xlsx", lambda: xlsx_bytes(("S", ROWS))[:1500], "damaged zip|cannot read"),
    ("empty.xlsx", lambda: b"", "the file is empty"),
    ("notes.zip", _zip_of_a_text_file, "not a spreadsheet"),
    ("too_small.xls", lambda: corpus("sheets", "calamine-too_small.xls").read_bytes(),
     "neither a workbook nor a table"),
    ("page.xls", lambda: b"<html><body><table><tr><td>1</td></tr></table></body></html>", "HTML"),
    ("garbage.xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4,
     "cannot read this Excel 97-2003"),
])
def test_unreadable_files_give_a_human_reason(name, make, reason):
    data = make()
    with pytest.raises(InputError, match=reason) as caught:
        read_tables(data, name)
    assert name in str(caught.value)


def test_zip_bomb_is_refused_without_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 30_000_000)
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(InputError, match="zip bomb"):
        read_tables(buffer.getvalue(), "bomb.xlsx")


def test_size_and_row_limits():
    with pytest.raises(InputError, match=r"over the limit of 0.0 MB"):
        read_tables(csv_bytes(ROWS), "big.csv", max_bytes=10)
    with pytest.raises(InputError, match="has 3 rows, more than the limit of 2"):
        read_tables(csv_bytes(ROWS), "long.csv", max_rows=2)


def test_a_giant_cell_is_a_reason_not_a_crash():
    data = b"PO,SKU,Qty,Notes\r\nPO-1,SKU-1,1," + b"x" * 200_000 + b"\r\n"
    with pytest.raises(InputError, match="cell"):
        read_tables(data, "giant.csv")


@pytest.mark.timeout(120)
def test_damaged_workbooks_never_escape_as_anything_but_input_error():
    """Random byte damage to real workbooks: tables or InputError, never a crash (calamine panics included)."""
    rng = random.Random(7)
    workbooks = sorted(p for p in corpus("sheets").iterdir() if p.suffix in (".xlsx", ".xls", ".ods", ".xlsb", ".xlsm"))
    for _ in range(300):
        path = rng.choice(workbooks)
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        try:
            tables = read_tables(bytes(data), path.name)
        except InputError as exc:
            assert path.name in str(exc)
        else:
            assert all(isinstance(t.rows, list) for t in tables)
