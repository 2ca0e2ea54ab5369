"""``orderbots report``: the KPI report as one HTML file, or its figures as JSON (see orderbots.report)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from . import kpi, report
from .cli import pass_home


@click.command("report")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of writing the page.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page. Default: report.output in orderbots.yaml (runlog/report.html).")
@click.option("--days", type=click.IntRange(min=1),
              help="Only orders received (and bot runs started) in the last DAYS days. Default: everything.")
@pass_home
def command(home, as_json: bool, output: Path | None, days: int | None) -> None:
    """Report how the order flow performs: volume per channel and day, straight-through
    rate, cycle times, exceptions by rule (Pareto), retries and failures per step, and
    bot run durations.

    Writes one self-contained HTML page (charts and tables, no scripts, nothing
    loaded from the internet) that can be mailed or opened from disk. Days are
    counted in this machine's time zone.

    \b
    Examples:
      orderbots report                          write runlog/report.html
      orderbots report --days 7 -o week.html    the last week only
      orderbots report --json | jq .straight_through.rate
    """
    since = datetime.now(timezone.utc) - timedelta(days=days) if days else None
    if as_json:
        with home.store() as store:
            figures = kpi.compute(store, since=since)
        click.echo(json.dumps(figures.to_dict(), indent=2, ensure_ascii=False))
        return
    path = report.write_report(home.settings, output, since=since)
    click.echo(f"report written to {path}")
