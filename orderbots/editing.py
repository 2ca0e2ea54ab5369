"""A person's corrections to a held order: ``FIELD=VALUE`` changes, or an edited YAML view of it.

Contract:
- ``apply_changes(order, ["ship_to.postcode=LS1 1AA", "lines.2.qty=5", "lines.3="])`` returns
  the corrected order. Fields: ``currency``, ``requested_date`` (YYYY-MM-DD, empty for none),
  ``notes``, ``customer.name|email|locale``, ``ship_to.name|street|city|postcode|country`` and
  ``lines.N.sku|qty|unit|unit_price|description`` for the line numbered N; ``lines.N=`` removes it.
- ``editable_view(order)`` is the YAML text a person edits; ``from_view(order, text)`` reads it back
  (lines may also be added or removed there); an empty text means the person cancelled (``None``).
- The customer id and PO number are the order's identity and cannot be changed (reject the order
  instead). The corrected order has no intake problems left: the person reviewed them, and the
  rules run again on the corrected order.
- A bad field or value raises ``InputError`` naming it and saying what is allowed.
- ``differences(before, after)`` lists ``field: old -> new`` for the order's history.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from .errors import InputError
from .model import Address, Order, OrderLine

HEADER = ("currency", "requested_date", "notes")
CUSTOMER = ("name", "email", "locale")
SHIP_TO = tuple(f.name for f in dataclasses.fields(Address))
LINE = ("sku", "qty", "unit", "unit_price", "description")
FIELDS = (*HEADER, *(f"customer.{f}" for f in CUSTOMER), *(f"ship_to.{f}" for f in SHIP_TO),
          *(f"lines.N.{f}" for f in LINE), "lines.N")


def apply_changes(order: Order, changes: list[str] | tuple[str, ...]) -> Order:
    """``order`` with each ``FIELD=VALUE`` of ``changes`` applied, in order (see module docstring)."""
    data = order.to_dict()
    for change in changes:
        path, sep, value = change.partition("=")
        if not sep:
            raise InputError(f"{change!r}: write FIELD=VALUE, e.g. ship_to.postcode=LS1 1AA")
        _set(data, path.strip(), value.strip())
    return _corrected(order, data)


def editable_view(order: Order) -> str:
    """The parts of ``order`` a person may edit, as YAML (decimals as exact text)."""
    d = order.to_dict()
    view = {"customer": d["customer"], "po_number": d["po_number"], **{k: d[k] for k in HEADER},
            "ship_to": d["ship_to"], "lines": d["lines"]}
    head = ("# Correct the order below, save and close the editor. The customer id and PO number\n"
            "# cannot change. Delete all text to cancel.\n")
    return head + yaml.safe_dump(view, allow_unicode=True, sort_keys=False)


def from_view(order: Order, text: str) -> Order | None:
    """``order`` as described by an edited ``editable_view`` text; ``None`` if the text is empty."""
    try:
        view = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"the edited order is not valid YAML: {exc}") from None
    if view is None:
        return None
    if not isinstance(view, dict):
        raise InputError("the edited order must be the mapping shown in the editor (customer, lines, ...)")
    data = order.to_dict()
    for name in ("customer", "po_number", *HEADER, "ship_to", "lines"):
        if name in view:
            data[name] = view[name]
    return _corrected(order, data)


def differences(before: Order, after: Order) -> list[str]:
    """``field: old -> new`` for every field that differs, lines by line number."""
    old, new = _flat(before), _flat(after)
    return [f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}"
            for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def _set(data: dict[str, Any], path: str, value: str) -> None:
    parts = path.split(".")
    if len(parts) == 1 and path in HEADER:
        data[path] = value
    elif len(parts) == 2 and parts[0] == "customer" and parts[1] in CUSTOMER:
        data["customer"][parts[1]] = value
    elif len(parts) == 2 and parts[0] == "ship_to" and parts[1] in SHIP_TO:
        data["ship_to"][parts[1]] = value
    elif parts[0] == "lines" and len(parts) in (2, 3):
        _set_line(data, path, parts, value)
    else:
        raise InputError(f"{path!r} is not a field that can be edited; fields: {', '.join(FIELDS)}")


def _set_line(data: dict[str, Any], path: str, parts: list[str], value: str) -> None:
    numbers = {str(line["line_no"]): line for line in data["lines"]}
    line = numbers.get(parts[1])
    if line is None:
        raise InputError(f"{path!r}: the order has no line {parts[1]}; its lines are {', '.join(numbers)}")
    if len(parts) == 2:
        if value:
            raise InputError(f"{path!r}: write {path}= (nothing after =) to remove the line, "
                             f"or {path}.FIELD=VALUE to change it")
        data["lines"].remove(line)
    elif parts[2] in LINE:
        line[parts[2]] = value
    else:
        raise InputError(f"{path!r}: a line's fields are {', '.join(LINE)}")


def _corrected(order: Order, data: dict[str, Any]) -> Order:
    if str(data["customer"].get("id")) != order.customer.id or str(data["po_number"]) != order.po_number:
        raise InputError(f"the customer id and PO number are the order's identity ({order.key}) and cannot "
                         "change; reject the order instead and ask the customer to send it again")
    data["problems"] = []
    data["requested_date"] = _date(data.get("requested_date"))
    data["lines"] = [_line(i, line) for i, line in enumerate(data.get("lines") or [], start=1)]
    if not data["lines"]:
        raise InputError("an order needs at least one line; reject it instead")
    try:
        return Order.from_dict(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise InputError(f"the corrected order is not valid: {exc}") from None


def _date(value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InputError(f"requested_date: {value!r} is not a date; write YYYY-MM-DD") from None


def _line(position: int, line: Any) -> dict[str, Any]:
    if not isinstance(line, dict) or not line.get("sku"):
        raise InputError(f"line {position}: needs at least sku and qty")
    line_no = line.get("line_no") or position
    return {"line_no": int(line_no), "sku": str(line["sku"]), "qty": _decimal(line_no, "qty", line.get("qty")),
            "unit": str(line.get("unit") or "EA"), "description": str(line.get("description") or ""),
            "unit_price": None if line.get("unit_price") in (None, "")
            else _decimal(line_no, "unit_price", line["unit_price"])}


def _decimal(line_no: Any, name: str, value: Any) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InputError(f"lines.{line_no}.{name}: {value!r} is not a number")
    return str(number)


def _flat(order: Order) -> dict[str, str]:
    d = order.to_dict()
    flat = {k: str(d[k] or "") for k in HEADER}
    flat.update({f"customer.{k}": str(d["customer"][k]) for k in CUSTOMER})
    flat.update({f"ship_to.{k}": str(d["ship_to"][k]) for k in SHIP_TO})
    for line in d["lines"]:
        flat.update({f"lines.{line['line_no']}.{k}": str(line[k] or "") for k in LINE})
    return flat
