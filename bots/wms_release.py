"""Bot wms_release: release orders that are in the ERP to the warehouse (WMS release screen).

Per claimed item (step ``wms_release``): record ``releasing_wms``, release the
ERP order in the WMS and record ``released`` with the WMS reference. Releasing
is idempotent on the WMS side, so an unknown outcome (crash, HTTP 500 after the
WMS committed, lost lease) is resolved by releasing again: the WMS answers
"already released as WMS-…" and that reference is recorded. Short stock holds
the item with code ``stock`` and the quantities; nothing is reserved then.

Config: the ``wms:`` section of orderbots.yaml (see ``bots._screen_workers``);
password from ``wms.password_env`` (default ``ORDERBOTS_WMS_PASSWORD``).
"""

from __future__ import annotations

from connectors.wms_screens import WmsScreens
from orderbots import states
from orderbots.bot import BotContext
from orderbots.errors import BusinessError

from ._screen_workers import SANDBOX_URL, Job, ScreenConfig, retrying, run_workers

def run(ctx: BotContext, workers: int | None = None, limit: int | None = None) -> None:
    """Release every due item; ``workers`` overrides ``wms.workers``, ``limit`` caps the items taken."""
    config = ScreenConfig.load(ctx.settings, "wms", "ORDERBOTS_WMS_PASSWORD", states.WMS_RELEASE, SANDBOX_URL)
    run_workers(ctx, config, WmsScreens, release_one, workers=workers, limit=limit)


def release_one(job: Job) -> str:
    """Release one claimed item; returns the outcome counted in the run log."""
    item, store = job.item, job.store
    if not item.erp_number:
        raise BusinessError(f"{item.key} has no ERP order number to release", code="no_erp_number")
    attempt = item.attempts + 1
    if item.state != states.RELEASING_WMS:
        store.transition(item.key, states.RELEASING_WMS, actor=job.owner, reason=f"attempt {attempt}",
                         data={"attempt": attempt, "erp_number": item.erp_number})
    wms: WmsScreens = job.app
    release = retrying(job.config.in_attempt_retries, lambda: wms.release(item.erp_number))
    job.heartbeat()
    how = "was already released" if release.already_released else "released"
    store.transition(item.key, states.RELEASED, actor=job.owner, wms_ref=release.wms_ref,
                     reason=f"{item.erp_number} {how} as {release.wms_ref}",
                     data={"attempt": attempt, "wms_ref": release.wms_ref,
                           "already_released": release.already_released})
    return "already_released" if release.already_released else "released"
