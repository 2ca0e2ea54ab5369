"""A private orderbots home per test: a copy of the repository's rules and templates in tmp_path."""

import os
import shutil
from pathlib import Path

import pytest

from orderbots import config

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("ORDERBOTS_CORPUS") or REPO.parent / "shared" / "corpus")


def corpus(*parts: str) -> Path:
    """A path in the real-world corpus (``shared/corpus`` beside the repository, or ``$ORDERBOTS_CORPUS``).
    Without one the calling test is skipped, except under CI, where it must be there."""
    if not CORPUS.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"no real-world corpus at {CORPUS}: set ORDERBOTS_CORPUS to a copy of shared/corpus")
    return CORPUS.joinpath(*parts)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An orderbots home with the shipped rules/ and templates/; runlog/ inside it."""
    root = tmp_path / "home"
    root.mkdir()
    for name in ("rules", "templates"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name)
    monkeypatch.delenv("ORDERBOTS_DB", raising=False)
    monkeypatch.setenv("ORDERBOTS_HOME", str(root))
    return root


@pytest.fixture
def settings(home):
    return config.load(home)


@pytest.fixture
def store(settings):
    with settings.open_store() as s:
        yield s
