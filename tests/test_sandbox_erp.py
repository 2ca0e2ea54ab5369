"""The sandbox ERP screens, driven over real HTTP by label and button text (no browser)."""

import http.client
import time
import urllib.parse

import pytest

from sandbox.db import SandboxDB
from sandbox.testing import PageClient

HEADER = {"Customer number": "C1001", "Customer PO": "PO-4711", "Requested delivery date": "2030-03-15",
          "Currency": "GBP", "Ship-to name": "Acme Retail DC North", "Street": "1 Dock Road", "City": "Leeds",
          "Postcode": "LS1 4AB", "Country": "gb", "Notes": "Deliver <before> noon & call ahead"}


@pytest.fixture
def erp(sandbox_server):
    client = PageClient(sandbox_server.url)
    client.login("erp", sandbox_server.user, sandbox_server.password)
    return client


def test_sign_in_shows_user_and_navigation(sandbox_server, sandbox_client):
    page = sandbox_client.login("erp", sandbox_server.user, sandbox_server.password)
    assert page.url.endswith("/erp/")
    assert "Signed in as bot" in page.text
    assert page.link("New order") == "/erp/orders/new" and page.link("Find orders") == "/erp/orders"


def test_wrong_password_is_refused_with_an_alert(sandbox_server, sandbox_client):
    page = sandbox_client.login("erp", sandbox_server.user, "not-the-password")
    assert page.alerts == ["Invalid username or password"]
    assert sandbox_client.get("/erp/orders").url.endswith("/erp/login")


def test_session_cookie_is_httponly_and_samesite(sandbox_server):
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(sandbox_server.url).netloc)
    conn.request("GET", "/erp/login")
    cookie = conn.getresponse().getheader("Set-Cookie")
    conn.close()
    assert cookie.startswith("erp_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_post_without_valid_csrf_token_is_rejected(sandbox_server, erp):
    page = erp.get("/erp/orders/new")
    form = page.form_with_button("Next")
    data = {n.attrs["name"]: n.attrs.get("value", "") for n in form.find_all("input")}
    names = page.field_names()
    data.update({names["Customer number"]: "C1001", names["Customer PO"]: "CSRF-1", names["Currency"]: "EUR"})
    for token in ("forged", ""):
        rejected = erp.post("/erp/orders/new", {**data, "csrf_token": token})
        assert rejected.status == 403
        assert rejected.alerts == ["Invalid or missing security token. Reload the page and try again."]
    assert erp.get("/erp/orders/new/lines").heading == "New sales order – header"  # no draft was started
    assert erp.post("/erp/orders/new", data).heading == "New sales order – lines"  # the real token works


def test_sign_in_post_needs_the_login_pages_token(sandbox_server, sandbox_client):
    page = sandbox_client.get("/erp/login")
    forged = PageClient(sandbox_server.url)  # no cookie, so no session the token could belong to
    form = page.form_with_button("Sign in")
    data = {n.attrs["name"]: n.attrs.get("value", "") for n in form.find_all("input")}
    names = page.field_names()
    data.update({names["Username"]: sandbox_server.user, names["Password"]: sandbox_server.password})
    assert forged.post("/erp/login", data).status == 403
    assert sandbox_client.post("/erp/login", data).url.endswith("/erp/")


def test_field_names_and_ids_are_random_on_every_load(erp):
    first, second = erp.get("/erp/orders/new"), erp.get("/erp/orders/new")
    assert set(first.field_names()) == set(second.field_names()) >= {"Customer number", "Customer PO", "Currency",
                                                                     "Notes"}
    for label in first.field_names():
        assert first.field_names()[label] != second.field_names()[label]
        assert first.labels()[label] != second.labels()[label]
    assert not {"customer", "po", "customer_po"} & set(first.field_names().values())


def test_look_up_button_opens_popup_for_the_customer_field(erp):
    page = erp.get("/erp/orders/new")
    button = next(b for b in page.root.find_all("button") if b.text == "Look up")
    assert button.attrs["data-lookup"] == page.labels()["Customer number"]
    popup = erp.get(f"/erp/customers/lookup?target={button.attrs['data-lookup']}")
    rows = popup.grid("customers")
    assert rows[0][:3] == ["Customer number", "Name", "Country"]
    assert len(rows) == 1 + 8 and all(r[3] == "Select" for r in rows[1:])
    found = erp.submit(popup, "Search", {"Search customers": "nordic"})
    assert found.grid("customers")[1:] == [["C1002", "Nordic Outdoor Oy", "FI", "Select"]]
    assert button.attrs["data-lookup"] in found.html  # the popup still knows which opener field to fill


def test_full_order_entry_by_labels_stores_exactly_what_was_keyed(sandbox_server, erp):
    page = erp.enter_order(HEADER, [("SKU-1001", "12", ""), ("sku-2001", "2.5", "4.1"), ("SKU-3001", "100", "")])
    assert page.heading == "Order created"
    assert page.statuses == ["Sales order SO-100001 created"]
    assert page.root.find("strong", data_field="order-number").text == "SO-100001"
    [order] = sandbox_server.orders()
    assert (order["order_number"], order["customer"], order["po"], order["status"]) == \
        ("SO-100001", "C1001", "PO-4711", "Open")
    assert (order["requested_date"], order["currency"], order["country"], order["notes"]) == \
        ("2030-03-15", "GBP", "GB", "Deliver <before> noon & call ahead")
    assert [(l["sku"], l["qty"], l["unit_price"]) for l in order["lines"]] == \
        [("SKU-1001", "12", "8.50"), ("SKU-2001", "2.5", "4.10"), ("SKU-3001", "100", "3.10")]


def test_customer_price_list_fills_a_blank_unit_price(sandbox_server, erp):
    erp.enter_order({**HEADER, "Customer number": "C1003", "Currency": "CNY"}, [("SKU-3001", "10", "")])
    assert sandbox_server.orders()[0]["lines"][0]["unit_price"] == "22.00"


def test_review_page_shows_every_field_and_line(erp):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    page = erp.submit(page, "Add line", {"Item number": "SKU-1003", "Quantity": "4", "Unit price": "39"})
    assert page.statuses == ["Line 1 added: SKU-1003"]
    review = erp.submit(page, "Review")
    assert review.heading == "New sales order – review"
    assert review.record() == {"Customer number": "C1001", "Customer name": "Acme Retail Ltd",
                               "Customer PO": "PO-4711", "Requested delivery date": "2030-03-15",
                               "Currency": "GBP", "Ship-to name": "Acme Retail DC North", "Street": "1 Dock Road",
                               "City": "Leeds", "Postcode": "LS1 4AB", "Country": "GB",
                               "Notes": "Deliver <before> noon & call ahead"}
    assert review.grid("lines")[1] == ["1", "SKU-1003", "Trekking pole pair", "4", "PR", "39.00"]
    back = erp.submit(review, "Back")
    assert back.heading == "New sales order – lines" and len(back.grid("lines")) == 2


@pytest.mark.parametrize("changes, alert", [
    ({"Customer number": "C9999"}, "Unknown customer number C9999"),
    ({"Customer number": ""}, "Customer number is required"),
    ({"Customer PO": " "}, "Customer PO is required"),
    ({"Requested delivery date": "15.03.2030"}, "Requested delivery date 15.03.2030 is not a valid date (YYYY-MM-DD)"),
    ({"Requested delivery date": "2030-02-30"}, "Requested delivery date 2030-02-30 is not a valid date (YYYY-MM-DD)"),
    ({"Country": "Germany"}, "Country Germany is not a two-letter ISO code such as DE"),
])
def test_bad_header_is_an_alert_on_the_same_page_with_values_kept(erp, changes, alert):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", {**HEADER, **changes})
    assert page.heading == "New sales order – header"
    assert page.alerts == [alert]
    ship_to = page.root.find("input", id=page.labels()["Ship-to name"])
    assert ship_to.attrs["value"] == "Acme Retail DC North"


@pytest.mark.parametrize("line, alert", [
    (("SKU-0000", "1", ""), "Unknown item SKU-0000"),
    (("SKU-9001", "1", ""), "Item SKU-9001 is blocked and cannot be ordered"),
    (("SKU-1001", "0", ""), "Quantity 0 is not a positive number"),
    (("SKU-1001", "-3", ""), "Quantity -3 is not a positive number"),
    (("SKU-1001", "1", "8,50"), "Unit price 8,50 is not a number such as 8.50"),
])
def test_bad_line_is_an_alert_and_adds_nothing(erp, line, alert):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    page = erp.submit(page, "Add line", dict(zip(("Item number", "Quantity", "Unit price"), line)))
    assert page.alerts == [alert]
    assert page.grid("lines")[1:] == [["No lines yet"]]


def test_review_needs_at_least_one_line(erp):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    page = erp.submit(page, "Review")
    assert page.heading == "New sales order – lines"
    assert page.alerts == ["Add at least one line before review"]


def test_opening_new_order_discards_an_unfinished_one(sandbox_server, erp):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    erp.submit(page, "Add line", {"Item number": "SKU-1001", "Quantity": "1"})
    erp.enter_order({**HEADER, "Customer PO": "PO-2"}, [("SKU-1002", "3", "")])
    [order] = sandbox_server.orders()
    assert order["po"] == "PO-2" and [l["sku"] for l in order["lines"]] == ["SKU-1002"]


def test_submitting_twice_creates_one_order(sandbox_server, erp):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    page = erp.submit(erp.submit(page, "Add line", {"Item number": "SKU-1001", "Quantity": "1"}), "Review")
    assert erp.submit(page, "Submit order").heading == "Order created"
    again = erp.submit(page, "Submit order")  # e.g. a browser re-posting the review form
    assert again.heading == "New sales order – header"
    assert again.alerts == ["No order is being entered. Start with the header."]
    assert len(sandbox_server.orders()) == 1


def test_same_customer_po_is_accepted_twice_by_default(sandbox_server, erp):
    for _ in range(2):
        assert erp.enter_order(HEADER, [("SKU-1001", "1", "")]).heading == "Order created"
    assert [o["po"] for o in sandbox_server.orders()] == ["PO-4711", "PO-4711"]


def test_unique_po_option_refuses_a_second_order(sandbox_factory):
    server = sandbox_factory("--unique-po")
    erp = PageClient(server.url)
    erp.login("erp", server.user, server.password)
    assert erp.enter_order(HEADER, [("SKU-1001", "1", "")]).heading == "Order created"
    page = erp.enter_order(HEADER, [("SKU-1001", "1", "")])
    assert page.heading == "New sales order – review"
    assert page.alerts == ["Customer PO PO-4711 is already used by order SO-100001 of customer C1001"]
    assert len(server.orders()) == 1


def _seed_orders(server, count):
    db = SandboxDB(server.db_path)
    line = {"sku": "SKU-1001", "description": "Stainless water bottle 750 ml", "qty": "1", "unit": "EA",
            "unit_price": "8.50"}
    for n in range(1, count + 1):
        header = {"customer_id": "C1002", "customer_po": "BULK" if n % 2 else f"PO-{n}", "requested_date": "",
                  "currency": "EUR", "ship_name": "", "street": "", "city": "", "postcode": "", "country": "FI",
                  "notes": ""}
        db.create_order(header, [line])


def test_search_pages_ten_rows_at_a_time_newest_first(sandbox_server, erp):
    _seed_orders(sandbox_server, 45)  # 23 orders carry PO "BULK"
    page = erp.submit(erp.get("/erp/orders"), "Search", {"Customer PO": "BULK"})
    assert page.heading == "Find orders"
    seen = []
    while True:
        rows = page.grid("results")
        assert rows[0] == ["Order number", "Customer", "Customer PO", "Order date", "Status"]
        assert len(rows) - 1 <= 10
        seen += [r[0] for r in rows[1:]]
        assert all(r[1:3] == ["C1002", "BULK"] and r[4] == "Open" for r in rows[1:])
        if not page.link("Next page"):
            break
        page = erp.get(page.link("Next page"))
    assert seen == [f"SO-{100000 + n}" for n in range(45, 0, -2)]
    assert erp.get(page.link("Previous page")).grid("results")[1][0] == "SO-100025"


def test_blank_search_lists_all_orders_and_unknown_po_none(sandbox_server, erp):
    _seed_orders(sandbox_server, 3)
    page = erp.submit(erp.get("/erp/orders"), "Search", {"Customer PO": ""})
    assert [r[0] for r in page.grid("results")[1:]] == ["SO-100003", "SO-100002", "SO-100001"]
    assert page.link("Next page") is None
    none = erp.submit(page, "Search", {"Customer PO": "NOPE"})
    assert none.grid("results")[1:] == [["No orders found"]]


def test_detail_page_shows_exactly_what_was_stored(sandbox_server, erp):
    erp.enter_order({**HEADER, "Ship-to name": "<script>alert(1)</script>"},
                    [("SKU-1001", "12", ""), ("SKU-2002", "3", "9.8")])
    page = erp.get(erp.get("/erp/orders").link("SO-100001"))
    assert page.heading == "Sales order SO-100001"
    stored = sandbox_server.orders()[0]
    record = page.record()
    assert record["Customer number"] == stored["customer"] == "C1001"
    assert record["Customer name"] == "Acme Retail Ltd"
    for label, column in [("Customer PO", "customer_po"), ("Requested delivery date", "requested_date"),
                          ("Currency", "currency"), ("Ship-to name", "ship_name"), ("Street", "street"),
                          ("City", "city"), ("Postcode", "postcode"), ("Country", "country"), ("Notes", "notes"),
                          ("Status", "status")]:
        assert record[label] == stored[column], label
    assert record["Ship-to name"] == "<script>alert(1)</script>"
    assert "<script>alert(1)" not in page.html  # escaped, shown as text
    assert page.grid("lines")[1:] == [["1", "SKU-1001", "Stainless water bottle 750 ml", "12", "EA", "8.50"],
                                      ["2", "SKU-2002", "Ballpoint pen blue (box of 50)", "3", "BX", "9.80"]]


def test_unknown_order_detail_is_a_404_with_an_alert(erp):
    page = erp.get("/erp/orders/SO-999999")
    assert page.status == 404 and page.alerts == ["Unknown order SO-999999"]


def test_idle_session_expires_and_redirects_to_sign_in(sandbox_factory):
    server = sandbox_factory("--session-idle", "1")
    erp = PageClient(server.url)
    erp.login("erp", server.user, server.password)
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    time.sleep(1.5)
    expired = erp.submit(page, "Add line", {"Item number": "SKU-1001", "Quantity": "1"})
    assert expired.url.endswith("/erp/login?expired=1")
    assert expired.alerts == ["Your session has expired. Please sign in again."]
    assert erp.get("/erp/orders").url.endswith("/erp/login")
    assert erp.login("erp", server.user, server.password).url.endswith("/erp/")


def test_not_signed_in_redirects_to_sign_in_without_alert(sandbox_client):
    page = sandbox_client.get("/erp/orders/new")
    assert page.url.endswith("/erp/login") and page.alerts == []
    assert page.heading == "ERP – Sign in"
