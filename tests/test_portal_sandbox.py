"""The customer portal in the sandbox: its own login, list, filters, pages, detail, acknowledge, CSV, admin hooks."""

import csv
import io
import json
import urllib.error
import urllib.request
from datetime import date

import pytest

from sandbox.testing import PageClient

PO = {"number": "PO-7", "delivery_date": "2031-05-02", "notes": "Ring the bell",
      "lines": [{"buyer_item": "B-1001", "supplier_item": "SKU-1001", "description": "Bottle", "qty": "12",
                 "unit": "EA", "unit_price": "8.5"},
                {"buyer_item": "B-2002", "supplier_item": "", "description": "Pens", "qty": "3", "unit": "BX",
                 "unit_price": "9.80"}]}


def test_portal_has_its_own_login_and_session(portal):
    erp_user = PageClient(portal.url)
    page = erp_user.submit(erp_user.get("/portal/login"), "Sign in",
                           {"Username": portal.server.user, "Password": portal.server.password})
    assert page.alerts == ["Invalid username or password"]
    client = portal.client()
    home = client.get("/portal/")
    assert home.heading == "Supplier portal – Main menu" and f"Signed in as {portal.user}" in home.text
    assert client.get("/erp/orders").url.endswith("/erp/login")  # the portal session is not an ERP session
    assert any(c.name == "portal_session" and c.path == "/portal" for c in client.cookies)


def test_list_detail_acknowledge(portal):
    seeded = portal.seed(3, pos=[PO])
    assert seeded[:3] == ["4500000001", "4500000002", "4500000003"] and seeded[3] == "PO-7"
    client = portal.client()
    page = client.get("/portal/pos")
    rows = page.grid("pos")
    assert rows[0] == ["PO number", "PO date", "Delivery date", "Status", "Last changed"]
    assert [r[0] for r in rows[1:]] == ["PO-7", "4500000003", "4500000002", "4500000001"]  # newest change first
    assert {r[3] for r in rows[1:]} == {"New"}
    detail = client.get(page.link("PO-7"))
    assert detail.heading == "Purchase order PO-7"
    record = detail.record()
    assert record["Buyer"] == "Acme Retail Ltd" and record["Requested delivery date"] == "2031-05-02"
    assert record["Ship-to name"] == "Acme Retail DC Daventry" and record["Notes"] == "Ring the bell"
    assert record["Status"] == "New" and record["Version"] == "1"
    assert detail.grid("lines") == [
        ["Line", "Buyer item", "Supplier item", "Description", "Quantity", "Unit", "Unit price"],
        ["1", "B-1001", "SKU-1001", "Bottle", "12", "EA", "8.50"], ["2", "B-2002", "", "Pens", "3", "BX", "9.80"]]
    done = client.submit(detail, "Acknowledge")
    assert done.statuses == ["Purchase order PO-7 acknowledged"] and done.record()["Status"] == "Acknowledged"
    assert portal.pos()["PO-7"]["status"] == "acknowledged"
    with pytest.raises(LookupError):
        done.form_with_button("Acknowledge")  # nothing left to acknowledge
    again = client.submit(detail, "Acknowledge")  # the old page posted once more
    assert again.alerts == ["Purchase order PO-7 is already acknowledged"]
    assert client.get("/portal/pos/NOPE").alerts == ["Unknown purchase order NOPE"]


def test_filters_pages_and_export(portal):
    portal.seed(30)
    portal.cancel("4500000002")
    client = portal.client()
    page = client.get("/portal/pos")
    assert "Page 1 of 2 (30 purchase orders)" in page.text and len(page.grid("pos")) == 26
    second = client.get(page.link("Next page"))
    assert len(second.grid("pos")) == 6 and second.link("Next page") is None
    cancelled = client.submit(page, "Filter", {"Status": "Cancelled"})
    assert [r[0] for r in cancelled.grid("pos")[1:]] == ["4500000002"]
    today = date.today().isoformat()
    assert len(client.submit(page, "Filter", {"Changed from": today, "Changed to": today}).grid("pos")) == 26
    assert client.submit(page, "Filter", {"Changed from": "2999-01-01"}).grid("pos")[1:] == [
        ["No purchase orders found"]]
    assert client.submit(page, "Filter", {"Changed from": "1.2.2030"}).alerts == [
        "Changed from 1.2.2030 is not a valid date (YYYY-MM-DD)"]
    export = client.get(cancelled.link("Export CSV"))
    rows = list(csv.DictReader(io.StringIO(export.html)))
    assert {r["PO number"] for r in rows} == {"4500000002"} and rows[0]["Status"] == "Cancelled"
    everything = list(csv.DictReader(io.StringIO(client.get(page.link("Export CSV")).html)))
    assert len({r["PO number"] for r in everything}) == 30 and len(everything) > 30  # one row per line


def test_layout_v2_renames_reorders_and_pages_by_ten(portal):
    portal.seed(12)
    assert portal.set_layout("v2") == {"layout": "v2"}
    client = portal.client()
    page = client.get("/portal/pos")
    assert page.grid("pos")[0] == ["Last update", "Order status", "Buyer", "Order number", "Order value",
                                   "Order date", "Deliver by"]
    assert len(page.grid("pos")) == 11 and "Page 1 of 2" in page.text
    detail = client.get(page.link("4500000012"))
    assert detail.grid("lines")[0] == ["Pos.", "Description", "Material", "Supplier part", "Qty", "UoM",
                                       "Net price", "Net value"]
    header = next(csv.reader(io.StringIO(client.get(page.link("Export CSV")).html)))
    assert header[:2] == ["Last changed", "Line value"] and "PO number" in header


def test_layout_from_the_command_line(portal_factory):
    portal = portal_factory("--portal-layout", "v2", "--portal-seed", "3")
    assert portal.admin("layout") == {"layout": "v2"}
    assert len(portal.pos()) == 3


def test_admin_change_and_cancel(portal):
    portal.seed(pos=[PO])
    client = portal.client()
    client.submit(client.get("/portal/pos/PO-7"), "Acknowledge")
    changed = portal.change("PO-7", delivery_date="2031-06-01", lines=[
        {"buyer_item": "B-1001", "supplier_item": "SKU-1001", "description": "Bottle", "qty": "20", "unit": "EA",
         "unit_price": "8.50"}])
    assert changed["status"] == "new" and changed["version"] == 2 and changed["lines"] == 1
    detail = client.get("/portal/pos/PO-7")
    assert detail.record()["Requested delivery date"] == "2031-06-01" and detail.record()["Status"] == "New"
    assert portal.cancel("PO-7")["status"] == "cancelled"
    refused = client.submit(detail, "Acknowledge")
    assert refused.alerts == ["Purchase order PO-7 is cancelled and cannot be acknowledged"]


BAD_ADMIN_REQUESTS = [
    ("seed", {"count": -1}, 400, "count must be a whole number"),
    ("seed", {"pos": [{"lines": []}]}, 400, "lines must be a non-empty list"),
    ("seed", {"pos": [{"number": "A B", "lines": PO["lines"]}]}, 400, "must be 1-35 letters"),
    ("cancel", {"number": "NOPE"}, 404, "unknown purchase order NOPE"),
    ("change", {"number": "PO-7", "price": 1}, 400, "cannot change price"),
    ("layout", {"layout": "fancy"}, 400, "unknown portal layout 'fancy'"),
    ("explode", {}, 404, "no admin action 'explode'"),
]


def test_admin_rejects_bad_requests_and_changes_nothing(portal):
    portal.seed(pos=[PO])
    before = portal.pos()
    for action, body, status, error in BAD_ADMIN_REQUESTS:
        with pytest.raises(urllib.error.HTTPError) as caught:
            portal.admin(action, body)
        assert caught.value.code == status and error in json.load(caught.value)["error"], action
    assert portal.pos() == before


def test_admin_needs_the_token(portal):
    request = urllib.request.Request(f"{portal.url}_admin/portal/seed", b'{"count": 1}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403 and portal.pos() == {}


def test_faults_apply_to_the_portal(portal):
    portal.seed(1)
    client = portal.client()
    portal.server.set_faults(error_rate=1)
    assert client.get("/portal/pos").status == 500
    portal.server.set_faults(drop_session=1)
    assert client.get("/portal/pos").alerts == ["Your session has expired. Please sign in again."]
    portal.server.set_faults(ghost_submit=1)
    client = portal.client()
    assert client.submit(client.get("/portal/pos/4500000001"), "Acknowledge").status == 500
    assert portal.pos()["4500000001"]["status"] == "acknowledged"  # committed although the answer was an error
