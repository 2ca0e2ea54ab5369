"""The `report` bot: writes the KPI report page (runlog/report.html; see orderbots.report)."""

from orderbots.report import write_report


def run(ctx):
    """Recompute the figures and rewrite the report page."""
    path = write_report(ctx.settings)
    ctx.run.count("written")
    return path
