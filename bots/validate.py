"""The `validate` bot: runs every received order through the rules (see orderbots.pipeline)."""

from orderbots.pipeline import validate_pending


def run(ctx, limit=None):
    """Validate received orders; ``limit`` caps how many in this run."""
    validate_pending(ctx, limit=None if limit is None else int(limit))
