"""Fault injection: every fault type is observable, and the admin endpoint is guarded."""

import json
import time
import urllib.error
import urllib.request

import pytest

from sandbox.testing import PageClient

HEADER = {"Customer number": "C1007", "Customer PO": "GL-77", "Currency": "USD"}


@pytest.fixture
def erp(sandbox_server):
    client = PageClient(sandbox_server.url)
    client.login("erp", sandbox_server.user, sandbox_server.password)
    return client


def test_error_rate_answers_500_and_does_nothing(sandbox_server, erp):
    page = erp.submit(erp.get("/erp/orders/new"), "Next", HEADER)
    page = erp.submit(erp.submit(page, "Add line", {"Item number": "SKU-1001", "Quantity": "1"}), "Review")
    sandbox_server.set_faults(error_rate=1)
    failed = erp.submit(page, "Submit order")
    assert failed.status == 500 and failed.heading == "Internal Server Error"
    assert sandbox_server.orders() == []
    sandbox_server.set_faults()
    assert erp.submit(page, "Submit order").heading == "Order created"  # the draft survived the error


def test_ghost_submit_commits_the_order_but_answers_500(sandbox_server, erp):
    sandbox_server.set_faults(ghost_submit=1)
    page = erp.enter_order(HEADER, [("SKU-1001", "2", "")])
    assert page.status == 500 and page.heading == "Internal Server Error"
    assert [(o["order_number"], o["po"]) for o in sandbox_server.orders()] == [("SO-100001", "GL-77")]
    sandbox_server.set_faults()
    found = erp.submit(erp.get("/erp/orders"), "Search", {"Customer PO": "GL-77"})
    assert [r[0] for r in found.grid("results")[1:]] == ["SO-100001"]  # how a bot recovers


def test_ghost_release_reserves_but_answers_500(sandbox_server, erp):
    erp.enter_order(HEADER, [("SKU-2002", "5", "")])
    sandbox_server.set_faults(ghost_submit=1)
    wms = PageClient(sandbox_server.url)
    wms.login("wms", sandbox_server.user, sandbox_server.password)
    page = wms.submit(wms.get("/wms/release"), "Release", {"ERP order number": "SO-100001"})
    assert page.status == 500
    assert sandbox_server.stock("SKU-2002")["reserved"] == 5
    assert sandbox_server.orders()[0]["wms_ref"] == "WMS-000001"


def test_drop_session_signs_the_user_out(sandbox_server, erp):
    sandbox_server.set_faults(drop_session=1)
    page = erp.get("/erp/orders")
    assert page.url.endswith("/erp/login?expired=1")
    assert page.alerts == ["Your session has expired. Please sign in again."]


def test_latency_delays_every_page(sandbox_server, erp):
    sandbox_server.set_faults(latency=0.4)
    started = time.monotonic()
    assert erp.get("/erp/orders").heading == "Find orders"
    assert time.monotonic() - started >= 0.4


def test_slow_pages_take_slow_seconds(sandbox_server, erp):
    sandbox_server.set_faults(slow_rate=1, slow_seconds=0.5)
    started = time.monotonic()
    assert erp.get("/erp/orders").status == 200
    assert time.monotonic() - started >= 0.5


def test_faults_from_environment_and_cli_flags(sandbox_factory):
    server = sandbox_factory("--error-rate", "1", env={"ORDERBOTS_SANDBOX_FAULTS": "latency=0.2,ghost_submit=0.5"})
    assert PageClient(server.url).get("/erp/login").status == 500
    in_force = server.faults()
    assert (in_force["error_rate"], in_force["latency"], in_force["ghost_submit"]) == (1.0, 0.2, 0.5)


def test_admin_endpoint_needs_the_token_and_checks_values(sandbox_server):
    def post(body, token):
        request = urllib.request.Request(sandbox_server.url + "_admin/faults", json.dumps(body).encode(),
                                         headers={"X-Admin-Token": token}, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    assert post({"error_rate": 1}, "wrong")[0] == 403
    assert post({"error_rate": 1}, "")[0] == 403
    assert post({"eror_rate": 1}, sandbox_server.admin_token) == \
        (400, {"error": "unknown fault 'eror_rate'; known faults: drop_session, error_rate, ghost_submit, "
                        "latency, slow_rate, slow_seconds"})
    assert post({"error_rate": 2}, sandbox_server.admin_token)[0] == 400
    assert PageClient(sandbox_server.url).get("/erp/login").status == 200  # nothing changed
    status, faults = post({"drop_session": 0.25}, sandbox_server.admin_token)
    assert status == 200 and faults["drop_session"] == 0.25 and faults["error_rate"] == 0
