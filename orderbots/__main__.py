"""``python -m orderbots``: the same as the ``orderbots`` command."""

from .cli import main

main()
