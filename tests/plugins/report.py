"""Fixtures for the KPI report tests: a store with a realistic history, and a real Chromium page.

``flow_store``: the ``store`` filled through the real Store API with eight orders
whose receipt times lie in the past, so cycle times are known (see ``FLOW``);
people act as ``person:alice`` / ``person:bob``; bot runs are recorded with
``record_run`` and then backdated to known durations. ``flow_store.expected``
holds what was put in. ``browser_page``: a Playwright page in Debian's Chromium
that records console errors, page errors and every URL the page requested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.browser import CHROMIUM_ARGS
from orderbots import notices, states
from orderbots.errors import ApplicationError, BusinessError
from orderbots.model import Address, Customer, Finding, Order, OrderLine
from orderbots.runlog import record_run
from orderbots.states import Step

ERP_BOT, WMS_BOT, VALIDATE_BOT = "erp_entry@host:1:1", "wms_release@host:1:1", "validate@host:1:1"
# The ERP step as the bot runs it, without backoff, so a failed item can be claimed again at once.
ERP_NOW = Step(states.ERP_ENTRY.name, takes=states.ERP_ENTRY.takes, working=states.ERP_ENTRY.working,
               on_approve=states.ERP_ENTRY.on_approve, max_attempts=3, backoff=0)
WMS_NOW = Step(states.WMS_RELEASE.name, takes=states.WMS_RELEASE.takes, working=states.WMS_RELEASE.working,
               on_approve=states.WMS_RELEASE.on_approve, backoff=0)

# order -> (channel, age at receipt). See flow_store for what happens to each.
FLOW = {"A": ("email", timedelta(days=2)), "B": ("folder", timedelta(minutes=30)),
        "C": ("folder", timedelta(hours=3)), "D": ("portal", timedelta(hours=1)),
        "E": ("email", timedelta(hours=6)), "F": ("email", timedelta(days=1)),
        "G": ("folder", timedelta(hours=5)), "H": ("api", timedelta(minutes=10))}
# bot -> (duration in seconds, raised an error?) of each recorded run
RUNS = {"validate": [(10, False), (20, False), (40, True)], "erp_entry": [(60, False), (120, False)]}


@dataclass
class Flow:
    store: object
    received: dict[str, datetime] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    began: datetime | None = None
    ended: datetime | None = None


def flow_order(name: str, channel: str, received_at: datetime) -> Order:
    return Order(channel=channel, source_ref=f"test:{name}", po_number=f"PO-{name}",
                 customer=Customer("C1001", "Acme Retail Ltd", "orders@acme-retail.example", "en"),
                 lines=[OrderLine(1, "SKU-1001", Decimal(4), unit_price=Decimal("8.50"))],
                 ship_to=Address("Acme DC", "1 Dock Rd", "Leeds", "LS1 1AA", "GB"), currency="EUR",
                 received_at=received_at)


def held_by_rules(store, key: str, *codes: str, to: str = states.HELD) -> None:
    """What the validation pipeline records for findings ``codes`` (reason lists the codes)."""
    severity = "hold" if to == states.HELD else "reject"
    findings = [Finding(code, severity, {"en": f"{code} failed"}) for code in codes]
    store.transition(key, to, actor=VALIDATE_BOT, reason=", ".join(codes), findings=findings,
                     data={"codes": [*codes, "minor_warning"]}, resume_step="validate")


def validate(store, key: str) -> None:
    store.transition(key, states.VALIDATED, actor=VALIDATE_BOT, reason="all rules passed")


def into_erp(store, key: str) -> None:
    """The ERP bot's claim: entering_erp, then in_erp with an ERP number."""
    with store.claim(ERP_NOW, ERP_BOT) as item:
        assert item.key == key
        store.transition(key, states.ENTERING_ERP, actor=ERP_BOT, reason="attempt 1")
        store.transition(key, states.IN_ERP, actor=ERP_BOT, erp_number=f"SO-{item.id}", reason="entered")


def fail_claim(store, step: Step, owner: str, key: str) -> None:
    with store.claim(step, owner) as item:
        assert item.key == key
        raise ApplicationError("screen did not answer within 20 s")


def send_notices(store, *keys: str) -> None:
    for row in store.pending_notices(100):
        if row["order_key"] in keys:
            store.mark_sent(row["id"])


def build_flow(store) -> Flow:
    flow = Flow(store, began=datetime.now(timezone.utc))
    for name, (channel, age) in FLOW.items():
        flow.received[name] = flow.began - age
        order = flow_order(name, channel, flow.received[name])
        flow.keys[name] = store.add_order(order, actor="intake", notices=notices.received(order, None)).key
    k = flow.keys
    # Each step below claims the only item waiting for it.
    # A: straight through to done; its "order received" notice was sent.
    validate(store, k["A"])
    into_erp(store, k["A"])
    for to in (states.RELEASING_WMS, states.RELEASED, states.DONE):
        store.transition(k["A"], to, actor=WMS_BOT)
    send_notices(store, k["A"])
    # H: straight into the ERP, then one WMS release retry.
    validate(store, k["H"])
    into_erp(store, k["H"])
    fail_claim(store, WMS_NOW, WMS_BOT, k["H"])
    # B: straight into the ERP.
    validate(store, k["B"])
    into_erp(store, k["B"])
    # C: held (credit_limit, unknown_sku), approved by a person, then into the ERP.
    held_by_rules(store, k["C"], "credit_limit", "unknown_sku")
    store.approve(k["C"], "person:alice", "limit raised by phone")
    into_erp(store, k["C"])
    # D: rejected by a business error in a step (unknown_sku); the rejection notice was sent.
    store.hold_or_reject(k["D"], BusinessError("SKU-9 is not in the catalogue", code="unknown_sku",
                                               severity="reject"), VALIDATE_BOT, states.VALIDATE)
    send_notices(store, k["D"])
    # E: held for price_mismatch and still waiting.
    store.hold_or_reject(k["E"], BusinessError("8.50 is not the list price 9.00", code="price_mismatch"),
                         VALIDATE_BOT, states.VALIDATE)
    # F: held (unknown_sku), then rejected by a person; the rejection notice is not sent yet.
    held_by_rules(store, k["F"], "unknown_sku")
    store.reject(k["F"], "person:bob", "please reorder with a valid SKU")
    # G: the ERP fails three times (retry, retry, failed), a person retries, then it goes in.
    validate(store, k["G"])
    for _ in range(3):
        fail_claim(store, ERP_NOW, ERP_BOT, k["G"])
    store.retry(k["G"], "person:alice", "ERP back online")
    into_erp(store, k["G"])
    for bot, runs in RUNS.items():
        for seconds, error in runs:
            record(store, bot, seconds, error)
    flow.ended = datetime.now(timezone.utc)
    return flow


def record(store, bot: str, seconds: float, error: bool) -> None:
    """One run recorded by ``record_run``, then backdated so it lasted ``seconds``."""
    try:
        with record_run(store, bot, store.path.parent / "artifacts") as run:
            run.count("validated")
            if error:
                raise ApplicationError("ERP unreachable")
    except ApplicationError:
        pass
    ended = datetime.fromisoformat(store.db.execute("SELECT ended_at FROM runs WHERE id = ?", (run.id,)).fetchone()[0])
    store.db.execute("UPDATE runs SET started_at = ? WHERE id = ?",
                     ((ended - timedelta(seconds=seconds)).isoformat(timespec="milliseconds"), run.id))


@pytest.fixture
def flow(store) -> Flow:
    return build_flow(store)


@pytest.fixture(scope="module")
def chromium_browser():
    """One Chromium per test module: a live sync Playwright keeps an asyncio loop running in this thread,
    which other modules' browsers (started in the same thread) must not find."""
    from playwright.sync_api import sync_playwright

    from orderbots import config

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=config.load().chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium_browser):
    """A fresh page; ``page.problems`` collects console errors and page errors, ``page.requested`` URLs."""
    context = chromium_browser.new_context()
    page = context.new_page()
    page.problems, page.requested = [], []
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))
    page.on("request", lambda request: page.requested.append(request.url))
    yield page
    context.close()
