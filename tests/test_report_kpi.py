"""The KPI figures, checked against a history written through the real Store API (tests/plugins/report.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from orderbots import kpi, states
from orderbots.errors import ApplicationError
from orderbots.runlog import record_run
from tests.plugins.report import FLOW, RUNS, flow_order


def figures(flow, **kwargs):
    return kpi.compute(flow.store, tz=timezone.utc, **kwargs).to_dict()


def test_orders_per_channel_and_day(flow):
    f = figures(flow)
    assert f["orders"] == 8
    assert f["by_channel"] == {"email": 3, "folder": 3, "portal": 1, "api": 1}
    expected: dict[str, Counter] = {}
    for name, (channel, _) in FLOW.items():
        expected.setdefault(flow.received[name].date().isoformat(), Counter())[channel] += 1
    assert f["by_day"] == [{"day": day, "total": c.total(), "channels": dict(sorted(c.items()))}
                           for day, c in sorted(expected.items())]
    assert f["by_state"] == {"in_erp": 3, "rejected": 2, "done": 1, "held": 1, "retry_wait": 1}


def test_straight_through_means_in_the_erp_without_any_person(flow):
    stp = figures(flow)["straight_through"]
    # A (done), B (in_erp) and H (in the ERP, now waiting for a WMS retry) had no person;
    # C was approved and G retried by a person; D, E, F never reached the ERP.
    assert stp["reached_erp"] == 5 and stp["straight_through"] == 3 and stp["touched"] == 2
    assert stp["not_in_erp"] == 3
    assert stp["rate"] == pytest.approx(3 / 8) and stp["rate_of_erp"] == pytest.approx(3 / 5)
    assert stp["by_channel"]["folder"] == {"orders": 3, "reached_erp": 3, "straight_through": 1, "rate": 1 / 3}
    assert stp["by_channel"]["api"]["rate"] == 1.0 and stp["by_channel"]["portal"]["rate"] == 0.0


def test_cycle_times_from_receipt_to_erp_and_to_first_sent_notice(flow):
    slack = (flow.ended - flow.began).total_seconds() + 1  # events happened while the history was built
    times = figures(flow)["cycle_times"]
    ages = sorted(FLOW[n][1].total_seconds() for n in "ABCGH")  # the orders that reached the ERP
    to_erp = times["to_erp"]
    assert to_erp["count"] == 5
    assert to_erp["min"] == pytest.approx(ages[0], abs=slack)
    assert to_erp["median"] == pytest.approx(ages[2], abs=slack)
    assert to_erp["p90"] == pytest.approx(ages[3] + 0.6 * (ages[4] - ages[3]), abs=slack)
    assert to_erp["max"] == pytest.approx(ages[4], abs=slack)
    assert [b["count"] for b in to_erp["histogram"]] == [0, 1, 1, 1, 1, 1, 0]
    # Only A's "order received" and D's rejection were sent (F's rejection is still in the outbox).
    to_notice = times["to_notice"]
    assert to_notice["count"] == 2
    assert to_notice["min"] == pytest.approx(FLOW["D"][1].total_seconds(), abs=slack)
    assert to_notice["max"] == pytest.approx(FLOW["A"][1].total_seconds(), abs=slack)


def test_exceptions_as_pareto_list_by_rule_code(flow):
    pareto = figures(flow)["exceptions"]
    assert [(e["code"], e["count"], e["orders"]) for e in pareto] == [
        ("unknown_sku", 3, 3),          # C (held with credit_limit), D (rejected in a step), F (held)
        ("credit_limit", 1, 1), ("price_mismatch", 1, 1),
        ("rejected_by_person", 1, 1),   # F, rejected by bob
    ]
    assert [e["cumulative_share"] for e in pareto] == pytest.approx([3 / 6, 4 / 6, 5 / 6, 1.0])
    assert sum(e["share"] for e in pareto) == pytest.approx(1.0)


def test_retries_and_failures_per_step_and_bot(flow):
    assert figures(flow)["retries"] == [
        {"step": "erp_entry", "bot": "erp_entry", "retries": 2, "failures": 1, "orders": 1},
        {"step": "erp_entry", "bot": "person", "retries": 1, "failures": 0, "orders": 1},
        {"step": "wms_release", "bot": "wms_release", "retries": 1, "failures": 0, "orders": 1},
    ]


def test_bot_run_durations(flow):
    runs = {r["bot"]: r for r in figures(flow)["runs"]}
    assert set(runs) == set(RUNS)
    assert runs["validate"] == {"bot": "validate", "runs": 3, "finished": 3, "running": 0, "errors": 1,
                                "median": pytest.approx(20), "p90": pytest.approx(36), "max": pytest.approx(40)}
    assert runs["erp_entry"]["median"] == pytest.approx(90) and runs["erp_entry"]["p90"] == pytest.approx(114)
    assert runs["erp_entry"]["errors"] == 0


def test_a_run_still_going_is_counted_but_has_no_duration(store):
    with record_run(store, "email_intake", store.path.parent / "artifacts"):
        row = kpi.compute(store).to_dict()["runs"][0]
    assert row == {"bot": "email_intake", "runs": 1, "finished": 0, "running": 1, "errors": 0,
                   "median": None, "p90": None, "max": None}


def test_since_keeps_recent_orders_and_runs_only(flow):
    f = figures(flow, since=flow.began - timedelta(hours=4))
    assert f["orders"] == 4  # B, C, D, H were received in the last four hours
    assert f["straight_through"]["straight_through"] == 2  # B and H
    assert [e["code"] for e in f["exceptions"]] == ["unknown_sku", "credit_limit"]
    assert figures(flow, since=flow.ended + timedelta(seconds=1))["runs"] == []


def test_empty_store_has_zero_figures_and_no_rates(store):
    f = kpi.compute(store).to_dict()
    assert f["orders"] == 0 and f["by_day"] == [] and f["exceptions"] == [] and f["runs"] == []
    assert f["straight_through"]["rate"] is None and f["cycle_times"]["to_erp"]["median"] is None


def test_codes_come_from_the_reason_and_unknown_reasons_are_not_dropped(store):
    key = store.add_order(flow_order("X", "email", datetime.now(timezone.utc))).key
    store.transition(key, states.HELD, actor="validate@h:1:1", reason="Customer phoned: check this one")
    assert [(e["code"], e["count"]) for e in kpi.compute(store).to_dict()["exceptions"]] == [("unspecified", 1)]


def test_a_validation_failure_counts_against_validate(store):
    key = store.add_order(flow_order("Y", "folder", datetime.now(timezone.utc))).key
    store.fail_attempt(key, states.VALIDATE, ApplicationError("stock lookup timed out"), "validate@h:1:1")
    assert kpi.compute(store).to_dict()["retries"] == [
        {"step": "validate", "bot": "validate", "retries": 1, "failures": 0, "orders": 1}]


@pytest.mark.parametrize("values, q, expected", [([5.0], 0.9, 5.0), ([1.0, 2.0], 0.5, 1.5),
                                                 ([10.0, 20.0, 40.0], 0.9, 36.0)])
def test_percentile_interpolates_between_ranks(values, q, expected):
    assert kpi.percentile(values, q) == pytest.approx(expected)
