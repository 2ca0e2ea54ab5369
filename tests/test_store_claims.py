"""Claims across real processes: no item is ever held by two workers; a killed worker's lease is recovered."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from orderbots import states
from orderbots.store import Store
from tests.plugins.cli import poll, sample_order

SPAWN = multiprocessing.get_context("spawn")


def _claim_until_empty(db_path: str, owner: str, start, results) -> None:
    """Worker process: claim validate work until none is left; report every key it got."""
    got = []
    with Store(db_path) as store:
        start.wait()
        while True:
            with store.claim(states.VALIDATE, owner) as item:
                if item is None:
                    break
                got.append(item.key)
                time.sleep(0.001)  # hold the lease a moment, so that workers overlap
                store.transition(item.key, states.VALIDATED, actor=owner)
    results.put((owner, got))


def _claim_and_hang(db_path: str, step_name: str, enter_working: bool, ready) -> None:
    """Worker process: claim one item with a 2 s lease, optionally enter the step's working state, hang."""
    step = states.STEPS[step_name]
    store = Store(db_path)
    with store.claim(step, "doomed-worker", lease=2.0) as item:
        if enter_working:
            store.transition(item.key, step.working, actor="doomed-worker", data={"attempt": 1})
        ready.set()
        time.sleep(600)


def test_racing_processes_never_claim_the_same_item(store):
    with store.transaction():
        keys = [store.add_order(sample_order(po=f"PO-{n}")).key for n in range(150)]
    start, results = SPAWN.Event(), SPAWN.Queue()
    workers = [SPAWN.Process(target=_claim_until_empty, args=(str(store.path), f"worker-{n}", start, results))
               for n in range(3)]
    for w in workers:
        w.start()
    start.set()
    got = dict(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    claimed = [key for keys_of_one in got.values() for key in keys_of_one]
    assert sorted(claimed) == sorted(keys), "every item claimed exactly once"
    assert sum(1 for keys_of_one in got.values() if keys_of_one) > 1, "the workers did not overlap"
    for key in keys:
        assert [e["to_state"] for e in store.events(key)] == ["received", "validated"]


def _kill_holder(store: Store, step_name: str, enter_working: bool) -> None:
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=_claim_and_hang, args=(str(store.path), step_name, enter_working, ready))
    holder.start()
    try:
        assert ready.wait(60), "holder did not claim"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=30)
    assert holder.exitcode == -signal.SIGKILL


def test_lease_of_a_killed_worker_in_the_working_state_is_recovered(store):
    key = store.add_order(sample_order()).key
    store.transition(key, states.VALIDATED, actor="validate")
    _kill_holder(store, "erp_entry", enter_working=True)
    assert store.get(key).state == states.ENTERING_ERP

    lease = store.db.execute("SELECT lease_owner, lease_expires FROM orders WHERE key = ?", (key,)).fetchone()
    assert lease["lease_owner"] == "doomed-worker"
    if time.time() < lease["lease_expires"] - 0.5:  # still leased: nobody else may take it
        with store.claim(states.ERP_ENTRY, "too-early") as item:
            assert item is None

    def recovered_claim():
        """the item is claimable again after its lease expired"""
        with store.claim(states.ERP_ENTRY, "rescuer") as item:
            return item

    item = poll(recovered_claim, timeout=30)
    assert item.key == key and item.recovered and item.state == states.ENTERING_ERP
    last = store.events(key)[-1]
    assert last["actor"] == "rescuer" and "lease expired" in last["reason"]


def test_lease_of_a_killed_worker_before_the_side_effect_is_taken_over_plainly(store):
    key = store.add_order(sample_order()).key
    store.transition(key, states.VALIDATED, actor="validate")
    _kill_holder(store, "erp_entry", enter_working=False)

    def claim():
        """the item is claimable again after its lease expired"""
        with store.claim(states.ERP_ENTRY, "rescuer") as item:
            return item

    item = poll(claim, timeout=30)
    assert item.key == key and not item.recovered and item.state == states.VALIDATED
