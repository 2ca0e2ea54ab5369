"""Settings of one orderbots home (the repository root by default).

``load(home)`` reads ``<home>/orderbots.yaml`` (optional; every key has a
default) and resolves paths against the home. The home is ``home`` if given,
else ``$ORDERBOTS_HOME``, else the current directory. Environment overrides:
``ORDERBOTS_DB`` (database path), ``ORDERBOTS_CHROMIUM`` (browser executable, see ``chromium``).

Secrets are never read from files: config names an environment variable
(``password_env: ERP_PASSWORD``) and ``secret(name)`` reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import yamlfile
from .errors import ConfigError
from .store import Store

CONFIG_FILE = "orderbots.yaml"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")


@dataclass
class Settings:
    """Resolved configuration; ``data`` is the parsed ``orderbots.yaml``."""

    home: Path
    data: dict[str, Any] = field(default_factory=dict)

    def path(self, value: str | Path) -> Path:
        """``value`` resolved against the home."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.home / p

    @property
    def runlog_dir(self) -> Path:
        return self.path(self.data.get("runlog", "runlog"))

    @property
    def db_path(self) -> Path:
        return self.path(os.environ.get("ORDERBOTS_DB") or self.data.get("database") or self.runlog_dir / "orderbots.db")

    @property
    def artifacts_dir(self) -> Path:
        return self.runlog_dir / "artifacts"

    @property
    def rules_dir(self) -> Path:
        return self.path(self.data.get("rules", "rules"))

    @property
    def chromium(self) -> str:
        """The browser the bots drive: ``$ORDERBOTS_CHROMIUM``, else ``browser.executable``, else Debian's
        lighter headless shell when installed (about 40% less CPU per page), else ``/usr/bin/chromium``."""
        return (os.environ.get("ORDERBOTS_CHROMIUM") or self.section("browser").get("executable")
                or next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), CHROMIUM_CANDIDATES[-1]))

    def section(self, name: str) -> dict[str, Any]:
        """One top-level section of the config file, ``{}`` when absent."""
        value = self.data.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{yamlfile.where(self.home / CONFIG_FILE, self.data, name)}: "
                              f"'{name}' must be a mapping")
        return value

    def open_store(self) -> Store:
        return Store(self.db_path)


def load(home: str | Path | None = None) -> Settings:
    """Settings for ``home``; ``ConfigError`` (file:line) if the config file is malformed."""
    root = Path(home or os.environ.get("ORDERBOTS_HOME") or Path.cwd()).resolve()
    file = root / CONFIG_FILE
    data = yamlfile.load(file) if file.exists() else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}:1: expected a mapping of sections at the top level")
    return Settings(root, data)


def secret(env_name: str, purpose: str = "") -> str:
    """The value of environment variable ``env_name``; ``ConfigError`` naming the variable if unset."""
    value = os.environ.get(env_name)
    if not value:
        what = f" ({purpose})" if purpose else ""
        raise ConfigError(f"environment variable {env_name}{what} is not set; export it before starting the bot")
    return value
