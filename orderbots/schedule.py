"""The schedule: which bot runs when, read and validated from ``schedules.yaml``.

File format (the repository root holds the shipped one)::

    jobs:
      - name: validate            # unique job name
        bot: validate             # a module bots/<bot>.py with run(ctx, ...)
        interval: {seconds: 30}   # or: cron: "*/5 * * * *"  (exactly one of the two)
        args: {limit: 500}        # optional keyword arguments of the bot's run()
        enabled: true             # optional, default true
        misfire_grace_time: 300   # optional seconds a late run may still start

``load(path)`` returns the jobs or raises ``ConfigError`` naming ``file:line``
and what to fix: unknown keys, wrong types, unknown bot, an argument the bot's
``run`` does not take, a bad cron expression, both or neither trigger,
duplicate names. ``Job.trigger()`` builds the APScheduler trigger.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from . import yamlfile
from .bot import load_bot
from .errors import ConfigError
from .yamlfile import LineDict

SCHEDULES_FILE = "schedules.yaml"
DEFAULT_MISFIRE_GRACE = 300
INTERVAL_UNITS = ("seconds", "minutes", "hours")
JOB_KEYS = ("name", "bot", "cron", "interval", "args", "enabled", "misfire_grace_time")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class Job:
    """One validated schedule entry; ``cron`` or ``interval`` is set, never both."""

    name: str
    bot: str
    cron: str | None = None
    interval: dict[str, float] | None = None
    args: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    misfire_grace_time: int = DEFAULT_MISFIRE_GRACE

    def trigger(self) -> BaseTrigger:
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron)
        return IntervalTrigger(**self.interval)

    def describe(self) -> str:
        """The trigger in words, e.g. ``every 30 seconds`` or ``cron */5 * * * *``."""
        if self.cron is not None:
            return f"cron {self.cron}"
        return "every " + ", ".join(f"{n:g} {unit[:-1] if n == 1 else unit}" for unit, n in self.interval.items())


def load(path: str | Path) -> list[Job]:
    """Every job of the schedule file ``path`` (enabled or not); see module docstring."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: schedule file not found; create it (see the schedules.yaml shipped "
                          f"at the repository root) or pass --schedules PATH")
    data = yamlfile.load(path)
    if not isinstance(data, LineDict):
        raise ConfigError(f"{path}:1: expected a mapping with a 'jobs' list at the top level")
    extra = sorted(set(data) - {"jobs"})
    if extra:
        raise ConfigError(f"{yamlfile.where(path, data, extra[0])}: unknown key {extra[0]!r}; "
                          f"the top level has only 'jobs'")
    entries = data.get("jobs")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ConfigError(f"{yamlfile.where(path, data, 'jobs')}: 'jobs' must be a list of job mappings")
    jobs: list[Job] = []
    lines: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, LineDict):
            raise ConfigError(f"{yamlfile.where(path, data, 'jobs')}: job #{index} must be a mapping "
                              f"with name, bot and cron or interval")
        job = _job(path, entry)
        if job.name in lines:
            raise ConfigError(f"{yamlfile.where(path, entry, 'name')}: job name {job.name!r} is already "
                              f"used at line {lines[job.name]}; give each job its own name")
        lines[job.name] = entry.line_of("name")
        jobs.append(job)
    return jobs


def bot_parameters(bot: str) -> list[str] | None:
    """Names of the keyword arguments bot ``bot``'s ``run`` takes (None: any); ``ConfigError`` if no such bot."""
    try:
        module = load_bot(bot)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bot module that fails to import is a configuration problem
        raise ConfigError(f"bot {bot!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    params = list(inspect.signature(module.run).parameters.values())[1:]  # after ctx
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_bot_args(bot: str, args: dict[str, Any]) -> None:
    """``ConfigError`` unless bot ``bot`` exists and its ``run`` accepts every key of ``args``."""
    accepted = bot_parameters(bot)
    unknown = [name for name in args if accepted is not None and name not in accepted]
    if unknown:
        raise ConfigError(f"bot {bot!r} has no argument {unknown[0]!r}; it takes: {', '.join(accepted) or 'none'}")


def _job(path: Path, entry: LineDict) -> Job:
    def fail(key: str | None, message: str) -> ConfigError:
        return ConfigError(f"{yamlfile.where(path, entry, key)}: {message}")

    unknown = [k for k in entry if k not in JOB_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown key {unknown[0]!r}; a job has {', '.join(JOB_KEYS)}")
    for key in ("name", "bot"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(key if key in entry else None, f"job needs '{key}' as text")
    name, bot = entry["name"], entry["bot"]
    if not JOB_NAME.match(name):
        raise fail("name", f"job name {name!r} may hold only letters, digits and _ . : -")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"job {name!r}: 'enabled' must be true or false, not {enabled!r}")
    grace = entry.get("misfire_grace_time", DEFAULT_MISFIRE_GRACE)
    if not isinstance(grace, int) or isinstance(grace, bool) or grace <= 0:
        raise fail("misfire_grace_time", f"job {name!r}: 'misfire_grace_time' must be a whole number "
                                         f"of seconds > 0, not {grace!r}")
    args = entry.get("args") or {}
    if not isinstance(args, dict):
        raise fail("args", f"job {name!r}: 'args' must be a mapping of bot arguments, not {args!r}")
    try:
        bot_parameters(bot)
    except ConfigError as exc:
        raise fail("bot", f"job {name!r}: {exc}") from exc
    try:
        check_bot_args(bot, args)
    except ConfigError as exc:
        raise fail("args", f"job {name!r}: {exc}") from exc
    cron, interval = _trigger(entry, name, fail)
    return Job(name, bot, cron, interval, dict(args), enabled, grace)


def _trigger(entry: LineDict, name: str, fail) -> tuple[str | None, dict[str, float] | None]:
    has_cron, has_interval = "cron" in entry, "interval" in entry
    if has_cron == has_interval:
        which = "both 'cron' and 'interval'" if has_cron else "neither 'cron' nor 'interval'"
        raise fail("interval" if has_cron else None,
                   f"job {name!r} has {which}; give exactly one, e.g. cron: \"*/5 * * * *\" "
                   f"or interval: {{minutes: 5}}")
    if has_cron:
        expr = entry["cron"]
        if not isinstance(expr, str):
            raise fail("cron", f"job {name!r}: cron must be a quoted crontab expression like \"*/5 * * * *\"")
        try:
            CronTrigger.from_crontab(expr)
        except ValueError as exc:
            raise fail("cron", f"job {name!r}: bad cron expression {expr!r}: {exc} (expected 5 fields: "
                               f"minute hour day month weekday)") from exc
        return expr, None
    interval = entry["interval"]
    example = "interval: {seconds: 30} (units: " + ", ".join(INTERVAL_UNITS) + ")"
    if not isinstance(interval, dict) or not interval:
        raise fail("interval", f"job {name!r}: interval must be a mapping like {example}")
    for unit, value in interval.items():
        if unit not in INTERVAL_UNITS:
            raise fail("interval", f"job {name!r}: unknown interval unit {unit!r}; use {example}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise fail("interval", f"job {name!r}: interval {unit} must be a number > 0, not {value!r}")
    return None, dict(interval)
