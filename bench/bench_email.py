"""Email intake throughput against a real private Dovecot (tests/plugins/dovecot.py).

A mailbox of ``BENCH_EMAIL_MESSAGES`` messages (default 5,000), each with one
.xlsx order attachment, is written straight into Dovecot's maildir. Measured:

- fetch + parse: batched ``UID FETCH BODY.PEEK[]`` over IMAP, then each message
  parsed (MIME, attachment, spreadsheet, order mapping) into orders - the
  connector and reader the bot uses, without the store;
- end to end: the ``email_intake`` bot itself (fetch, read, commit to SQLite,
  MOVE to Processed, then validation of the new orders) on a fresh copy of the
  mailbox.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from bots.email_intake import MessageReader, RawArchive, load_config
from connectors.imap import ImapMailbox
from orderbots import config
from orderbots.bot import run_bot
from orderbots.masterdata import MasterData
from tests.plugins.dovecot import PASSWORD_ENV, Dovecot, xlsx_order_mail

REPO = Path(__file__).resolve().parents[1]
BATCH = 100


def _home(root: Path, server: Dovecot) -> config.Settings:
    home = root / "home"
    home.mkdir()
    shutil.copytree(REPO / "rules", home / "rules")
    os.environ[PASSWORD_ENV] = server.password
    (home / "orderbots.yaml").write_text(
        f"imap:\n  host: {server.host}\n  port: {server.port}\n  security: plain\n  user: {server.user}\n"
        f"  password_env: {PASSWORD_ENV}\n  batch_size: {BATCH}\n")
    return config.load(home)


def fetch_and_parse(settings: config.Settings) -> tuple[int, float, float]:
    """(messages, wall seconds, CPU seconds of this process) to fetch and read the whole folder."""
    cfg = load_config(settings)
    reader = MessageReader(MasterData.load(settings.rules_dir / "data"), cfg.aliases,
                           RawArchive(settings.runlog_dir / "raw" / "email"), cfg.max_message_bytes)
    began, cpu = time.perf_counter(), time.process_time()
    orders = 0
    with ImapMailbox(cfg.account) as mailbox:
        mailbox.select(cfg.folder)
        uids = mailbox.uids()
        for start in range(0, len(uids), BATCH):
            for message in mailbox.fetch(uids[start:start + BATCH]):
                orders += len(reader.read(message.raw, message.arrived).orders)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    if orders != len(uids):
        raise RuntimeError(f"{len(uids)} messages gave {orders} orders")
    return len(uids), elapsed, cpu


def main(messages: int | None = None) -> None:
    n = messages or int(os.environ.get("BENCH_EMAIL_MESSAGES", "5000"))
    server = Dovecot()
    server.start()
    try:
        settings = _home(server.root, server)
        mails = [xlsx_order_mail(f"PO-{i:06}") for i in range(n)]
        server.deliver(mails)
        server.count()  # let Dovecot index the new mail before timing
        count, elapsed, cpu = fetch_and_parse(settings)
        print(f"email_fetch_parse: {count / elapsed:.0f} messages/s (target >= 300)  "
              f"[{count} messages with one .xlsx each in {elapsed:.1f} s]")
        print(f"email_fetch_parse_cpu: {count / cpu:.0f} messages per CPU second of the bot (target >= 300)  "
              "[independent of other load on the machine; Dovecot's own CPU not included]")

        server.deliver(mails, folder="Again")  # the same mail again, for the bot
        settings.data["imap"]["folder"] = "Again"
        server.count("Again")
        began = time.perf_counter()
        run = run_bot("email_intake", settings)
        elapsed = time.perf_counter() - began
        done = run.counts["processed"]
        if done != n:
            raise RuntimeError(f"the bot processed {done} of {n} messages: {dict(run.counts)}")
        print(f"email_intake_end_to_end: {done / elapsed:.0f} messages/s (target >= 100)  "
              f"[fetch, read, commit, MOVE and validate {done} messages in {elapsed:.1f} s]")
    finally:
        server.close()


if __name__ == "__main__":
    main()
