"""bots.folder_intake end to end: real files in real folders, a real SQLite store, the real validator."""

import datetime
import re
import threading
import time
from decimal import Decimal

import pytest

from bots import folder_intake
from orderbots import config
from orderbots.bot import run_bot
from orderbots.errors import ConfigError
from tests.plugins.folder import ORDER_HEADER, csv_bytes, xlsx_bytes
from tests.plugins.home import corpus

SOON = datetime.date.today() + datetime.timedelta(days=20)
FULL_HEADER = ["PO Number", "Customer ID", "SKU", "Qty", "Delivery Date", "Ship To", "Address", "City",
               "Postcode", "Country"]
ACME_ADDRESS = ["Acme DC", "1 Dock Road", "Leeds", "LS1 1AA", "GB"]


def good_rows(po="PO-100", n=2):
    return [FULL_HEADER] + [[po, "C1001", f"SKU-100{i + 1}", i + 1, SOON, *ACME_ADDRESS] for i in range(n)]


def accounted(box, names):
    """Every dropped file ended in done/ or error/, each error/ file with its reason beside it."""
    out = box.outcome()
    assert out["inbox"] == [] and out["processing"] == []
    for name in names:
        assert name in out["done"] or (name in out["error"] and f"{name}.error.txt" in out["error"]), (name, out)


def test_a_sheet_becomes_validated_orders_and_the_file_moves_to_done(box, store):
    box.drop("po-100.xlsx", xlsx_bytes(("Orders", good_rows())))
    run = box.run()
    assert run.counts["files_imported"] == 1 and run.counts["orders_imported"] == 1 and run.counts["rows"] == 2
    assert run.counts["validated"] == 1
    [item] = store.items()
    assert item.key == "C1001/PO-100" and item.state == "validated"
    assert item.order.raw_path == str(box.done / "po-100.xlsx")
    assert (box.done / "po-100.xlsx").exists() and box.outcome()["error"] == []
    assert item.order.source_ref.startswith("sha256:") and item.order.source_ref.endswith("#Orders!2-3")
    [notice] = store.db.execute("SELECT kind, recipient FROM outbox").fetchall()
    assert tuple(notice) == ("order_received", "orders@acme-retail.example")


def test_the_same_file_twice_is_imported_once(box, store):
    data = xlsx_bytes(("Orders", good_rows()))
    box.drop("po.xlsx", data)
    box.run()
    box.drop("po.xlsx", data)
    run = box.run()
    assert run.counts["files_duplicate"] == 1 and "files_imported" not in run.counts
    assert len(store.items()) == 1
    assert box.outcome()["done"] == ["po (2).xlsx", "po (2).xlsx.duplicate.txt", "po.xlsx"]
    note = (box.done / "po (2).xlsx.duplicate.txt").read_text()
    assert "duplicate of done/po.xlsx" in note and "nothing was imported" in note


def test_a_bad_row_holds_only_its_order(box, store):
    rows = good_rows("PO-1") + [["PO-2", "C1001", "SKU-1001", "ten", SOON, *ACME_ADDRESS],
                                ["PO-2", "C1001", "SKU-1002", 5, SOON, *ACME_ADDRESS]]
    box.drop("mixed.xlsx", xlsx_bytes(("Orders", rows)))
    box.run()
    states = {i.key: i.state for i in store.items()}
    assert states == {"C1001/PO-1": "validated", "C1001/PO-2": "held"}
    held = store.get("C1001/PO-2")
    assert [l.sku for l in held.order.lines] == ["SKU-1002"]
    assert any("row 4, column D ('Qty'): quantity is 'ten'" in f.text() for f in held.findings)


BAD_CORPUS = {
    "corrupt.xlsx": (lambda: xlsx_bytes(("S", good_rows()))[:2000], "damaged zip|cannot read"),
    "empty-sheet.xlsx": (lambda: xlsx_bytes(("Empty", [])), "every sheet is empty"),
    "header-only.xlsx": (lambda: xlsx_bytes(("S", [FULL_HEADER])), "no order rows below the header in row 1"),
    "no-qty.csv": (lambda: csv_bytes([["PO", "Customer", "SKU"], ["1", "C1001", "SKU-1001"]]),
                   r"missing required column\(s\) quantity"),
    "zero-bytes.csv": (lambda: b"", "the file is empty"),
    "protected.xlsx": (lambda: corpus("sheets", "calamine-pass_protected.xlsx").read_bytes(),
                       "password protected"),
    "giant-cell.csv": (lambda: b"PO,Customer,SKU,Qty,Notes\r\n1,C1001,SKU-1001,1," + b"x" * 300_000 + b"\r\n",
                       "more than 131072 characters"),
}


def test_bad_input_corpus_each_file_ends_in_error_with_a_reason(box, store):
    for name, (make, _) in BAD_CORPUS.items():
        box.drop(name, make())
    run = box.run()
    assert run.counts["files_error"] == len(BAD_CORPUS)
    accounted(box, BAD_CORPUS)
    for name, (_, reason) in BAD_CORPUS.items():
        text = box.reason(name)
        assert f"{name} was not imported" in text and "drop the corrected file into" in text
        assert re.search(reason, text), (name, text)
    assert store.items() == []


def test_good_and_awkward_files_all_become_orders(box, store):
    files = {
        "formulas.xlsx": xlsx_bytes(("S", [ORDER_HEADER, ["F-1", "C1001", "SKU-1001", "=A1&B1", "=1+1", None,
                                                          SOON]])),
        "injection.csv": csv_bytes([ORDER_HEADER, ["I-1", "C1001", "SKU-1001", "=cmd|' /C calc'!A0", 1, "", ""]]),
        "merged.xlsx": xlsx_bytes(("S", [ORDER_HEADER, ["M-1", "C1001", "SKU-1001", "a", 1, None, None],
                                         [None, None, "SKU-1002", "b", 2, None, None]]), merged={"S": ["A2:A3",
                                                                                                        "B2:B3"]}),
        "serial-dates.xlsx": xlsx_bytes(("S", [ORDER_HEADER, ["D-1", "C1001", "SKU-1001", "", 1, None, 47574]])),
        "text-dates.csv": csv_bytes([ORDER_HEADER, ["D-2", "C1001", "SKU-1001", "", 1, "", "25/12/2030"]]),
        "gb18030.csv": csv_bytes([["客户订单号", "客户编号", "物料编码", "数量", "交货日期"],
                                  ["订单-1", "C1003", "SKU-3001", "1000.5", "2030年12月25日"]], encoding="gb18030"),
        "semicolons.csv": csv_bytes([["PO", "Customer", "SKU", "Qty"], ["S-1", "C1004", "SKU-1001", "1,5"]], ";"),
    }
    for name, data in files.items():
        box.drop(name, data)
    run = box.run()
    assert run.counts["files_imported"] == len(files)
    accounted(box, files)
    orders = {i.key: i.order for i in store.items()}
    # a workbook formula is never evaluated: only its saved result counts, and openpyxl saves none
    assert "quantity is empty (a formula without a saved result?)" in orders["C1001/F-1"].problems[0].text()
    assert orders["C1001/I-1"].lines[0].description == "=cmd|' /C calc'!A0"
    assert "formula_in_cell" in [f.code for f in orders["C1001/I-1"].problems]
    assert [l.sku for l in orders["C1001/M-1"].lines] == ["SKU-1001", "SKU-1002"]
    assert orders["C1001/D-1"].requested_date == datetime.date(2030, 4, 1)
    assert orders["C1001/D-2"].requested_date == datetime.date(2030, 12, 25)
    assert orders["C1003/订单-1"].lines[0].qty == Decimal("1000.5")
    assert str(orders["C1004/S-1"].lines[0].qty) == "1.5"


def test_file_over_the_size_limit_is_refused_unread(boxes, store):
    small = boxes["small"]
    big = small.drop("huge.csv", b"")
    with big.open("wb") as handle:  # 50 MB, sparse: the bot must refuse it from its size alone
        handle.truncate(50 * 1024 * 1024)
    small.run()
    accounted(small, ["huge.csv"])
    assert "the file is 50.0 MB, over the limit of 20.0 MB; split it" in small.reason("huge.csv")


def test_sheets_without_orders_beside_an_order_sheet_are_listed_in_notes(box, store):
    box.drop("book.xlsx", xlsx_bytes(("Orders", good_rows()), ("Readme", [["How to order"], ["call us"]]),
                                     ("Blank", [])))
    box.run()
    assert len(store.items()) == 1
    notes = (box.done / "book.xlsx.notes.txt").read_text()
    assert "sheet 'Readme': missing required column(s)" in notes and "Blank" not in notes


def test_temporary_names_are_left_alone(box, store):
    names = ["~$po.xlsx", "po.xlsx.tmp", "upload.part", ".hidden.csv", "chrome.crdownload"]
    for name in names:
        (box.inbox).mkdir(parents=True, exist_ok=True)
        (box.inbox / name).write_bytes(xlsx_bytes(("S", good_rows())))
    box.run()
    assert box.outcome()["inbox"] == sorted(names) and store.items() == []


def test_a_file_still_changing_waits_for_the_next_run(boxes, store):
    slow = boxes["slow"]
    slow.drop("fresh.xlsx", xlsx_bytes(("S", good_rows())))
    run = slow.run(wait=0)
    assert run.counts["files_waiting"] == 1 and slow.outcome()["inbox"] == ["fresh.xlsx"]
    run = slow.run(wait=4)  # waits until the file has been quiet for stable_seconds (1.5 s)
    assert run.counts["files_imported"] == 1 and slow.outcome()["inbox"] == []


@pytest.mark.timeout(60)
def test_a_file_written_slowly_is_taken_only_when_complete(boxes, store):
    slow = boxes["slow"]
    slow.inbox.mkdir(parents=True, exist_ok=True)
    rows = [["PO", "Customer", "SKU", "Qty"]] + [[f"W-{i // 10}", "C1001", "SKU-1001", i + 1] for i in range(80)]
    data = csv_bytes(rows)
    chunks = [data[i:i + len(data) // 8 + 1] for i in range(0, len(data), len(data) // 8 + 1)]

    def write():
        with (slow.inbox / "slow.csv").open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                handle.flush()
                time.sleep(0.25)

    writer = threading.Thread(target=write)
    writer.start()
    polls = 0
    while not (slow.done / "slow.csv").exists():
        slow.run(wait=0)
        polls += 1
        time.sleep(0.2)
    writer.join()
    assert polls > 5  # it really polled while the file grew
    accounted(slow, ["slow.csv"])
    items = store.items()
    assert len(items) == 8 and sum(len(i.order.lines) for i in items) == 80


def test_a_crash_between_commit_and_move_is_finished_on_restart(box, store, monkeypatch):
    box.drop("po.xlsx", xlsx_bytes(("Orders", good_rows())))

    def crash(*args):
        raise KeyboardInterrupt("killed after the commit")

    monkeypatch.setattr(folder_intake._Intake, "_finish", crash)
    with pytest.raises(KeyboardInterrupt):
        box.run()
    assert box.outcome()["processing"] == ["po.xlsx"] and len(store.items()) == 1
    monkeypatch.undo()
    run = box.run()
    assert box.outcome()["processing"] == [] and box.outcome()["done"] == ["po.xlsx"]
    assert len(store.items()) == 1 and "files_duplicate" not in run.counts


def test_a_file_left_in_processing_before_the_commit_is_read_again(box, store):
    (box.root / "processing").mkdir(parents=True)
    (box.root / "processing" / "po.xlsx").write_bytes(xlsx_bytes(("Orders", good_rows())))
    assert box.run().counts["files_imported"] == 1
    assert box.outcome()["done"] == ["po.xlsx"] and len(store.items()) == 1


def test_folder_default_customer_and_aliases(boxes, store):
    acme = boxes["acme"]
    acme.drop("bestellung.csv", csv_bytes([["Bestellnummer", "Artikel", "Anzahl"], ["B-7", "SKU-1001", "3"]], ";"))
    acme.run()
    [item] = store.items()
    assert item.key == "C1001/B-7" and item.order.lines[0].qty == 3


def test_config_errors_name_the_file_and_line(home):
    (home / "orderbots.yaml").write_text("folders:\n  - name: x\n    path: f\n    customer: NOPE\n")
    with pytest.raises(ConfigError, match=r"orderbots.yaml:4: folder 'x': customer 'NOPE' is not in"):
        run_bot("folder_intake", config.load(home))
    (home / "orderbots.yaml").write_text("folders:\n  - name: x\n    path: f\n    aliases: {colour: [Farbe]}\n")
    with pytest.raises(ConfigError, match=r"orderbots.yaml:4: unknown order field 'colour'"):
        run_bot("folder_intake", config.load(home))
    (home / "orderbots.yaml").write_text("folders:\n  - name: x\n    path: f\n")
    with pytest.raises(ConfigError, match="there is no folder 'y'"):
        run_bot("folder_intake", config.load(home), folder="y")


@pytest.mark.timeout(120)
def test_every_corpus_sheet_ends_as_orders_or_with_a_reason(box, store):
    names = sorted(p.name for p in corpus("sheets").iterdir())
    for name in names:
        box.drop(name, corpus("sheets", name).read_bytes())
    run = box.run()
    accounted(box, names)
    out = box.outcome()
    imported = [n for n in names if n in out["done"]]
    assert run.counts["files_imported"] + run.counts["files_error"] == len(names)
    assert "superstore-head1000.csv" in imported and len(store.items()) == run.counts["orders_imported"] > 400
    for name in names:
        if name in out["error"]:
            reason = box.reason(name)
            assert name in reason.splitlines()[2] and "unexpected error" not in reason, reason
    assert "password protected" in box.reason("calamine-pass_protected.xlsx")
    assert "declares more than" in box.reason("calamine-issue_594_dos.ods")


def test_taobao_gb18030_ends_exactly_like_its_utf8_twin(box):
    twin = corpus("sheets", "taobao_order_2016.gb18030.csv")
    box.drop("utf8.csv", corpus("sheets", "taobao_order_2016.csv").read_bytes())
    box.drop("gb.csv", twin.read_bytes())
    box.run()
    strip = lambda text: text.replace("utf8", "X").replace("gb", "X").rsplit("(sha256", 1)[0]  # noqa: E731
    assert strip(box.reason("utf8.csv")) == strip(box.reason("gb.csv"))
