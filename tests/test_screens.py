"""erp_entry and wms_release with real Chromium against the real sandbox ERP/WMS over HTTP."""

import json
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import yaml

from bots._screen_workers import wms_stock_lookup
from connectors.browser import Browser, BrowserOptions, ChoiceUnavailable, ScreenApp
from connectors.erp_screens import ErpScreens, differences
from orderbots import bot, config, states
from orderbots.errors import ApplicationError, ConfigError
from orderbots.model import Address

from tests.plugins.screens import (SCREEN_SETTINGS, add_validated, artifact_files, files_containing, make_order,
                                   run_until_settled, write_config)


def test_orders_are_entered_read_back_confirmed_and_released(screens_settings, sandbox_server, store):
    one = add_validated(store, make_order("PO-ONE"))
    multi = add_validated(store, make_order(
        "PO-MULTI", lines=[("SKU-1001", "12", "8.50"), ("SKU-1002", "3", "14.90"), ("SKU-1003", "2.5", "")],
        notes="Ring the bell\nthen wait"))

    run = bot.run_bot("erp_entry", screens_settings)

    assert run.counts["entered"] == 2
    erp_orders = {o["po"]: o for o in sandbox_server.orders()}
    assert sorted(erp_orders) == ["PO-MULTI", "PO-ONE"]
    placed = erp_orders["PO-MULTI"]
    assert (placed["customer"], placed["currency"], placed["requested_date"]) == ("C1001", "EUR", "2031-03-14")
    assert (placed["ship_name"], placed["street"], placed["city"], placed["postcode"], placed["country"]) == (
        "Acme DC North", "1 Dock Road", "Leeds", "LS1 1AA", "GB")
    assert [(l["sku"], Decimal(l["qty"])) for l in placed["lines"]] == [
        ("SKU-1001", 12), ("SKU-1002", 3), ("SKU-1003", Decimal("2.5"))]
    for key, po in ((one, "PO-ONE"), (multi, "PO-MULTI")):
        item = store.get(key)
        assert item.state == states.IN_ERP
        assert item.erp_number == erp_orders[po]["order_number"]
        entering = [e for e in store.events(key) if e["to_state"] == states.ENTERING_ERP]
        assert [e["data"]["attempt"] for e in entering] == [1]
    notices = store.db.execute("SELECT * FROM outbox WHERE kind = 'order_confirmed' ORDER BY id").fetchall()
    assert len(notices) == 2
    payload = json.loads(notices[0]["payload_json"])
    assert payload["erp_number"] == store.get(notices[0]["order_key"]).erp_number
    assert payload["expected_ship_date"] == "2031-03-14" and payload["lines"]

    released = bot.run_bot("wms_release", screens_settings)

    assert released.counts["released"] == 2
    refs = {o["po"]: o["wms_ref"] for o in sandbox_server.orders()}
    assert store.get(one).state == states.RELEASED and store.get(one).wms_ref == refs["PO-ONE"]
    assert store.get(multi).wms_ref == refs["PO-MULTI"]


def _erp_counts(sandbox_server):
    counts = {}
    for o in sandbox_server.orders():
        counts[(o["customer"], o["po"])] = counts.get((o["customer"], o["po"]), 0) + 1
    return counts


def test_ghost_submits_are_resolved_by_search_never_entered_twice(screens_settings, sandbox_server, store):
    keys = [add_validated(store, make_order(f"PO-GHOST-{n}")) for n in range(2)]
    sandbox_server.set_faults(ghost_submit=1.0)

    run_until_settled(screens_settings, "erp_entry")

    assert _erp_counts(sandbox_server) == {("C1001", "PO-GHOST-0"): 1, ("C1001", "PO-GHOST-1"): 1}
    assert all(store.get(k).state == states.IN_ERP for k in keys)

    run_until_settled(screens_settings, "wms_release")

    releases = sandbox_server._read("SELECT order_number, COUNT(*) AS n FROM releases GROUP BY order_number")
    assert sorted(r["n"] for r in releases) == [1, 1]
    refs = {o["order_number"]: o["wms_ref"] for o in sandbox_server.orders()}
    for key in keys:
        item = store.get(key)
        assert item.state == states.RELEASED and item.wms_ref == refs[item.erp_number]


def test_every_fault_type_at_once_ends_with_each_order_once(screens_settings, sandbox_server, store):
    keys = [add_validated(store, make_order(f"PO-FAULT-{n}", lines=[("SKU-1001", "2", "8.50"),
                                                                     ("SKU-1002", str(n + 1), "")]))
            for n in range(4)]
    sandbox_server.set_faults(latency=0.02, error_rate=0.04, drop_session=0.05, slow_rate=0.03,
                              slow_seconds=1.5, ghost_submit=0.3)

    run_until_settled(screens_settings, "erp_entry")
    run_until_settled(screens_settings, "wms_release")

    assert _erp_counts(sandbox_server) == {("C1001", f"PO-FAULT-{n}"): 1 for n in range(4)}
    by_number = {o["order_number"]: o for o in sandbox_server.orders()}
    for key in keys:
        item = store.get(key)
        assert item.state == states.RELEASED, (key, item.state, item.last_error)
        assert by_number[item.erp_number]["wms_ref"] == item.wms_ref
    assert files_containing(screens_settings.home, sandbox_server.password) == []


def test_read_back_difference_is_an_application_error_naming_the_field(screens_settings, sandbox_server, store):
    # the ERP upper-cases country codes: "gb" is stored as "GB", so the read-back differs
    key = add_validated(store, make_order("PO-LOWER", ship_to=Address("Acme DC", "1 Road", "Leeds", "LS1", "gb")))

    bot.run_bot("erp_entry", screens_settings)

    item = store.get(key)
    assert item.state == states.RETRY_WAIT
    assert "Country: expected 'gb', ERP shows 'GB'" in item.last_error
    assert "Country: expected 'gb'" in store.events(key)[-1]["reason"]
    assert artifact_files(screens_settings, key)  # evidence of the failed attempt

    time.sleep(0.3)
    bot.run_bot("erp_entry", screens_settings)  # the retry finds the order by PO and never enters it again
    assert _erp_counts(sandbox_server) == {("C1001", "PO-LOWER"): 1}
    assert store.get(key).state in (states.RETRY_WAIT, states.FAILED)


def test_short_stock_holds_the_order_with_the_quantities(screens_settings, sandbox_server, store):
    available = sandbox_server.stock("SKU-1003")["available"]
    key = add_validated(store, make_order("PO-SHORT", lines=[("SKU-1003", str(available + 5), "39.00")]))
    bot.run_bot("erp_entry", screens_settings)

    bot.run_bot("wms_release", screens_settings)

    item = store.get(key)
    assert item.state == states.HELD and item.resume_step == "wms_release"
    finding = item.findings[-1]
    assert finding.code == "stock"
    assert f"SKU-1003 requested {available + 5}, available {available}" in finding.text()
    assert sandbox_server.stock("SKU-1003")["available"] == available  # nothing reserved


def test_unknown_customer_is_held_not_retried(screens_settings, sandbox_server, store):
    key = add_validated(store, make_order("PO-NOBODY", customer="C9999"))

    bot.run_bot("erp_entry", screens_settings)

    item = store.get(key)
    assert item.state == states.HELD
    assert item.findings[-1].code == "erp_customer" and "C9999" in item.findings[-1].text()
    assert sandbox_server.orders() == []


def test_session_expiring_in_the_middle_of_an_order_is_transparent(sandbox_factory, home, settings):
    server = sandbox_factory("--session-idle", "3")
    calls = []

    def heartbeat():  # the worker idles past the session timeout before the second line
        calls.append(1)
        if len(calls) == 3:
            time.sleep(4)

    with Browser(BrowserOptions(executable=settings.chromium)) as browser:
        session = browser.new_session(secrets=(server.password,))
        erp = ErpScreens(session, server.url, server.user, server.password, heartbeat=heartbeat)
        logins, login = [], erp.login
        erp.login = lambda: (logins.append(1), login())[1]
        order = make_order("PO-IDLE", lines=[("SKU-1001", "1", "8.50"), ("SKU-1002", "2", "14.90")])
        receipt = erp.enter_order(order)
        assert differences(order, erp.read_order(receipt.erp_number)) == []
    assert len(logins) == 2  # signed in again after the session expired mid-order
    assert [o["po"] for o in server.orders()] == ["PO-IDLE"]


def test_bad_config_value_names_file_line_and_key(screens_home, sandbox_server):
    text = (screens_home / "orderbots.yaml").read_text()
    (screens_home / "orderbots.yaml").write_text(text.replace("workers: 2", "workers: many", 1))
    with pytest.raises(ConfigError, match=r"orderbots.yaml:\d+: erp.workers must be a number"):
        bot.run_bot("erp_entry", config.load(screens_home))


def test_missing_password_variable_is_named(screens_home, sandbox_server, monkeypatch):
    monkeypatch.delenv("ORDERBOTS_SANDBOX_PASSWORD")
    with pytest.raises(ConfigError, match="ORDERBOTS_SANDBOX_PASSWORD"):
        bot.run_bot("erp_entry", config.load(screens_home))


def test_stock_lookup_reads_the_wms_stock_screen(screens_home, sandbox_server):
    settings = config.load(screens_home)
    assert wms_stock_lookup(settings) is None  # off unless wms.stock_check is true
    settings.data["wms"]["stock_check"] = True

    with wms_stock_lookup(settings) as lookup:
        assert lookup(["SKU-1001", "SKU-NONE"]) == {"SKU-1001": sandbox_server.stock("SKU-1001")["available"],
                                                     "SKU-NONE": Decimal(0)}
        assert lookup(["SKU-1003"]) == {"SKU-1003": sandbox_server.stock("SKU-1003")["available"]}  # same browser


def test_popup_customer_lookup_picks_the_customer_or_holds_an_unknown_one(screens_home, sandbox_server, store):
    write_config(screens_home, sandbox_server.url, customer_lookup="popup")
    known = add_validated(store, make_order("PO-POPUP"))
    unknown = add_validated(store, make_order("PO-POPUP-NOBODY", customer="C9999"))

    bot.run_bot("erp_entry", config.load(screens_home))

    assert store.get(known).state == states.IN_ERP
    assert [o["po"] for o in sandbox_server.orders()] == ["PO-POPUP"]
    item = store.get(unknown)
    assert item.state == states.HELD
    assert item.findings[-1].code == "erp_customer" and "C9999" in item.findings[-1].text()


def test_currency_the_erp_does_not_offer_is_held_with_the_offered_ones(screens_settings, sandbox_server, store):
    key = add_validated(store, make_order("PO-YEN", currency="JPY"))

    bot.run_bot("erp_entry", screens_settings)

    item = store.get(key)
    assert item.state == states.HELD
    assert item.findings[-1].code == "erp_currency"
    assert "'JPY'" in item.findings[-1].text() and "EUR" in item.findings[-1].text()
    assert sandbox_server.orders() == []


def test_bad_customer_lookup_value_names_file_line_and_choices(screens_home, sandbox_server):
    write_config(screens_home, sandbox_server.url, customer_lookup="sometimes")
    with pytest.raises(ConfigError, match=r"orderbots.yaml:\d+: erp.customer_lookup must be one of type, popup"):
        bot.run_bot("erp_entry", config.load(screens_home))


FORM = """<h1>Form</h1><form><label for="x81">Customer PO</label><input id="x81">
<label for="q7">Currency</label><select id="q7"><option>EUR</option><option value="us">USD</option></select>
<label>Notes <textarea></textarea></label><label for="z2">City</label><input id="z2" readonly></form>"""


def test_fill_finds_fields_by_label_and_fills_nothing_when_one_is_missing(settings):
    with Browser(BrowserOptions(executable=settings.chromium, trace=False)) as browser:
        session = browser.new_session()
        app = ScreenApp(session, "http://127.0.0.1:9/", "bot", "unused")
        session.page.set_content(FORM)

        app.fill({"Customer PO": "4711", "Currency": "USD", "Notes": "gate 4"})
        values = session.page.evaluate("() => [...document.querySelectorAll('input, select, textarea')]"
                                       ".map(e => e.value)")
        assert values == ["4711", "us", "gate 4", ""]

        with pytest.raises(ApplicationError, match="no field labelled 'Street'.*the field 'City' read-only"):
            app.fill({"Customer PO": "changed", "Street": "1 Road", "City": "Leeds"})
        assert session.page.get_by_label("Customer PO").input_value() == "4711"  # nothing was filled
        with pytest.raises(ChoiceUnavailable, match="does not offer 'JPY'") as raised:
            app.fill({"Currency": "JPY"})
        assert raised.value.offered == ["EUR", "USD"]
        session.close()


def test_an_order_the_warehouse_cannot_fill_is_held_at_intake_before_the_erp(home, sandbox_server, store):
    """With wms.stock_check, every channel's validation asks the WMS stock screen while the rules run."""
    section = {"url": sandbox_server.url, "user": "bot", "password_env": "ORDERBOTS_SANDBOX_PASSWORD",
               **SCREEN_SETTINGS}
    (home / "orderbots.yaml").write_text(yaml.safe_dump({
        "erp": section, "wms": {**section, "stock_check": True},
        "folders": [{"name": "orders", "path": "folders/orders", "stable_seconds": 0}]}), encoding="utf-8")
    available = sandbox_server.stock("SKU-1003")["available"]
    inbox = home / "folders" / "orders" / "inbox"
    inbox.mkdir(parents=True)
    due = date.today() + timedelta(days=20)
    (inbox / "orders.csv").write_text(
        "PO Number,Customer ID,SKU,Qty,Unit Price,Delivery Date,Ship To,Address,City,Postcode,Country\n"
        f"OK-1,C1001,SKU-1001,5,8.50,{due},Acme DC,1 Dock Road,Leeds,LS1 1AA,GB\n"
        f"SHORT-1,C1001,SKU-1003,{available + 5},39.00,{due},Acme DC,1 Dock Road,Leeds,LS1 1AA,GB\n",
        encoding="utf-8")
    settings = config.load(home)

    bot.run_bot("folder_intake", settings)
    short, good = store.get("C1001/SHORT-1"), store.get("C1001/OK-1")
    assert good.state == states.VALIDATED, [(f.code, f.text()) for f in good.findings]
    assert short.state == states.HELD and short.resume_step == "validate"
    assert [f.code for f in short.findings] == ["stock"]
    assert f"SKU-1003: {available + 5} requested, {available} available" in short.findings[0].text()

    run_until_settled(settings, "erp_entry")
    assert [o["po"] for o in sandbox_server.orders()] == ["OK-1"]
