"""The portal page objects' "Acknowledge": posted from the PO page just read (no second page load), signed in
again after an ended session, given up after the navigation timeout, and an error answer kept as the evidence
shown."""

from contextlib import contextmanager

import pytest

from bots.portal_intake import load_portals, portal_screens
from orderbots import config
from orderbots.errors import ApplicationError
from orderbots.masterdata import MasterData
from tests.plugins.portal import portal_entry, write_portals


@contextmanager
def signed_in(home, portal, **entry):
    """A ``PortalScreens`` on ``portal`` (no retries, ``entry`` settings) and a list of the URLs its page loads."""
    write_portals(home, portal_entry(portal, retries=0, **entry))
    settings = config.load(home)
    (acme,) = load_portals(settings, MasterData.load(settings.rules_dir / "data"))
    with portal_screens(acme) as app:
        loads = []
        app.page.on("framenavigated", lambda frame: loads.append(frame.url) if frame == app.page.main_frame else None)
        yield app, loads


@pytest.fixture
def screens(home, portal):
    with signed_in(home, portal) as opened:
        yield opened


def test_acknowledge_posts_from_the_page_just_read(portal, screens):
    app, loads = screens
    first, second = portal.seed(2)
    assert app.read_po(first).status == "new"
    assert loads[-1].endswith(f"/portal/pos/{first}")
    loads.clear()
    assert app.acknowledge(first) == "acknowledged"
    assert loads == []  # posted from the page just read: no page load to acknowledge
    assert app.acknowledge(first) == "acknowledged"  # already acknowledged: opened again, nothing posted
    assert app.acknowledge(second) == "acknowledged"  # not read before: its page is opened first
    assert {n: p["status"] for n, p in portal.pos().items()} == {first: "acknowledged", second: "acknowledged"}
    portal.cancel(first)
    assert app.acknowledge(first) == "cancelled"


def test_acknowledge_signs_in_again_after_the_session_ended(portal, screens):
    app, _ = screens
    (number,) = portal.seed(1)
    app.read_po(number)
    app.session.context.clear_cookies()  # the portal no longer knows us: its answer is the sign-in page
    assert app.acknowledge(number) == "acknowledged"
    assert portal.pos()[number]["status"] == "acknowledged"


def test_an_error_answer_to_acknowledge_is_the_evidence(home, portal, screens):
    app, _ = screens
    (number,) = portal.seed(1)
    app.read_po(number)
    portal.server.set_faults(ghost_submit=1)  # acknowledged, but answered with HTTP 500
    folder = home / "evidence"
    with pytest.raises(ApplicationError, match="HTTP 500 when acknowledging purchase order"):
        with app.session.attempt(folder):
            app.acknowledge(number)
    assert "Internal Server Error" in (folder / "page.html").read_text()
    assert (folder / "screenshot.png").stat().st_size > 0
    assert not any(portal.password.encode() in f.read_bytes() for f in folder.rglob("*") if f.is_file())
    portal.server.set_faults()
    assert app.acknowledge(number) == "acknowledged"


def test_acknowledge_gives_up_after_the_navigation_timeout(home, portal):
    (number,) = portal.seed(1)
    with signed_in(home, portal, navigation_timeout=1) as (app, _):
        app.read_po(number)
        portal.server.set_faults(latency=2)
        with pytest.raises(ApplicationError, match=f"timed out when acknowledging purchase order {number}: "
                                                   "no answer within 1 s"):
            app.acknowledge(number)
