"""`orderbots report`: the page by default, the same figures with --json."""

from __future__ import annotations

import json

from orderbots import kpi


def test_help_explains_with_an_example(cli_invoke):
    result = cli_invoke("report", "--help")
    assert result.exit_code == 0
    assert "Pareto" in result.output and "Example" in result.output
    assert "--json" in result.output and "--output" in result.output


def test_writes_the_page_to_the_configured_place(cli_invoke, flow, home):
    result = cli_invoke("report")
    assert result.exit_code == 0, result.output
    path = home / "runlog" / "report.html"
    assert f"report written to {path}" in result.output
    assert "Order flow report" in path.read_text(encoding="utf-8")


def test_output_option(cli_invoke, flow, tmp_path):
    target = tmp_path / "out" / "week.html"
    result = cli_invoke("report", "--days", "7", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "Orders received since" in target.read_text(encoding="utf-8")


def test_json_prints_the_same_figures(cli_invoke, flow):
    result = cli_invoke("report", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    computed = kpi.compute(flow.store).to_dict()
    for name in ("orders", "by_channel", "by_day", "straight_through", "exceptions", "retries", "runs"):
        assert printed[name] == computed[name], name
    assert printed["cycle_times"]["to_erp"]["count"] == 5


def test_json_with_days_limits_the_orders(cli_invoke, flow):
    assert json.loads(cli_invoke("report", "--json", "--days", "1").stdout)["orders"] == 6  # A and F are older


def test_a_broken_template_ends_with_a_clear_message(cli_invoke, store, home):
    (home / "templates" / "report" / "report.html").write_text("{% for x in %}", encoding="utf-8")
    result = cli_invoke("report")
    assert result.exit_code == 2
    assert "report.html:1" in result.stderr
