"""The `validate` bot: runs every received order through the rules (see orderbots.pipeline).

``validate(ctx)`` is also what the intake bots call after an import, so every
channel is validated the same way: with ``wms.stock_check: true`` the WMS stock
screen is asked while the rules run, and an order that cannot be filled is held
before it reaches the ERP.
"""

from orderbots.pipeline import validate_pending

from ._screen_workers import wms_stock_lookup


def validate(ctx, limit=None):
    """Validate received orders; ``limit`` caps how many."""
    lookup = wms_stock_lookup(ctx.settings)
    if lookup is None:
        return validate_pending(ctx, limit=limit)
    with lookup:
        return validate_pending(ctx, limit=limit, stock_lookup=lookup)


def run(ctx, limit=None):
    """Validate received orders; ``limit`` caps how many in this run."""
    validate(ctx, limit=None if limit is None else int(limit))
