"""The KPI report page: one self-contained HTML file with inline SVG charts and CSS.

``write_report(settings, output=None, since=None, tz=None) -> Path`` computes the
figures (``orderbots.kpi``) and writes the page to ``output``, else to the
``report.output`` setting (default ``runlog/report.html``). The file is
replaced atomically, so a reader never sees half a report. ``render(kpis,
templates)`` returns the page as text.

The page comes from ``<templates>/report/report.html`` (``report.templates``,
default ``templates``), a Jinja2 template with autoescape; it gets ``kpis``
(``Kpis.to_dict()``), ``charts`` (name -> SVG markup or an empty-state
message, see ``orderbots.charts``) and the filters ``duration``, ``percent``
and ``number``. The page needs no scripts and loads nothing from outside.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from . import kpi
from .charts import bar_chart, empty_state, number, pareto_chart
from .config import Settings
from .errors import ConfigError

TEMPLATE = "report/report.html"
DEFAULT_OUTPUT = "runlog/report.html"
NO_ORDERS = "No orders yet"
PARETO_BARS = 20
# Units for duration axes: (largest value shown in this unit, divisor, axis name).
_UNITS = ((120, 1, "seconds"), (2 * 3600, 60, "minutes"), (3 * 86400, 3600, "hours"), (float("inf"), 86400, "days"))


def duration(seconds: float | None) -> str:
    """``seconds`` for people: ``42.0 s``, ``3 min 20 s``, ``2 h 05 min``, ``3 d 4 h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def charts(figures: dict[str, Any]) -> dict[str, Markup]:
    """Every chart of the report from ``Kpis.to_dict()``, by name."""
    days = figures["by_day"]
    channels = list(figures["by_channel"])
    stp = figures["straight_through"]
    retries = figures["retries"]
    pareto = pareto_top(figures["exceptions"])
    result = {
        "orders_per_day": bar_chart(
            "Orders per day and channel", [d["day"] for d in days],
            [(ch, [d["channels"].get(ch, 0) for d in days]) for ch in channels],
            stacked=True, x_label="day received", y_label="orders", empty=NO_ORDERS),
        "straight_through": bar_chart(
            "How orders went through", ["straight through", "touched by a person", "not (yet) in the ERP"],
            [("orders", [stp["straight_through"], stp["touched"], stp["not_in_erp"]])],
            x_label="path of the order", y_label="orders", empty=NO_ORDERS),
        "exceptions": pareto_chart(
            "Exceptions by rule (Pareto)", [e["code"] for e in pareto], [e["count"] for e in pareto],
            [e["cumulative_share"] for e in pareto], x_label="rule code", y_label="exceptions",
            empty="No exceptions yet" if figures["orders"] else NO_ORDERS),
        "retries": bar_chart(
            "Retries and failures per step and bot", [f"{r['step']} / {r['bot']}" for r in retries],
            [("retries", [r["retries"] for r in retries]), ("failures", [r["failures"] for r in retries])],
            x_label="step / bot", y_label="events",
            empty="No retries or failures yet" if figures["orders"] else NO_ORDERS),
        "runs": _run_chart(figures["runs"]),
    }
    for name, title, empty in (("to_erp", "Time from receipt to the ERP", "No order has reached the ERP yet"),
                               ("to_notice", "Time from receipt to the first customer notice",
                                "No customer notice has been sent yet")):
        histogram = figures["cycle_times"][name]["histogram"]
        result[name] = bar_chart(
            title, [b["label"] for b in histogram], [("orders", [b["count"] for b in histogram])],
            x_label="time taken", y_label="orders", gap=0.04, empty=empty if figures["orders"] else NO_ORDERS)
    return result


def pareto_top(pareto: list[dict[str, Any]], limit: int = PARETO_BARS) -> list[dict[str, Any]]:
    """The ``limit - 1`` most frequent codes and one bar for all the others (the table lists every code)."""
    if len(pareto) <= limit:
        return pareto
    rest = pareto[limit - 1:]
    other = {"code": f"{len(rest)} other codes", "count": sum(e["count"] for e in rest), "cumulative_share": 1.0}
    return [*pareto[:limit - 1], other]


def _run_chart(runs: list[dict[str, Any]]) -> Markup:
    finished = [r for r in runs if r["finished"]]
    if not finished:
        return empty_state("Bot run durations", "No bot run has finished yet" if runs else "No bot runs yet")
    _, divisor, unit = next(u for u in _UNITS if max(r["max"] for r in finished) <= u[0])
    return bar_chart(
        "Bot run durations", [r["bot"] for r in finished],
        [(name, [r[name] / divisor for r in finished]) for name in ("median", "p90", "max")],
        x_label="bot", y_label=f"duration ({unit})", empty="Every bot run took no measurable time")


def environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=duration, percent=percent, number=number)
    return env


def render(figures: kpi.Kpis, templates: Path) -> str:
    """The report page for ``figures``; ``ConfigError`` naming the template if it is missing or broken."""
    data = figures.to_dict()
    try:
        template = environment(templates).get_template(TEMPLATE)
        return template.render(kpis=data, charts=charts(data))
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"report template {templates / TEMPLATE} is missing; copy templates/report/ "
                          f"from the orderbots source or set report.templates in orderbots.yaml") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{exc.filename}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{templates / TEMPLATE}: {exc}") from exc


def output_path(settings: Settings) -> Path:
    """Where the report goes by default: ``report.output`` in orderbots.yaml, resolved against the home."""
    return settings.path(settings.section("report").get("output") or DEFAULT_OUTPUT)


def write_report(settings: Settings, output: Path | None = None, since: datetime | None = None,
                 tz: tzinfo | None = None) -> Path:
    """Compute the figures and write the page; see module docstring. Returns the file written."""
    target = Path(output) if output else output_path(settings)
    with settings.open_store() as store:
        figures = kpi.compute(store, since=since, tz=tz)
    page = render(figures, settings.path(settings.section("report").get("templates") or "templates"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.",
                                     delete=False) as tmp:
        tmp.write(page)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, target)
    return target
