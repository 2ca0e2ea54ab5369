"""schedules.yaml: the shipped file is valid; every mistake is reported with file:line and what to fix."""

from __future__ import annotations

import textwrap
import threading
import time
from datetime import datetime

import pytest

from orderbots import schedule
from orderbots.errors import ConfigError
from orderbots.scheduler import Debouncer
from tests.plugins.cli import REPO, poll

GOOD_JOB = """\
jobs:
  - name: validate
    bot: validate
    interval: {seconds: 30}
"""


def write(home, text: str):
    path = home / "schedules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_schedule_is_valid_and_runs_the_intake_and_validation():
    jobs = {j.name: j for j in schedule.load(REPO / "schedules.yaml")}
    assert {"folder_intake", "validate"} <= set(jobs)
    assert all(jobs[name].enabled and jobs[name].interval for name in ("folder_intake", "validate"))
    assert {"erp_entry", "wms_release", "notifier", "email_intake", "report"} <= set(jobs)
    assert jobs["validate"].misfire_grace_time == schedule.DEFAULT_MISFIRE_GRACE


def test_a_full_job_is_read_with_every_field(home):
    path = write(home, """\
        jobs:
          - name: nightly-validate
            bot: validate
            cron: "30 2 * * 1-5"
            args: {limit: 500}
            enabled: false
            misfire_grace_time: 900
          - name: folder_orders
            bot: folder_intake
            interval: {minutes: 1, seconds: 30}
            args: {folder: orders}
        """)
    nightly, folder = schedule.load(path)
    assert (nightly.name, nightly.bot, nightly.cron, nightly.args, nightly.enabled, nightly.misfire_grace_time) == \
        ("nightly-validate", "validate", "30 2 * * 1-5", {"limit": 500}, False, 900)
    assert folder.interval == {"minutes": 1, "seconds": 30} and folder.describe() == "every 1 minute, 30 seconds"
    next_nightly = nightly.trigger().get_next_fire_time(None, datetime.now().astimezone())
    assert (next_nightly.hour, next_nightly.minute) == (2, 30) and next_nightly.weekday() < 5
    assert folder.trigger().interval.total_seconds() == 90


BAD_SCHEDULES = [
    # (file text, line of the error, words the message must hold)
    ("jobs:\n  - name: a\n    bot: no_such_bot\n    interval: {seconds: 5}\n", 3, "no bot called 'no_such_bot'"),
    ("jobs:\n  - name: a\n    bot: validate\n    cron: \"61 * * * *\"\n", 4, "bad cron expression '61 * * * *'"),
    ("jobs:\n  - name: a\n    bot: validate\n    cron: \"every day\"\n", 4, "bad cron expression"),
    ("jobs:\n  - name: a\n    bot: validate\n    cron: \"* * * * *\"\n    interval: {seconds: 5}\n", 5,
     "both 'cron' and 'interval'"),
    ("jobs:\n  - name: a\n    bot: validate\n", 2, "neither 'cron' nor 'interval'"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5}\n    enabeld: true\n", 5,
     "unknown key 'enabeld'"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5}\n    enabled: \"yes\"\n", 5,
     "'enabled' must be true or false"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5}\n    args: [1, 2]\n", 5,
     "'args' must be a mapping"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5}\n    args: {lmit: 5}\n", 5,
     "bot 'validate' has no argument 'lmit'; it takes: limit"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: -5}\n", 4, "must be a number > 0"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {days: 1}\n", 4, "unknown interval unit 'days'"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: 30\n", 4, "interval must be a mapping"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5}\n    misfire_grace_time: \"300\"\n", 5,
     "'misfire_grace_time' must be a whole number"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5}\n"
     "  - name: a\n    bot: validate\n    interval: {seconds: 9}\n", 5, "'a' is already used at line 2"),
    ("jobs:\n  - bot: validate\n    interval: {seconds: 5}\n", 2, "job needs 'name'"),
    ("jobs:\n  - name: a\n    bot: 7\n    interval: {seconds: 5}\n", 3, "job needs 'bot' as text"),
    ("jobs:\n  - validate\n", 1, "job #1 must be a mapping"),
    ("jobs: {validate: 1}\n", 1, "'jobs' must be a list"),
    ("job:\n  - name: a\n", 1, "unknown key 'job'"),
    ("- name: a\n", 1, "expected a mapping with a 'jobs' list"),
    ("jobs:\n  - name: a\n    bot: validate\n    interval: {seconds: 5\n", 5, ""),
]


@pytest.mark.parametrize("text, line, words", BAD_SCHEDULES)
def test_mistakes_are_reported_with_file_line_and_reason(home, text, line, words):
    path = write(home, text)
    with pytest.raises(ConfigError) as err:
        schedule.load(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert words in str(err.value)


def test_missing_schedule_file_says_what_to_do(home):
    with pytest.raises(ConfigError, match="schedule file not found; create it"):
        schedule.load(home / "schedules.yaml")


def test_schedule_command_lists_jobs_or_reports_the_mistake(cli_invoke, home):
    write(home, GOOD_JOB)
    result = cli_invoke("schedule")
    assert result.exit_code == 0 and "every 30 seconds" in result.stdout
    path = write(home, GOOD_JOB.replace("validate\n    interval", "validat\n    interval"))
    result = cli_invoke("schedule")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:3: job 'validate': there is no bot called 'validat'")


def test_serve_refuses_to_start_on_a_bad_schedule(cli_invoke, home):
    path = write(home, GOOD_JOB.replace("{seconds: 30}", "{seconds: 0}"))
    result = cli_invoke("serve", "--max-seconds", "5")
    assert result.exit_code == 2 and f"{path}:4:" in result.stderr


def test_debouncer_runs_once_per_burst_after_the_quiet_time():
    fired = []
    debouncer = Debouncer(lambda: fired.append(time.monotonic()), quiet=0.3)
    began = time.monotonic()
    for _ in range(5):
        debouncer.poke()
        time.sleep(0.05)
    poll(lambda: fired, timeout=10)
    time.sleep(0.5)
    assert len(fired) == 1 and fired[0] - began >= 0.3


def test_debouncer_fires_within_max_wait_while_pokes_keep_coming():
    fired = threading.Event()
    debouncer = Debouncer(fired.set, quiet=0.3, max_wait=0.6)
    deadline = time.monotonic() + 10
    while not fired.is_set() and time.monotonic() < deadline:
        debouncer.poke()
        time.sleep(0.05)
    debouncer.cancel()
    assert fired.is_set(), "a steady stream of events must not postpone the run forever"


def test_serve_refuses_a_watched_folder_without_a_path(cli_invoke, home):
    write(home, GOOD_JOB)
    (home / "orderbots.yaml").write_text("runlog: runlog\nfolders:\n  - name: orders\n    stable_seconds: 2\n")
    result = cli_invoke("serve", "--max-seconds", "5")
    assert result.exit_code == 2
    assert f"{home / 'orderbots.yaml'}:3: each folder needs 'path' as text" in result.stderr
