"""Scheduled bots: one module per bot, each with ``run(ctx, **args)`` (see ``orderbots.bot``)."""
