"""Key figures of the order flow, read from the store: plain data, no presentation.

``compute(store, since=None, tz=None) -> Kpis`` reads orders, their events and
outbox notices, and the run log, once. ``since`` keeps orders received (and
runs started) at or after that moment; ``tz`` is the zone whose calendar days
orders are counted in (default: the machine's local zone). ``Kpis.to_dict()``
is JSON-safe; durations are seconds. Timestamps without a zone are read as UTC.

Definitions (what an operations manager can rely on):
- An order *reached the ERP* when it is in ``in_erp``, ``releasing_wms``,
  ``released`` or ``done``, or has any event to ``in_erp``.
- It went *straight through* when it reached the ERP and no event in its
  history has an actor starting with ``person:`` (no approve, edit, retry or
  reject by a person). ``rate`` is straight-through orders / all orders;
  ``rate_of_erp`` is straight-through orders / orders that reached the ERP.
- Cycle times start when the order was received (the earlier of ``received_at``
  and the store's ``created_at``, so a sender's clock running ahead cannot give
  a negative time). ``to_erp`` ends at the first event to ``in_erp``;
  ``to_notice`` at the first notice to the customer that was actually sent.
- Exceptions: every event into ``held`` or ``rejected`` counts once per decisive
  rule code (the codes the reason names, e.g. ``credit_limit, unknown_sku`` or
  ``price_mismatch: ...``); a person's rejection counts as
  ``rejected_by_person``; a reason naming no code counts as ``unspecified``.
  Listed as a Pareto list: most frequent first, with cumulative share.
- Retries and failures: events into ``retry_wait`` and ``failed``, grouped by
  the step that failed (from the state the order was in; a retry of a retry
  keeps its step) and the bot in the actor (``erp_entry@host:pid:thread`` ->
  ``erp_entry``; people are ``person``).
- Bot runs: per bot, count, median / p90 / max duration of finished runs,
  runs that ended in error and runs still running.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any, Iterable

from . import states
from .store import Store

REACHED_ERP = (states.IN_ERP, states.RELEASING_WMS, states.RELEASED, states.DONE)
EXCEPTION_STATES = (states.HELD, states.REJECTED)
FAILURE_STATES = (states.RETRY_WAIT, states.FAILED)
PERSON = "person:"
PERSON_REJECTION = "rejected_by_person"
UNSPECIFIED = "unspecified"
_CODE = re.compile(r"[a-z][a-z0-9_.-]*")

# Cycle-time histogram buckets: (upper bound in seconds, label); the last one is open.
CYCLE_BUCKETS = ((300, "< 5 min"), (900, "5-15 min"), (3600, "15-60 min"), (4 * 3600, "1-4 h"),
                 (24 * 3600, "4-24 h"), (3 * 86400, "1-3 days"), (float("inf"), "> 3 days"))

# The step an order's failure belongs to, from the state it failed in (see states.STEPS).
STEP_OF_STATE = {state: step.name for step in states.STEPS.values()
                 for state in (*step.takes, step.working) if state}


@dataclass
class Distribution:
    """Summary of durations in seconds, with a histogram over ``CYCLE_BUCKETS``."""

    count: int = 0
    min: float | None = None
    median: float | None = None
    p90: float | None = None
    max: float | None = None
    mean: float | None = None
    histogram: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, values: Iterable[float], buckets=CYCLE_BUCKETS) -> "Distribution":
        data = sorted(values)
        counts = Counter(bisect_right([b for b, _ in buckets[:-1]], v) for v in data)
        histogram = [{"label": label, "upper": None if upper == float("inf") else upper, "count": counts[i]}
                     for i, (upper, label) in enumerate(buckets)]
        if not data:
            return cls(histogram=histogram)
        return cls(len(data), data[0], percentile(data, 0.5), percentile(data, 0.9), data[-1],
                   sum(data) / len(data), histogram)


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted ``ordered``, linear between ranks (as numpy's default)."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Kpis:
    """Every figure of the report; see module docstring for the definitions."""

    generated_at: str
    since: str | None
    orders: int
    by_state: dict[str, int]
    by_channel: dict[str, int]
    by_day: list[dict[str, Any]]
    straight_through: dict[str, Any]
    cycle_times: dict[str, Distribution]
    exceptions: list[dict[str, Any]]
    retries: list[dict[str, Any]]
    runs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(text: str) -> datetime:
    """An ISO timestamp from the store as an aware datetime (no zone: UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def bot_of(actor: str) -> str:
    """Who acted, as a bot name: ``erp_entry@host:1:2`` -> ``erp_entry``; any ``person:x`` -> ``person``."""
    return "person" if actor.startswith(PERSON) else actor.split("@", 1)[0]


def compute(store: Store, since: datetime | None = None, tz: tzinfo | None = None) -> Kpis:
    """All figures; see module docstring."""
    orders = _orders(store, since)
    events = _events(store, orders)
    first_sent = _first_sent(store, orders)
    return Kpis(
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        since=since.isoformat() if since else None,
        orders=len(orders),
        by_state=dict(Counter(o["state"] for o in orders.values()).most_common()),
        by_channel=dict(Counter(o["channel"] for o in orders.values()).most_common()),
        by_day=_by_day(orders.values(), tz),
        straight_through=_straight_through(orders, events),
        cycle_times=_cycle_times(orders, events, first_sent),
        exceptions=_exceptions(orders, events),
        retries=_retries(orders, events),
        runs=_runs(store, since),
    )


def _orders(store: Store, since: datetime | None) -> dict[str, dict[str, Any]]:
    orders = {}
    for key, channel, state, received_at, created_at in store.db.execute(
            "SELECT key, channel, state, received_at, created_at FROM orders"):
        received = parse_time(received_at)
        if since and received < since:
            continue
        orders[key] = {"channel": channel, "state": state, "received": received,
                       "start": min(received, parse_time(created_at)), "codes": set()}
    for key, code in store.db.execute(
            """SELECT o.key, json_extract(f.value, '$.code') FROM orders o, json_each(o.findings_json) f
               WHERE o.findings_json != '[]'"""):
        if key in orders:
            orders[key]["codes"].add(code)
    return orders


def _events(store: Store, orders: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per order, oldest first, the events the figures need: to in_erp, exceptions, failures, people's."""
    wanted = (states.IN_ERP, *EXCEPTION_STATES, *FAILURE_STATES)
    rows = store.db.execute(
        f"""SELECT order_key, at, actor, from_state, to_state, reason, data_json FROM events
            WHERE to_state IN ({','.join('?' * len(wanted))}) OR actor LIKE '{PERSON}%' ORDER BY id""", wanted)
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, at, actor, src, dst, reason, data_json in rows:
        if key in orders:
            history[key].append({"at": at, "actor": actor, "from": src, "to": dst, "reason": reason,
                                 "data_json": data_json})
    return history


def _first_sent(store: Store, orders: dict[str, Any]) -> dict[str, datetime]:
    rows = store.db.execute("SELECT order_key, sent_at FROM outbox WHERE sent_at IS NOT NULL AND order_key IS NOT NULL")
    first: dict[str, datetime] = {}
    for key, sent_at in rows:
        if key in orders:
            moment = parse_time(sent_at)
            first[key] = min(first.get(key, moment), moment)
    return first


def _by_day(orders: Iterable[dict[str, Any]], tz: tzinfo | None) -> list[dict[str, Any]]:
    days: dict[str, Counter] = defaultdict(Counter)
    for order in orders:
        days[order["received"].astimezone(tz).date().isoformat()][order["channel"]] += 1
    return [{"day": day, "total": sum(c.values()), "channels": dict(sorted(c.items()))}
            for day, c in sorted(days.items())]


def _reached_erp(order: dict[str, Any], history: list[dict[str, Any]]) -> bool:
    return order["state"] in REACHED_ERP or any(e["to"] == states.IN_ERP for e in history)


def _straight_through(orders: dict[str, Any], events: dict[str, list]) -> dict[str, Any]:
    reached, straight = Counter(), Counter()
    for key, order in orders.items():
        history = events.get(key, [])
        if _reached_erp(order, history):
            reached[order["channel"]] += 1
            if not any(e["actor"].startswith(PERSON) for e in history):
                straight[order["channel"]] += 1
    per_channel = Counter(o["channel"] for o in orders.values())
    total, erp, through = len(orders), reached.total(), straight.total()
    return {
        "orders": total, "reached_erp": erp, "straight_through": through, "touched": erp - through,
        "not_in_erp": total - erp,
        "rate": through / total if total else None,
        "rate_of_erp": through / erp if erp else None,
        "by_channel": {ch: {"orders": n, "reached_erp": reached[ch], "straight_through": straight[ch],
                            "rate": straight[ch] / n} for ch, n in per_channel.most_common()},
    }


def _cycle_times(orders: dict[str, Any], events: dict[str, list],
                 first_sent: dict[str, datetime]) -> dict[str, Distribution]:
    to_erp, to_notice = [], []
    for key, order in orders.items():
        into_erp = next((e for e in events.get(key, []) if e["to"] == states.IN_ERP), None)
        if into_erp:
            to_erp.append((parse_time(into_erp["at"]) - order["start"]).total_seconds())
        if key in first_sent:
            to_notice.append((first_sent[key] - order["start"]).total_seconds())
    return {"to_erp": Distribution.of(to_erp), "to_notice": Distribution.of(to_notice)}


def exception_codes(event: dict[str, Any], known: set[str]) -> list[str]:
    """The rule codes an event into held/rejected names; see module docstring."""
    if event["actor"].startswith(PERSON):
        return [PERSON_REJECTION] if event["to"] == states.REJECTED else [UNSPECIFIED]
    known = known | set(json.loads(event["data_json"]).get("codes") or ())
    head = event["reason"].split(":", 1)[0]
    tokens = [t.strip() for t in head.split(",") if t.strip()]
    codes = [t for t in tokens if t in known] or [t for t in tokens if _CODE.fullmatch(t)]
    return list(dict.fromkeys(codes)) or [UNSPECIFIED]


def _exceptions(orders: dict[str, Any], events: dict[str, list]) -> list[dict[str, Any]]:
    counts: Counter = Counter()
    touched: dict[str, set[str]] = defaultdict(set)
    for key, history in events.items():
        for event in history:
            if event["to"] in EXCEPTION_STATES:
                for code in exception_codes(event, orders[key]["codes"]):
                    counts[code] += 1
                    touched[code].add(key)
    total, running = counts.total(), 0
    pareto = []
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        running += count
        pareto.append({"code": code, "count": count, "orders": len(touched[code]),
                       "share": count / total, "cumulative_share": running / total})
    return pareto


def _retries(orders: dict[str, Any], events: dict[str, list]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for key, history in events.items():
        step = "validate"
        for event in history:
            step = STEP_OF_STATE.get(event["from"], step)
            if event["to"] not in FAILURE_STATES:
                continue
            bot = bot_of(event["actor"])
            row = rows.setdefault((step, bot), {"step": step, "bot": bot, "retries": 0, "failures": 0,
                                                "orders": set()})
            row["retries" if event["to"] == states.RETRY_WAIT else "failures"] += 1
            row["orders"].add(key)
    result = [{**row, "orders": len(row["orders"])} for row in rows.values()]
    return sorted(result, key=lambda r: (-(r["retries"] + r["failures"]), r["step"], r["bot"]))


def _runs(store: Store, since: datetime | None) -> list[dict[str, Any]]:
    durations: dict[str, list[float]] = defaultdict(list)
    errors, running, count = Counter(), Counter(), Counter()
    for bot, started_at, ended_at, status in store.db.execute(
            "SELECT bot, started_at, ended_at, status FROM runs ORDER BY id"):
        started = parse_time(started_at)
        if since and started < since:
            continue
        count[bot] += 1
        errors[bot] += status == "error"
        if ended_at is None:
            running[bot] += 1
        else:
            durations[bot].append((parse_time(ended_at) - started).total_seconds())
    result = []
    for bot in sorted(count):
        d = sorted(durations[bot])
        result.append({"bot": bot, "runs": count[bot], "finished": len(d), "running": running[bot],
                       "errors": errors[bot],
                       "median": percentile(d, 0.5) if d else None, "p90": percentile(d, 0.9) if d else None,
                       "max": d[-1] if d else None})
    return result


def cycle_times_by_channel(store: Store) -> dict[str, dict[str, Distribution]]:
    """``{channel: {"to_erp": Distribution, "to_notice": Distribution}}`` over all orders."""
    orders = _orders(store, None)
    events = _events(store, orders)
    first_sent = _first_sent(store, orders)
    channels = sorted({o["channel"] for o in orders.values()})
    return {ch: _cycle_times({k: o for k, o in orders.items() if o["channel"] == ch}, events, first_sent)
            for ch in channels}
