"""Field paths that rule files use to name parts of an order.

Order-level paths are attribute chains (``po_number``, ``customer.email``,
``ship_to.postcode``, ``lines``); line-level paths start with ``lines.``
(``lines.sku``, ``lines.unit_price``) and are read from each line.
``getter(path)`` compiles a path once and raises ``ValueError`` for a path that
does not exist on the order model.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, Callable

from ..model import Address, Customer, Order, OrderLine

_NESTED = {"customer": Customer, "ship_to": Address}
ORDER_PATHS = tuple(
    [f"{f.name}.{sub.name}" for f in dataclasses.fields(Order) if f.name in _NESTED
     for sub in dataclasses.fields(_NESTED[f.name])]
    + [f.name for f in dataclasses.fields(Order) if f.name not in _NESTED and f.name not in ("problems", "reply_to")]
)
LINE_PATHS = tuple(f"lines.{f.name}" for f in dataclasses.fields(OrderLine) if f.name != "line_no")


def is_line_path(path: str) -> bool:
    return path.startswith("lines.")


def getter(path: str) -> Callable[[Any], Any]:
    """A function reading ``path`` from an order (or, for ``lines.x``, from one line)."""
    if path in ORDER_PATHS:
        return attrgetter(path)
    if path in LINE_PATHS:
        return attrgetter(path.removeprefix("lines."))
    raise ValueError(f"unknown field {path!r}; fields are {', '.join(ORDER_PATHS + LINE_PATHS)}")


def is_blank(value: Any) -> bool:
    """None, an empty or all-space string, or an empty list."""
    if isinstance(value, str):
        return not value.strip()
    if value is None:
        return True
    return isinstance(value, (list, tuple)) and not value
