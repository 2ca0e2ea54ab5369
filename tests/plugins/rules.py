"""Fixtures for the rules engine and the validation step: realistic orders and the shipped rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from orderbots.bot import BotContext
from orderbots.masterdata import MasterData
from orderbots.model import Address, Customer, Order, OrderLine
from orderbots.rules import RuleContext, load_rules
from orderbots.runlog import record_run

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2025, 3, 10)


def acme_order(po: str = "PO-4711", **changes) -> Order:
    """A clean three-line order from Acme Retail (GB, EUR) that passes every shipped rule on TODAY."""
    order = Order(
        channel="email", source_ref=f"<msg-{po}@acme-retail.example>",
        customer=Customer("C1001", "Acme Retail Ltd", "orders@acme-retail.example", "en"),
        po_number=po, currency="EUR", requested_date=TODAY + timedelta(days=10),
        received_at=datetime(2025, 3, 10, 9, 30, tzinfo=timezone.utc),
        ship_to=Address("Acme Retail Ltd", "12 Market Street", "Manchester", "M1 1AE", "GB"),
        lines=[OrderLine(1, "SKU-1001", Decimal("100"), "Stainless water bottle 750 ml", "EA", Decimal("8.50")),
               OrderLine(2, "SKU-1002", Decimal("20"), "Insulated lunch box", "EA", Decimal("14.90")),
               OrderLine(3, "SKU-2001", Decimal("50"), "A4 copy paper", "RM", Decimal("4.20"))])
    for name, value in changes.items():
        setattr(order, name, value)
    return order


def shanghai_order(po: str = "HL-2025-001") -> Order:
    """A clean order from the Chinese customer C1003 (zh-CN, CNY, customer prices)."""
    return Order(
        channel="folder", source_ref=f"sha256:{po}#Sheet1!2-3",
        customer=Customer("C1003", "上海华联贸易有限公司", "caigou@hualian-trade.example", "zh-CN"),
        po_number=po, currency="CNY", requested_date=TODAY + timedelta(days=14),
        ship_to=Address("上海华联贸易有限公司", "南京东路100号", "上海", "200001", "CN"),
        lines=[OrderLine(1, "SKU-3001", Decimal("500"), "USB-C cable", "EA", Decimal("22.00")),
               OrderLine(2, "SKU-3002", Decimal("40"), "Wireless mouse", "EA", Decimal("89.00"))])


@pytest.fixture(scope="session")
def masterdata() -> MasterData:
    return MasterData.load(REPO / "rules" / "data")


@pytest.fixture(scope="session")
def shipped_rules():
    return load_rules(REPO / "rules")


@pytest.fixture
def rule_ctx(masterdata) -> RuleContext:
    return RuleContext(masterdata, TODAY)


@pytest.fixture
def evaluate(shipped_rules, rule_ctx):
    """Evaluate the shipped rules on an order (with the fixed TODAY unless a context is given)."""

    def run(order: Order, ctx: RuleContext | None = None):
        return shipped_rules.evaluate(order, ctx or rule_ctx)

    return run


@pytest.fixture
def bot_ctx(settings, store):
    """A BotContext for the validate step over the test's private store, its run recorded."""
    with record_run(store, "validate", settings.artifacts_dir) as run:
        yield BotContext(settings, store, run)
