"""The report page, opened in real Chromium: charts drawn, no errors, nothing loaded from outside."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from orderbots import report, states
from orderbots.errors import BusinessError, ConfigError
from tests.plugins.report import FLOW, flow_order

CHARTS = 7  # volume, straight-through, two cycle-time histograms, Pareto, retries, run durations

# Per chart SVG: its title, how many marks it draws, and how many of them have a visible size.
CHART_MARKS = """() => [...document.querySelectorAll('.chart svg')].map(svg => {
    const marks = [...svg.querySelectorAll('rect, path, circle')];
    const box = svg.getBoundingClientRect();
    return {title: svg.querySelector('title').textContent, marks: marks.length,
            visible: marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length,
            width: box.width, height: box.height};
})"""


def open_page(page, path):
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page


def test_every_chart_draws_marks_without_errors(flow, settings, browser_page):
    path = report.write_report(settings)
    assert path == settings.home / "runlog" / "report.html"
    page = open_page(browser_page, path)
    charts = page.evaluate(CHART_MARKS)
    assert len(charts) == CHARTS, [c["title"] for c in charts]
    for chart in charts:
        assert chart["marks"] > 0 and chart["visible"] > 0, chart
        assert chart["width"] > 0 and chart["height"] > 0, chart
    assert page.locator(".empty-state").count() == 0
    assert page.problems == []
    assert all(url.startswith("file://") for url in page.requested), page.requested


def test_charts_show_the_figures(flow, settings, browser_page):
    page = open_page(browser_page, report.write_report(settings))
    assert page.locator("#kpi-orders").inner_text() == "8"
    assert page.locator("#kpi-stp").inner_text() == "37.5%"
    pareto = page.locator("svg", has=page.locator("title", has_text="Exceptions by rule"))
    assert pareto.locator("rect.bar").count() == 4
    assert pareto.locator("rect.bar title").first.text_content() == "unknown_sku: 3"
    assert pareto.locator("circle.point").count() == 4 and pareto.locator("path.cumulative").count() == 1
    volume = page.locator("svg", has=page.locator("title", has_text="Orders per day and channel"))
    assert volume.locator("rect.bar").count() == len({(d, c) for d, c in _day_channels(flow)})
    # every chart is followed by a table with the same figures
    table = page.locator("table", has=page.locator("caption", has_text="Exceptions by rule"))
    assert table.locator("tr").nth(1).inner_text().split("\t")[:3] == ["unknown_sku", "3", "3"]
    assert page.get_by_role("img").count() == CHARTS  # the SVGs are announced to screen readers
    assert page.problems == []


def _day_channels(flow):
    return [(flow.received[n].astimezone().date(), FLOW[n][0]) for n in FLOW]


def test_empty_store_shows_empty_state_messages_not_empty_charts(store, settings, browser_page):
    page = open_page(browser_page, report.write_report(settings))
    assert page.locator("svg").count() == 0
    messages = page.locator(".empty-state").all_inner_texts()
    assert len(messages) == CHARTS
    assert messages.count("No orders yet") == CHARTS - 1 and "No bot runs yet" in messages
    assert page.locator("#kpi-stp").inner_text() == "-"
    assert page.problems == []


def test_orders_without_exceptions_say_so(store, settings):
    store.add_order(flow_order("Q", "email", datetime.now(timezone.utc)))
    html = report.write_report(settings).read_text(encoding="utf-8")
    assert "No exceptions yet" in html and "No order has reached the ERP yet" in html
    assert "No retries or failures yet" in html


def test_customer_text_is_escaped_in_charts_and_tables(store, settings, browser_page):
    key = store.add_order(flow_order("Z", "email", datetime.now(timezone.utc))).key
    store.hold_or_reject(key, BusinessError("bad", code="<img src=x onerror=alert(1)>"), "validate", states.VALIDATE)
    path = report.write_report(settings)
    html = path.read_text(encoding="utf-8")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    page = open_page(browser_page, path)
    assert page.locator("img").count() == 0 and page.problems == []


def test_the_page_is_self_contained(flow, settings):
    html = report.write_report(settings).read_text(encoding="utf-8")
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "url(" not in html


def test_output_path_comes_from_the_config(settings, store, tmp_path):
    settings.data["report"] = {"output": "reports/kpi.html"}
    assert report.write_report(settings) == settings.home / "reports" / "kpi.html"
    explicit = tmp_path / "elsewhere" / "r.html"
    assert report.write_report(settings, explicit) == explicit and explicit.stat().st_size > 0


def test_missing_template_is_a_config_error_naming_the_file(settings, store):
    settings.data["report"] = {"templates": "no-such-folder"}
    with pytest.raises(ConfigError, match=r"no-such-folder/report/report\.html is missing"):
        report.write_report(settings)
    assert not (settings.home / "runlog" / "report.html").exists()


@pytest.mark.parametrize("seconds, text", [(None, "-"), (4.25, "4.2 s"), (200, "3 min 20 s"),
                                           (7500, "2 h 05 min"), (3 * 86400 + 4 * 3600, "3 d 4 h")])
def test_durations_read_naturally(seconds, text):
    assert report.duration(seconds) == text
