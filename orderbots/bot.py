"""Running one bot once: the shared machinery every bot module plugs into.

A bot is a module ``bots.<name>`` with ``run(ctx: BotContext, **args) -> None``.
It does its work through ``ctx.store``, tallies outcomes with
``ctx.run.count(...)``, writes evidence under ``ctx.run.artifacts_dir`` and
checks ``ctx.stopping()`` between items so SIGTERM lets the current item finish.

``run_bot(name, settings, **args)`` opens the store, records the run in the run
log and returns the ``Run``; an exception in the bot is recorded and re-raised.
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .errors import ConfigError
from .runlog import Run, record_run
from .store import Store

BOT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class BotContext:
    settings: Settings
    store: Store
    run: Run
    stop: threading.Event = field(default_factory=threading.Event)
    show_progress: bool = False

    @property
    def owner(self) -> str:
        """Lease owner name: bot, host, process and thread."""
        return f"{self.run.bot}@{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def stopping(self) -> bool:
        return self.stop.is_set()


def load_bot(name: str):
    """The module ``bots.<name>``; ``ConfigError`` if there is no such bot."""
    if not BOT_NAME.match(name):
        raise ConfigError(f"bot name {name!r} is not valid (lower-case letters, digits, _)")
    try:
        module = importlib.import_module(f"bots.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"bots.{name}", "bots"):
            raise ConfigError(f"there is no bot called {name!r}; see `orderbots bots`") from exc
        raise
    if not callable(getattr(module, "run", None)):
        raise ConfigError(f"bots.{name} has no run(ctx) function")
    return module


def run_bot(name: str, settings: Settings, *, stop: threading.Event | None = None,
            show_progress: bool = False, **args: Any) -> Run:
    """Run bot ``name`` once with ``args``; see module docstring."""
    module = load_bot(name)
    with settings.open_store() as store, record_run(store, name, settings.artifacts_dir) as run:
        ctx = BotContext(settings, store, run, stop or threading.Event(), show_progress)
        module.run(ctx, **args)
    return run
