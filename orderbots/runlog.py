"""The run log: every bot run is recorded with its counts per outcome and an artifacts folder.

``with record_run(store, bot, artifacts_root) as run:`` inserts a ``runs`` row
(status ``running``), yields a ``Run`` whose ``count(outcome)`` tallies
outcomes and whose ``artifacts_dir`` is ``<artifacts_root>/<run id>/``, and on
exit stores end time, counts and status ``ok`` or ``error`` with the error text
(the exception still propagates).
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import sqlite_utils

from .store import Store, utcnow


@dataclass
class Run:
    id: int
    bot: str
    artifacts_dir: Path
    counts: Counter = field(default_factory=Counter)

    def count(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] += n

    def artifact_path(self, *parts: str) -> Path:
        """A path under this run's artifacts folder (parents created); parts are sanitised."""
        path = self.artifacts_dir.joinpath(*map(safe_part, parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def safe_part(part: str) -> str:
    """``part`` made safe as one file or folder name: no path separators, no leading dots."""
    return part.replace("/", "_").replace("\\", "_").lstrip(".") or "_"


@contextmanager
def record_run(store: Store, bot: str, artifacts_root: Path) -> Iterator[Run]:
    runs = sqlite_utils.Database(store.db)["runs"]
    run_id = runs.insert({"bot": bot, "started_at": utcnow(), "status": "running"}).last_pk
    run = Run(run_id, bot, Path(artifacts_root) / str(run_id))
    runs.update(run_id, {"artifacts_dir": str(run.artifacts_dir)})
    status, error = "ok", None
    try:
        yield run
    except BaseException as exc:
        status, error = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        runs.update(run_id, {"ended_at": utcnow(), "status": status, "error": error,
                             "counts_json": json.dumps(dict(run.counts))})


def list_runs(store: Store, limit: int = 50) -> list[dict]:
    """Most recent runs first, counts decoded."""
    rows = store.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
    return [{**dict(r), "counts": json.loads(r["counts_json"])} for r in rows]
