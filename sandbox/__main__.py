"""``python -m sandbox``: the same as ``orderbots sandbox``."""

from .cli import main

main(prog_name="sandbox")
