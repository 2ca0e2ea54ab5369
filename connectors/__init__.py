"""How to talk to one outside system. No business decisions here; depends on ``orderbots.model`` and ``orderbots.errors`` only."""
