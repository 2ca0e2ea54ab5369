"""Bot erp_entry: key validated orders into the ERP's order-entry screens, exactly once.

Each worker (``erp.workers`` threads, one browser each) claims items of step
``erp_entry`` and, per item:

1. If the item was ever in ``entering_erp`` (a crash, lost lease or error after
   that point), it searches the ERP by customer PO first. One live match for the
   customer: that is the order; it is read back and the item moves on without
   entering it again. Several matches: held (``erp_duplicates``) for a person.
2. Otherwise it records ``entering_erp`` with the attempt number, then keys the
   order in. A submit that got an answer but no confirmation (HTTP 500, lost
   session) is resolved in the same attempt by searching; one that got no answer
   at all is left to the next attempt, which searches first.
3. The ERP's detail page is read back and every field compared; a difference is
   an ``ApplicationError`` naming each field, so the item never moves on with a
   wrong ERP order. On success: ``in_erp`` with the ERP number, and the customer's
   confirmation notice is queued in the same transaction.

Config: the ``erp:`` section of orderbots.yaml (see ``bots._screen_workers``), plus
``customer_lookup``: ``type`` (default: the customer number is typed and the ERP
checks it on "Next") or ``popup`` (chosen in the "Look up" popup, as a clerk
would; about 0.5 s more per order). The password is read from the variable ``erp.password_env``
(default ``ORDERBOTS_ERP_PASSWORD``).
"""

from __future__ import annotations

import functools

from connectors.erp_screens import ErpScreens, Receipt, SubmitOutcomeUnknown, differences
from orderbots import notices, states
from orderbots.bot import BotContext
from orderbots.errors import ApplicationError, BusinessError

from ._screen_workers import SANDBOX_URL, Job, ScreenConfig, SectionReader, retrying, run_workers

def run(ctx: BotContext, workers: int | None = None, limit: int | None = None) -> None:
    """Enter every due item; ``workers`` overrides ``erp.workers``, ``limit`` caps the items taken."""
    config = ScreenConfig.load(ctx.settings, "erp", "ORDERBOTS_ERP_PASSWORD", states.ERP_ENTRY, SANDBOX_URL)
    lookup = SectionReader(ctx.settings, "erp").choice("customer_lookup", ErpScreens.CUSTOMER_LOOKUPS, "type")
    run_workers(ctx, config, functools.partial(ErpScreens, customer_lookup=lookup), enter_one,
                workers=workers, limit=limit)


def enter_one(job: Job) -> str:
    """Bring one claimed item into the ERP; returns the outcome counted in the run log."""
    item, store = job.item, job.store
    attempt = item.attempts + 1
    if item.recovered or _was_entering(job):
        receipt = _search(job)
        if receipt:
            _finish(job, receipt, attempt, found_by_search=True)
            return "found"
        if item.state == states.ENTERING_ERP:
            store.transition(item.key, states.RETRY_WAIT, actor=job.owner, attempts=attempt, next_attempt_at=0,
                             resume_step=job.config.step.name,
                             reason=f"attempt {attempt} was cut off; the ERP has no order with PO "
                                    f"{item.order.po_number}, so it is entered again")
            attempt += 1
    store.transition(item.key, states.ENTERING_ERP, actor=job.owner, reason=f"attempt {attempt}",
                     data={"attempt": attempt})
    receipt = _enter(job)
    _finish(job, receipt, attempt, found_by_search=False)
    return "entered"


def _was_entering(job: Job) -> bool:
    return any(e["to_state"] == states.ENTERING_ERP for e in job.store.events(job.item.key))


def _enter(job: Job) -> Receipt:
    """Key the order in; retries failures before the submit, and resolves an answered submit by searching."""
    erp: ErpScreens = job.app
    tries = job.config.in_attempt_retries
    for n in range(tries + 1):
        try:
            return erp.enter_order(job.item.order)
        except SubmitOutcomeUnknown as exc:
            if not exc.answered:
                raise  # the ERP may still be working on it: the next attempt searches first
            receipt = _search(job)
            if receipt:
                return receipt
            if n == tries:
                raise
        except BusinessError:
            raise
        except ApplicationError:
            if n == tries:
                raise
    raise AssertionError("unreachable")


def _search(job: Job) -> Receipt | None:
    """The customer's one live ERP order with this PO, None if there is none; held if several."""
    erp: ErpScreens = job.app
    order = job.item.order
    listings = retrying(job.config.in_attempt_retries, lambda: erp.find_orders(order.po_number))
    taken = _erp_numbers_of_other_items(job)
    mine = [l for l in listings
            if _is_customer(l.customer, order.customer.id, order.customer.name)
            and "cancel" not in l.status.lower() and l.number not in taken]
    if len(mine) > 1:
        raise BusinessError(f"the ERP holds {len(mine)} orders for customer {order.customer.id} with PO "
                            f"{order.po_number}: {', '.join(l.number for l in mine)}; a person must keep one",
                            code="erp_duplicates")
    return Receipt(mine[0].number) if mine else None


def _is_customer(shown: str, customer_id: str, name: str) -> bool:
    words = shown.replace("–", " ").replace("-", " ").split()
    return customer_id in words or shown.strip() == customer_id or bool(name and shown.strip() == name)


def _erp_numbers_of_other_items(job: Job) -> set[str]:
    rows = job.store.db.execute("SELECT erp_number FROM orders WHERE erp_number IS NOT NULL AND key != ?",
                                (job.item.key,))
    return {r[0] for r in rows}


def _finish(job: Job, receipt: Receipt, attempt: int, *, found_by_search: bool) -> None:
    """Read the order back, compare every field, then record ``in_erp`` and queue the confirmation."""
    erp: ErpScreens = job.app
    item, order = job.item, job.item.order
    shown = retrying(job.config.in_attempt_retries, lambda: erp.read_order(receipt.erp_number))
    diffs = differences(order, shown)
    if diffs:
        raise ApplicationError(f"ERP order {receipt.erp_number} differs from the order after entry: "
                               + "; ".join(diffs))
    job.heartbeat()
    ship_date = order.requested_date.isoformat() if order.requested_date else None
    job.store.transition(
        item.key, states.IN_ERP, actor=job.owner, erp_number=receipt.erp_number,
        reason=f"{'found in' if found_by_search else 'entered into'} the ERP as {receipt.erp_number}",
        data={"attempt": attempt, "erp_number": receipt.erp_number, "found_by_search": found_by_search},
        notices=notices.confirmed(order, item.key, receipt.erp_number, ship_date))
