"""Exactly-once email intake against a real Dovecot: big mailboxes, UIDVALIDITY changes, lost connections, kills."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from orderbots import config
from orderbots.bot import run_bot
from orderbots.errors import ApplicationError
from tests.plugins.dovecot import DropProxy, write_imap_config, xlsx_order_mail


def intake(settings, **args):
    return run_bot("email_intake", settings, **args)


def po_numbers(settings) -> list[str]:
    with settings.open_store() as store:
        return [item.order.po_number for item in store.items()]


def test_thousand_message_mailbox_is_imported_once_and_emptied(dovecot, imap_settings):
    dovecot.deliver(xlsx_order_mail(f"PO-{n:04}") for n in range(1000))

    run = intake(imap_settings)

    pos = po_numbers(imap_settings)
    assert len(pos) == 1000 and len(set(pos)) == 1000
    assert run.counts["processed"] == 1000
    assert dovecot.count("INBOX") == 0
    assert dovecot.count("Processed") == 1000

    again = intake(imap_settings)
    assert len(po_numbers(imap_settings)) == 1000
    assert again.counts["processed"] == 0


def test_uidvalidity_change_resyncs_by_message_id(dovecot, imap_settings):
    dovecot.append(xlsx_order_mail("PO-OLD-0"))
    intake(imap_settings)
    for n in range(20):
        dovecot.append(xlsx_order_mail(f"PO-OLD-{n}"))
    intake(imap_settings, limit=20)
    # the mailbox is migrated: old, already imported mail comes back re-encoded (new MIME boundaries)
    # next to new mail, and every message gets a new UID under a new UIDVALIDITY (lower than our last UID)
    restored = [xlsx_order_mail(f"PO-OLD-{n}") for n in range(10)] + [xlsx_order_mail(f"PO-NEW-{n}") for n in range(5)]
    for raw in restored:
        dovecot.append(raw)
    dovecot.change_uidvalidity()

    run = intake(imap_settings)

    pos = po_numbers(imap_settings)
    assert sorted(pos) == sorted([f"PO-OLD-{n}" for n in range(20)] + [f"PO-NEW-{n}" for n in range(5)])
    assert run.counts["resync"] == 1
    assert run.counts["already_imported"] == 10 and run.counts["processed"] == 5
    assert dovecot.count("INBOX") == 0


def test_connection_dropped_mid_fetch_resumes_without_loss_or_duplicates(home, dovecot, monkeypatch):
    dovecot.deliver(xlsx_order_mail(f"PO-{n:03}") for n in range(300))
    proxy = DropProxy((dovecot.host, dovecot.port))
    try:
        write_imap_config(home, dovecot, monkeypatch, port=proxy.port, batch_size=25)
        proxy.cut_after(400_000)  # well inside the FETCH responses (~3 kB per message)

        run = intake(config.load(home))
    finally:
        proxy.close()

    assert proxy.cuts == 1
    assert run.counts["reconnect"] == 1
    pos = po_numbers(config.load(home))
    assert len(pos) == 300 and len(set(pos)) == 300
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 300


def test_server_down_is_an_application_error_and_the_next_run_catches_up(home, dovecot, monkeypatch):
    write_imap_config(home, dovecot, monkeypatch, max_reconnects=1)
    dovecot.deliver(xlsx_order_mail(f"PO-{n}") for n in range(3))
    dovecot.stop()
    with pytest.raises(ApplicationError, match="connecting to IMAP"):
        intake(config.load(home))
    dovecot.start()
    intake(config.load(home))
    assert sorted(po_numbers(config.load(home))) == ["PO-0", "PO-1", "PO-2"]


KILL_ON_MOVE = textwrap.dedent("""
    import os, signal
    from connectors import imap
    from orderbots import config
    from orderbots.bot import run_bot

    def die(self, uids, folder):
        if uids:
            os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before the message is moved

    imap.ImapMailbox.move = die
    run_bot("email_intake", config.load())
""")


def test_bot_killed_between_commit_and_move_does_not_import_twice(dovecot, imap_settings):
    dovecot.deliver(xlsx_order_mail(f"PO-{n}") for n in range(8))

    done = subprocess.run([sys.executable, "-c", KILL_ON_MOVE], env=os.environ.copy(), capture_output=True,
                          timeout=120)

    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert len(po_numbers(imap_settings)) == 8  # committed...
    assert dovecot.count("INBOX") == 8  # ...but not moved

    run = intake(imap_settings)

    assert sorted(po_numbers(imap_settings)) == [f"PO-{n}" for n in range(8)]
    assert run.counts["already_imported"] == 8 and run.counts["processed"] == 0
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 8
