"""Fixtures that run the REAL sandbox ERP/WMS server (a subprocess) for any area's tests.

``sandbox_server``: a fresh sandbox per test (own database, no faults) using the
test's private ``home``; it has ``.url``, ``.user``, ``.password``,
``.db_path``, ``.set_faults(**kw)``, ``.orders()``, ``.stock(sku)`` and
``.output()``. The user, password and admin token are also exported to this
process's environment (``ORDERBOTS_SANDBOX_USER`` / ``_PASSWORD`` /
``_ADMIN_TOKEN``) so connectors can read the secret by name.

``sandbox_factory(*cli_args, env=None)`` starts one with extra options, e.g.
``sandbox_factory("--session-idle", "1", "--unique-po")``.
"""

import pytest

from sandbox.testing import PageClient, SandboxProcess


@pytest.fixture
def sandbox_factory(home, tmp_path, monkeypatch):
    started = []

    def start(*args: str, env: dict | None = None) -> SandboxProcess:
        n = len(started)
        server = SandboxProcess(home, tmp_path / f"sandbox{n}.db", tmp_path / f"sandbox{n}.log", *args, env=env)
        started.append(server)
        server.start()
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox_server(sandbox_factory) -> SandboxProcess:
    return sandbox_factory()


@pytest.fixture
def sandbox_client(sandbox_server) -> PageClient:
    """A browserless client of ``sandbox_server`` (not signed in)."""
    return PageClient(sandbox_server.url)
