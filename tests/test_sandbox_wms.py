"""The sandbox WMS screens: stock enquiry and order release (all or nothing, once per ERP order)."""

from decimal import Decimal

import pytest

from sandbox.testing import PageClient

HEADER = {"Customer number": "C1004", "Customer PO": "BB-1", "Country": "DE"}


@pytest.fixture
def clients(sandbox_server):
    erp, wms = PageClient(sandbox_server.url), PageClient(sandbox_server.url)
    erp.login("erp", sandbox_server.user, sandbox_server.password)
    wms.login("wms", sandbox_server.user, sandbox_server.password)
    return erp, wms


def release(wms, number):
    return wms.submit(wms.get("/wms/release"), "Release", {"ERP order number": number})


def test_wms_has_its_own_session_and_navigation(sandbox_server, clients):
    erp, _ = clients
    assert erp.get("/wms/stock").url.endswith("/wms/login")  # signed in to the ERP only
    wms = PageClient(sandbox_server.url)
    home = wms.login("wms", sandbox_server.user, sandbox_server.password)
    assert "Signed in as bot" in home.text
    assert home.link("Stock") == "/wms/stock" and home.link("Release order") == "/wms/release"


def test_stock_page_lists_seeded_stock_per_warehouse(clients):
    _, wms = clients
    page = wms.get("/wms/stock")
    rows = page.grid("stock")
    assert rows[0] == ["Item", "Warehouse", "On hand", "Reserved", "Available"]
    assert ["SKU-1001", "MAIN", "1200", "0", "1200"] in rows and ["SKU-1001", "NORTH", "350", "0", "350"] in rows
    one = wms.submit(page, "Show stock", {"Item number": "SKU-1003"})
    assert one.grid("stock")[1:] == [["SKU-1003", "MAIN", "6", "0", "6"]]
    unknown = wms.submit(one, "Show stock", {"Item number": "SKU-0000"})
    assert unknown.alerts == ["Unknown item SKU-0000"]


def test_release_reserves_stock_across_warehouses_in_one_go(sandbox_server, clients):
    erp, wms = clients
    erp.enter_order(HEADER, [("SKU-1001", "1300", ""), ("SKU-3002", "30", ""), ("SKU-1001", "100", "")])
    page = release(wms, "SO-100001")
    assert page.statuses == ["Released. WMS reference WMS-000001"]
    assert page.grid("reserved")[1:] == [["SKU-1001", "MAIN", "1200"], ["SKU-1001", "NORTH", "200"],
                                         ["SKU-3002", "MAIN", "30"]]
    assert sandbox_server.stock("SKU-1001") == {"on_hand": Decimal(1550), "reserved": Decimal(1400),
                                                "available": Decimal(150)}
    assert sandbox_server.orders()[0]["status"] == "Released"
    assert sandbox_server.orders()[0]["wms_ref"] == "WMS-000001"
    shown = wms.submit(wms.get("/wms/stock"), "Show stock", {"Item number": "SKU-1001"})
    assert shown.grid("stock")[1:] == [["SKU-1001", "MAIN", "1200", "1200", "0"],
                                       ["SKU-1001", "NORTH", "350", "200", "150"]]
    assert erp.get("/erp/orders/SO-100001").record()["WMS reference"] == "WMS-000001"


def test_short_stock_is_an_alert_per_item_and_reserves_nothing(sandbox_server, clients):
    erp, wms = clients
    erp.enter_order(HEADER, [("SKU-1002", "5", ""), ("SKU-1003", "10", ""), ("SKU-3003", "4", "")])
    page = release(wms, "SO-100001")
    assert page.statuses == []
    assert page.alerts == ["Insufficient stock: SKU-1003 requested 10, available 6",
                           "Insufficient stock: SKU-3003 requested 4, available 3"]
    assert sandbox_server.stock("SKU-1002")["reserved"] == 0  # the line that fitted was not reserved either
    assert sandbox_server.orders()[0]["status"] == "Open"


def test_release_is_idempotent_by_erp_order_number(sandbox_server, clients):
    erp, wms = clients
    erp.enter_order(HEADER, [("SKU-2001", "40", "")])
    assert release(wms, "SO-100001").statuses == ["Released. WMS reference WMS-000001"]
    again = release(wms, "so-100001")
    assert again.alerts == ["Order SO-100001 is already released as WMS-000001"]
    assert sandbox_server.stock("SKU-2001")["reserved"] == 40


def test_releasing_an_unknown_order_is_an_alert(clients):
    _, wms = clients
    assert release(wms, "SO-123456").alerts == ["Unknown ERP order SO-123456"]
    assert release(wms, "").alerts == ["ERP order number is required"]


def test_wms_refs_count_up(sandbox_server, clients):
    erp, wms = clients
    for po in ("A", "B"):
        erp.enter_order({**HEADER, "Customer PO": po}, [("SKU-2003", "1", "")])
    assert release(wms, "SO-100002").statuses == ["Released. WMS reference WMS-000001"]
    assert release(wms, "SO-100001").statuses == ["Released. WMS reference WMS-000002"]
