"""The `validate` bot: runs every received order through the rules (see orderbots.pipeline)."""

from orderbots.pipeline import validate_pending

from .wms_release import stock_lookup


def run(ctx, limit=None):
    """Validate received orders; ``limit`` caps how many in this run. With ``wms.stock_check: true``
    the WMS stock screen is asked while the rules run."""
    validate_pending(ctx, limit=None if limit is None else int(limit), stock_lookup=stock_lookup(ctx.settings))
