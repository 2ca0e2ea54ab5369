"""The registry of rule kinds: built-in and custom checks, looked up by name from rule files.

A rule kind is a *factory* registered with ``@rule("name")``. Its keyword-only
parameters are the ``params`` a rule file may give (a parameter without a
default is required); it validates them once, at load time, and returns a
``check(order, ctx)`` that returns the ``Hit``s it found (any iterable; an
empty list or None when the order is fine). ``ctx`` is a ``RuleContext``. The
check runs for every order, so it should do as little as possible::

    @rule("no_po_box", placeholders=("street",))
    def no_po_box(*, words=("PO BOX",)):
        words = tuple(w.upper() for w in words)
        def check(order, ctx):
            street = order.ship_to.street
            return [Hit("ship_to.street", {"street": street})] if any(w in street.upper() for w in words) else []
        return check

``placeholders`` names the values a hit carries; rule messages may use them
(plus ``{po_number}`` and ``{customer}``) and a message naming any other
placeholder is rejected at load time. A factory raises ``ValueError`` or
``TypeError`` for a bad parameter value; the loader reports it with file and line.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple

COMMON_PLACEHOLDERS = ("po_number", "customer")


class Hit(NamedTuple):
    """One problem a check found: the order field it concerns and the values for the message."""

    field: str | None
    values: dict[str, Any]


Check = Callable[[Any, Any], Iterable[Hit] | None]


@dataclass(frozen=True)
class RuleKind:
    """A registered factory with the parameters it accepts."""

    name: str
    factory: Callable[..., Check]
    params: dict[str, bool] = field(default_factory=dict)  # name -> required
    placeholders: tuple[str, ...] | None = None

    def build(self, params: dict[str, Any]) -> Check:
        return self.factory(**params)


_KINDS: dict[str, RuleKind] = {}


def rule(name: str, *, placeholders: Iterable[str] | None = None):
    """Register the decorated factory as rule kind ``name`` (see module docstring)."""

    def register(factory: Callable[..., Check]) -> Callable[..., Check]:
        previous = _KINDS.get(name)
        if previous and _origin(previous.factory) != _origin(factory):
            raise ValueError(f"rule kind {name!r} is already registered by {_origin(previous.factory)}")
        params = {}
        for p in inspect.signature(factory).parameters.values():
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"rule kind {name!r}: parameter {p.name!r} must be keyword-only (after *)")
            params[p.name] = p.default is inspect.Parameter.empty
        _KINDS[name] = RuleKind(name, factory, params, None if placeholders is None else tuple(placeholders))
        return factory

    return register


def kind(name: str) -> RuleKind | None:
    """The registered kind ``name``, or None."""
    return _KINDS.get(name)


def kind_names() -> list[str]:
    return sorted(_KINDS)


def _origin(factory: Callable) -> str:
    return f"{factory.__module__}.{factory.__qualname__}"
