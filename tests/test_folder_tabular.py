"""orderbots.tabular: header finding, aliases, grouping, dates, numbers and row-level problems."""

import datetime
from decimal import Decimal

import pytest

from connectors.spreadsheet import Table, read_tables
from orderbots.errors import ConfigError, InputError
from orderbots.masterdata import MasterData
from orderbots.model import Customer
from orderbots.tabular import header_aliases, orders_from_table, parse_date, parse_decimal
from tests.plugins.folder import csv_bytes, xlsx_bytes
from tests.plugins.home import REPO, corpus

MASTER = MasterData.load(REPO / "rules" / "data")
RECEIVED = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def convert(rows, *, name="Sheet1", first_row=1, aliases=None, default_customer=None):
    return orders_from_table(Table(name, rows, first_row), channel="folder", source_ref="sha256:abc",
                             received_at=RECEIVED, masterdata=MASTER, aliases=aliases or header_aliases(),
                             default_customer=default_customer, raw_path="/x/done/po.xlsx", source_name="po.xlsx")


def test_rows_group_into_one_order_per_customer_and_po():
    result = convert([
        ["PO Number", "Customer ID", "SKU", "Qty", "Unit Price", "Currency", "Ship To", "City"],
        ["PO-1", "C1001", "SKU-1001", 10, 8.5, "eur", "Acme DC", "Leeds"],
        ["PO-2", "C1002", "SKU-1002", "3", None, "EUR", None, None],
        ["PO-1", "C1001", "SKU-1003", "2,5", "39", None, None, None],
    ])
    assert (result.rows, result.lines, result.header_row) == (3, 3, 1)
    first, second = result.orders
    assert first.key == "C1001/PO-1" and second.key == "C1002/PO-2"
    assert [(l.line_no, l.sku, l.qty, l.unit_price) for l in first.lines] == [
        (1, "SKU-1001", Decimal(10), Decimal("8.5")), (2, "SKU-1003", Decimal("2.5"), Decimal(39))]
    assert first.source_ref == "sha256:abc#Sheet1!2-4"
    assert first.customer.name == "Acme Retail Ltd" and first.currency == "EUR"
    assert (first.ship_to.name, first.ship_to.city) == ("Acme DC", "Leeds")
    assert first.raw_path == "/x/done/po.xlsx" and first.channel == "folder" and first.received_at == RECEIVED
    assert first.problems == [] and second.problems == []


def test_header_below_title_and_blank_rows_chinese_headers():
    rows = [["采购订单"], [None], [], ["客户订单号", "客户编号", "物料编码", "数量", "单价", "交货日期"],
            ["SO-88", "C1003", "SKU-3001", "1.200", "22", "2030年3月5日"]]
    result = convert(rows, first_row=3)
    assert result.header_row == 6
    [order] = result.orders
    assert order.customer.id == "C1003" and order.requested_date == datetime.date(2030, 3, 5)
    assert order.lines[0].qty == Decimal("1.2")  # one dot, no comma: a decimal point
    assert order.source_ref.endswith("!7-7")


def test_aliases_from_configuration_extend_the_defaults():
    aliases = header_aliases({"sku": ["Artikel"], "qty": "Anzahl"})
    result = convert([["Bestellnummer", "Artikel", "Anzahl"], ["B-1", "SKU-1001", "4"]], aliases=aliases,
                     default_customer=MASTER.customers["C1004"].as_customer())
    assert result.orders[0].key == "C1004/B-1" and result.orders[0].lines[0].sku == "SKU-1001"
    with pytest.raises(ConfigError, match="unknown order field 'colour'"):
        header_aliases({"colour": ["Farbe"]})


def test_missing_columns_list_what_is_accepted():
    with pytest.raises(InputError) as caught:
        convert([["Order ID", "Item", "Customer"], ["1", "A", "C1001"]])
    message = str(caught.value)
    assert "po.xlsx, sheet 'Sheet1': missing required column(s) quantity" in message
    assert "'Qty'" in message and "'数量'" in message and "orderbots.yaml" in message


def test_customer_column_is_required_unless_the_folder_has_a_default():
    rows = [["PO", "SKU", "Qty"], ["P", "SKU-1001", 1]]
    with pytest.raises(InputError, match="missing required column.*customer"):
        convert(rows)
    assert convert(rows, default_customer=Customer("C1005", "Small Shop & Co")).orders[0].key == "C1005/P"


@pytest.mark.parametrize("rows, reason", [
    ([["PO", "Customer", "SKU", "Qty"]], "no order rows below the header in row 1"),
    ([["PO", "Customer", "SKU", "Qty"], [None, None, None], []], "no order rows"),
    ([[None, None], []], "the sheet is empty"),
])
def test_header_only_and_empty_sheets(rows, reason):
    with pytest.raises(InputError, match=reason):
        convert(rows)


def test_a_bad_row_holds_only_its_order_and_names_the_cell():
    result = convert([
        ["PO", "Customer", "SKU", "Qty", "Price"],
        ["PO-1", "C1001", "SKU-1001", "lots", None],
        ["PO-1", "C1001", None, 2, None],
        ["PO-1", "C1001", "SKU-1002", 2, "cheap"],
        ["PO-1", "C1001", "SKU-1003", 2, 1],
        ["PO-2", "C1001", "SKU-1001", 2, None],
    ])
    bad, good = result.orders
    assert good.problems == [] and len(good.lines) == 1
    assert [l.sku for l in bad.lines] == ["SKU-1003"]
    texts = [f.text() for f in bad.problems]
    assert {f.code for f in bad.problems} == {"bad_row"} and {f.severity for f in bad.problems} == {"hold"}
    assert texts[0] == ("po.xlsx, sheet 'Sheet1', row 2, column D ('Qty'): quantity is 'lots', not a number; "
                        "correct the quantity. The line was not imported")
    assert "row 3, column C ('SKU'): has no SKU" in texts[1]
    assert "row 4, column E ('Price'): unit price 'cheap' is not a number" in texts[2]
    assert result.rows == result.lines + len(bad.problems)  # every row: a line or a reason


def test_formula_text_is_kept_and_flagged_never_evaluated():
    result = convert([["PO", "Customer", "SKU", "Description", "Qty", "Notes"],
                      ["PO-1", "C1001", "SKU-1001", '=HYPERLINK("http://evil","x")', "-3", "@SUM(A1)"]])
    [order] = result.orders
    assert order.lines[0].description == '=HYPERLINK("http://evil","x")'
    assert order.lines[0].qty == Decimal(-3)  # a negative number is a number, for the rules to judge
    assert order.notes == "@SUM(A1)"
    assert sorted(f.field for f in order.problems if f.code == "formula_in_cell") == ["description", "notes"]


def test_ragged_rows_from_unquoted_commas_are_held_not_shifted():
    rows = read_tables(csv_bytes([["PO", "Customer", "SKU", "Qty"], ["PO-1", "C1001", "SKU-1001", "2"],
                                  ["PO-1", "C1001", "SKU-1002", "Rua do Paço", " 67"]]), "r.csv")[0].rows
    [order] = convert(rows).orders
    assert len(order.lines) == 1
    assert "values beyond the last column (E)" in order.problems[0].text()


def test_blank_po_continues_the_order_above_with_a_warning():
    result = convert([["PO", "Customer", "SKU", "Qty"], ["PO-1", "C1001", "SKU-1001", 1],
                      [None, None, "SKU-1002", 2]])
    [order] = result.orders
    assert [l.sku for l in order.lines] == ["SKU-1001", "SKU-1002"]
    assert [(f.code, f.severity) for f in order.problems] == [("po_filled_down", "warn")]


def test_rows_before_the_first_po_are_reported_on_the_first_order():
    result = convert([["PO", "Customer", "SKU", "Qty"], [None, None, "1"], ["PO-1", "C1001", "SKU-1001", 1]])
    [order] = result.orders
    assert "rows 2 come before the first PO number" in order.problems[0].text()


def test_unknown_customer_is_kept_as_the_sheet_says_for_the_rules_to_hold():
    result = convert([["Order ID", "Customer ID", "Customer Name", "Product ID", "Quantity"],
                      ["X-1", "17850.0", "Someone", "85123A", 6]])
    [order] = result.orders
    assert order.customer.id == "17850" and order.customer.name == "Someone"
    assert order.problems == []


@pytest.mark.parametrize("value, expected", [
    (datetime.datetime(2030, 4, 1, 13, 5), datetime.date(2030, 4, 1)),
    (47574.0, datetime.date(2030, 4, 1)),
    ("47574", datetime.date(2030, 4, 1)),
    ("2030-04-01", datetime.date(2030, 4, 1)),
    ("1996-07-04 00:00:00.000", datetime.date(1996, 7, 4)),
    ("2030/4/1", datetime.date(2030, 4, 1)),
    ("25/12/2030", datetime.date(2030, 12, 25)),
    ("12/25/2030", datetime.date(2030, 12, 25)),
    ("01.04.2030", datetime.date(2030, 4, 1)),
    ("5 Mar 2030", datetime.date(2030, 3, 5)),
    ("March 5, 2030", datetime.date(2030, 3, 5)),
])
def test_dates(value, expected):
    assert parse_date(value) == (expected, "")


@pytest.mark.parametrize("value, reason", [
    ("03/04/2030", "ambiguous: 3 April or 4 March 2030"),
    ("03/01/19", "ambiguous"),
    ("31/02/2030", "not a valid calendar date"),
    ("soon", "not a date"),
    (datetime.timedelta(hours=5), "time of day"),
])
def test_dates_that_need_a_person(value, reason):
    date, why = parse_date(value)
    assert date is None and reason in why


def test_ambiguous_delivery_date_is_a_finding_on_the_order():
    [order] = convert([["PO", "Customer", "SKU", "Qty", "Delivery Date"],
                       ["PO-1", "C1001", "SKU-1001", 1, "03/04/2030"]]).orders
    assert order.requested_date is None
    assert order.problems[0].code == "bad_date" and "YYYY-MM-DD" in order.problems[0].text()


def test_excel_1904_and_1900_dates_read_the_same():
    for name in ("calamine-date_1904.xlsx", "calamine-date_1904.xls"):
        rows = read_tables(corpus("sheets", name).read_bytes(), name)[0].rows
        assert parse_date(rows[0][0]) == (datetime.date(2021, 1, 1), "")


@pytest.mark.parametrize("value, expected", [
    (17850.0, Decimal(17850)), (2.55, Decimal("2.55")), (6, Decimal(6)), ("1,7", Decimal("1.7")),
    ("200.000.000", Decimal(200000000)), ("1.234,50", Decimal("1234.5")), ("1,234.50", Decimal("1234.5")),
    ("1,500", Decimal(1500)), ("€ 12,00", Decimal(12)), ("1 000", Decimal(1000)), ("-4", Decimal(-4)),
])
def test_numbers(value, expected):
    assert parse_decimal(value) == expected


@pytest.mark.parametrize("value", ["abc", "", None, True, "1-2", "=1+1", float("nan")])
def test_not_numbers(value):
    assert parse_decimal(value) is None


def test_generated_xlsx_with_serial_dates_merged_po_and_formulas():
    data = xlsx_bytes(("Orders", [
        ["PO", "Customer", "SKU", "Qty", "Delivery Date"],
        ["PO-9", "orders@acme-retail.example", "SKU-1001", 2, datetime.date(2030, 4, 1)],
        [None, None, "SKU-1002", "=D2*2", 47574],
    ]), merged={"Orders": ["A2:A3", "B2:B3"]})
    result = convert(read_tables(data, "po.xlsx")[0].rows)
    [order] = result.orders
    assert order.customer.id == "C1001" and order.requested_date == datetime.date(2030, 4, 1)
    assert [l.sku for l in order.lines] == ["SKU-1001"]
    assert "quantity is empty (a formula without a saved result?)" in order.problems[0].text()
    assert not any(f.code == "po_filled_down" for f in order.problems)  # merged, not missing


def test_conflicting_order_values_keep_the_first_with_a_warning_and_repeated_headers_are_skipped():
    header = ["PO", "Customer", "SKU", "Qty", "City"]
    result = convert([header, ["PO-1", "C1001", "SKU-1001", 1, "Leeds"], header,
                      ["PO-1", "C1001", "SKU-1002", 2, "York"]])
    [order] = result.orders
    assert order.ship_to.city == "Leeds" and len(order.lines) == 2 and result.rows == 2
    [warning] = order.problems
    assert warning.code == "conflicting_value" and warning.severity == "warn"
    assert "row 4, column E ('City'): 'York' differs from 'Leeds'" in warning.text()


def test_currency_defaults_to_the_customers_and_a_column_overrides_it():
    """Without a Currency column the ERP would get no currency: the customer's master-data currency is used."""
    result = convert([["PO Number", "Customer ID", "SKU", "Qty"], ["H-1", "C1003", "SKU-3001", 5],
                      ["A-1", "C1001", "SKU-1001", 5]])
    assert [(o.key, o.currency) for o in result.orders] == [("C1003/H-1", "CNY"), ("C1001/A-1", "EUR")]
    overridden = convert([["PO Number", "Customer ID", "SKU", "Qty", "Currency"], ["A-2", "C1001", "SKU-1001", 5, "usd"]])
    assert overridden.orders[0].currency == "USD"
