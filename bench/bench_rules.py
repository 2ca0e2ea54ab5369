"""Rule evaluation throughput: the shipped rule set over generated three-line orders,
and the whole validate step (claim, evaluate, transition) on a file store.

Usage: python -m bench.bench_rules [N]  (default 50,000 orders; the best of three rounds is reported,
since the figure is meant to show the engine's speed, not the machine's other load)
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from orderbots import config
from orderbots.bot import BotContext
from orderbots.masterdata import MasterData
from orderbots.model import Address, Order, OrderLine
from orderbots.pipeline import validate_pending
from orderbots.rules import Exposure, RuleContext, load_rules
from orderbots.runlog import record_run

RULES = Path(__file__).resolve().parents[1] / "rules"
TARGET = 20_000
STEP_TARGET = 2_000  # same floor as claim-and-transition in bench_store
ROUNDS = 3
POSTCODES = {"GB": "M1 1AE", "FI": "00100", "CN": "200001", "DE": "10115", "FR": "75002", "US": "60601",
             "ES": "28013", "NL": "1012 AB"}


def generate(n: int, masterdata: MasterData, today: date, seed: int = 7) -> list[Order]:
    """``n`` realistic orders: 3 lines each, known customers and items, about one in ten with a problem."""
    rnd = random.Random(seed)
    skus = [i.sku for i in masterdata.items.values() if i.active]
    # Customers with at least three items priced in their currency.
    catalogue = {c.id: [s for s in skus if masterdata.price(c.id, s)[0] == c.currency]
                 for c in masterdata.customers.values()}
    customers = [c for c in masterdata.customers.values() if len(catalogue[c.id]) >= 3]
    orders = []
    for i in range(n):
        c = rnd.choice(customers)
        lines = []
        for no, sku in enumerate(rnd.sample(catalogue[c.id], 3), 1):
            price = masterdata.price(c.id, sku)[1]
            lines.append(OrderLine(no, sku, Decimal(rnd.randint(1, 40)), "", "EA",
                                   price if rnd.random() > 0.03 else price * Decimal("1.1")))
        orders.append(Order(
            channel="email", source_ref=f"bench-{i}", customer=c.as_customer(), po_number=f"PO-{i}",
            currency=c.currency, requested_date=today + timedelta(days=rnd.randint(-1, 30)),
            ship_to=Address(c.name, "1 Main Street", "Town", POSTCODES.get(c.country, ""), c.country),
            lines=lines))
    return orders


def bench_evaluation(n: int, masterdata: MasterData, today: date) -> None:
    rules = load_rules(RULES)
    orders = generate(n, masterdata, today)
    ctx = RuleContext(masterdata, today, Exposure())
    evaluate = rules.evaluate
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        findings = sum(len(evaluate(order, ctx)) for order in orders)
        timings.append(time.perf_counter() - started)
    elapsed = min(timings)
    print(f"rules_evaluated: {n / elapsed:,.0f} orders/s (target >= {TARGET:,})"
          f"  [{n:,} orders x {len(rules.rules)} rules, {findings:,} findings, best of {ROUNDS}: {elapsed:.2f} s]")




def bench_validate_step(n: int, masterdata: MasterData, today: date) -> None:
    """validate_pending end to end on a file store (claim, evaluate, transition, outbox)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        shutil.copytree(RULES, home / "rules")
        _unlimited_credit(home / "rules" / "data" / "customers.csv")
        settings = config.load(home)
        with settings.open_store() as store:
            with store.transaction():
                for order in generate(n, masterdata, today):
                    store.add_order(order)
            with record_run(store, "validate", settings.artifacts_dir) as run:
                started = time.perf_counter()
                counts = validate_pending(BotContext(settings, store, run), today=today)
                elapsed = time.perf_counter() - started
    print(f"validate_step: {n / elapsed:,.0f} orders/s (target >= {STEP_TARGET:,})"
          f"  [{n:,} orders on a file store, {dict(counts)}, {elapsed:.2f} s]")


def _unlimited_credit(customers_csv: Path) -> None:
    """Raise every credit limit, so thousands of generated orders from 8 customers are not all held."""
    with customers_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with customers_csv.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "credit_limit": "1000000000"} for r in rows)


def main(n: int = 50_000) -> None:
    masterdata = MasterData.load(RULES / "data")
    today = date.today()
    bench_evaluation(n, masterdata, today)
    bench_validate_step(min(n, 5_000), masterdata, today)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
