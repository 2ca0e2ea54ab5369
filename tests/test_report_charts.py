"""The SVG chart builders: empty states, escaping, readable axes for many categories."""

from __future__ import annotations

from orderbots import charts, report


def test_no_data_gives_a_message_not_an_svg():
    for chart in (charts.bar_chart("Orders", [], [], x_label="day", y_label="orders", empty="No orders yet"),
                  charts.bar_chart("Orders", ["a"], [("n", [0])], x_label="x", y_label="y", empty="Nothing"),
                  charts.pareto_chart("Pareto", [], [], [], x_label="x", y_label="y", empty="No exceptions yet")):
        assert "<svg" not in chart and "empty-state" in chart


def test_every_chart_has_title_and_axis_labels_and_escapes_data():
    svg = charts.bar_chart("Runs <b>", ["<script>"], [("s", [3])], x_label="bot & step", y_label="seconds")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "Runs &lt;b&gt;" in svg
    assert 'class="chart-title"' in svg and "bot &amp; step" in svg and ">seconds</text>" in svg


def test_counts_get_whole_number_ticks():
    assert charts.nice_ticks(1, whole=True) == [0, 1]
    assert charts.nice_ticks(7, whole=True) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0.5) == [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]


def test_a_long_period_labels_only_some_days():
    days = [f"2024-01-{d:02d}" for d in range(1, 32)] + [f"2024-02-{d:02d}" for d in range(1, 30)]
    svg = charts.bar_chart("Orders", days, [("email", [1] * len(days))], x_label="day", y_label="orders")
    assert svg.count('class="bar"') == 60
    assert "2024-01-01</text>" in svg and "2024-01-02</text>" not in svg and "2024-01-03</text>" in svg


def test_pareto_chart_keeps_the_top_codes_and_groups_the_rest():
    pareto = [{"code": f"rule_{i:02d}", "count": 30 - i, "cumulative_share": 0.0} for i in range(25)]
    top = report.pareto_top(pareto)
    assert len(top) == report.PARETO_BARS
    assert top[-1] == {"code": "6 other codes", "count": sum(30 - i for i in range(19, 25)), "cumulative_share": 1.0}
