"""Customer portal screens: a buyer's supplier portal under ``/portal/`` (own login and session cookie).

The buyer publishes purchase orders addressed to us; we (the supplier user)
list them with filters and pages, open one, acknowledge it, or export the
current list as CSV. The *layout* (``classic`` or ``v2``, set by
``--portal-layout``, ``ORDERBOTS_PORTAL_LAYOUT`` or ``POST /_admin/portal/layout``)
renames, reorders and adds table columns and changes the page size, so a
client that reads by position breaks. Screen texts are the contract in
``sandbox/SCREENS.md`` ("Customer portal"); data lives in ``portal_db``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .app import Area, Credentials, Request, Response, Route, Sandbox, redirect, stale_form, url
from .db import price_text
from .portal_db import DEFAULT_BUYER, PortalData, Refused

LIST = "/portal/pos"
STATUS_CHOICES = ("All", "New", "Acknowledged", "Cancelled")


@dataclass(frozen=True)
class Layout:
    """Page size and the ``(key, header)`` columns of the PO list, the lines table and the CSV export."""

    page_size: int
    columns: tuple[tuple[str, str], ...]
    line_columns: tuple[tuple[str, str], ...]
    export_columns: tuple[tuple[str, str], ...]


_EXPORT_HEADER = (("number", "PO number"), ("status", "Status"), ("po_date", "PO date"),
                  ("delivery_date", "Requested delivery date"), ("currency", "Currency"), ("ship_name", "Ship-to name"),
                  ("street", "Street"), ("city", "City"), ("postcode", "Postcode"), ("country", "Country"),
                  ("notes", "Notes"), ("version", "Version"), ("changed_at", "Last changed"))
_EXPORT_LINE = (("line_no", "Line"), ("buyer_item", "Buyer item"), ("supplier_item", "Supplier item"),
                ("description", "Description"), ("qty", "Quantity"), ("unit", "Unit"), ("unit_price", "Unit price"))
LAYOUTS = {
    "classic": Layout(
        25,
        (("number", "PO number"), ("po_date", "PO date"), ("delivery_date", "Delivery date"), ("status", "Status"),
         ("changed_at", "Last changed")),
        _EXPORT_LINE,
        _EXPORT_HEADER + _EXPORT_LINE),
    "v2": Layout(
        10,
        (("changed_at", "Last update"), ("status", "Order status"), ("buyer", "Buyer"), ("number", "Order number"),
         ("value", "Order value"), ("po_date", "Order date"), ("delivery_date", "Deliver by")),
        (("line_no", "Pos."), ("description", "Description"), ("buyer_item", "Material"),
         ("supplier_item", "Supplier part"), ("qty", "Qty"), ("unit", "UoM"), ("unit_price", "Net price"),
         ("amount", "Net value")),
        (("changed_at", "Last changed"), ("amount", "Line value")) + _EXPORT_LINE[::-1]
        + tuple(c for c in _EXPORT_HEADER if c[0] != "changed_at")),
}
DEFAULT_LAYOUT = "classic"


def layout_of(app: Sandbox) -> Layout:
    return LAYOUTS[PortalData(app.db).setting("layout", DEFAULT_LAYOUT)]


def set_layout(data: PortalData, name: str) -> None:
    """Switch the layout; ``ValueError`` naming the known layouts."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown portal layout {name!r}; known layouts: {', '.join(LAYOUTS)}")
    data.set_setting("layout", name)


# -- list, filters, export ------------------------------------------------------------------------

def _filters(req: Request) -> tuple[dict[str, str], list[str]]:
    """The list filters from the query (``from``, ``to``, ``status``) and alerts for bad ones."""
    values = {k: req.query.get(k, "").strip() for k in ("from", "to", "status")}
    alerts = []
    for key, label in (("from", "Changed from"), ("to", "Changed to")):
        if values[key] and not _is_date(values[key]):
            alerts.append(f"{label} {values[key]} is not a valid date (YYYY-MM-DD)")
    if values["status"].capitalize() not in STATUS_CHOICES[1:]:
        values["status"] = ""
    return values, alerts


def _is_date(text: str) -> bool:
    try:
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and bool(date.fromisoformat(text))
    except ValueError:
        return False


def list_page(app: Sandbox, req: Request, area: Area) -> Response:
    values, alerts = _filters(req)
    layout = layout_of(app)
    try:
        page = max(1, int(req.query.get("page", "1")))
    except ValueError:
        page = 1
    rows, total = [], 0
    if not alerts:
        data = PortalData(app.db)
        found, total = data.list_pos(values["from"], values["to"], values["status"].lower(),
                                     (page - 1) * layout.page_size, layout.page_size)
        lines = data.lines([r["id"] for r in found])
        rows = [_cells(r, lines[r["id"]]) for r in found]
    pages = max(1, -(-total // layout.page_size))
    return app.render(req, "portal_list.html", heading="Purchase orders", values=values, alerts=alerts,
                      statuses_offered=STATUS_CHOICES, columns=layout.columns, rows=rows, page=page, pages=pages,
                      total=total,
                      prev_url=url(LIST, **values, page=page - 1) if page > 1 else "",
                      next_url=url(LIST, **values, page=page + 1) if page < pages else "",
                      export_url=url(LIST + ".csv", **values))


def list_submit(app: Sandbox, req: Request, area: Area) -> Response:
    values = req.form()
    if values is None:
        return stale_form(app, req, LIST)
    status = values.get("status", "")
    return redirect(url(LIST, **{"from": values.get("from", "").strip(), "to": values.get("to", "").strip(),
                                 "status": "" if status == "All" else status.lower()}))


def export_csv(app: Sandbox, req: Request, area: Area) -> Response:
    """Every PO of the current filters, one row per line (PO fields repeated), columns by the layout."""
    values, alerts = _filters(req)
    if alerts:
        return app.error_page(req, 400, "; ".join(alerts))
    data = PortalData(app.db)
    found, _ = data.list_pos(values["from"], values["to"], values["status"].lower(), 0, None)
    lines = data.lines([r["id"] for r in found])
    columns = layout_of(app).export_columns
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _, header in columns])
    for row in found:
        po = _cells(row, lines[row["id"]])
        for line in _line_cells(lines[row["id"]]):
            writer.writerow([{**po, **line}[key] for key, _ in columns])
    return Response(200, out.getvalue().encode("utf-8"), "text/csv; charset=utf-8",
                    headers=[("Content-Disposition", 'attachment; filename="purchase-orders.csv"')])


def _cells(row, lines) -> dict[str, str]:
    """A PO as display texts by column key."""
    value = sum((Decimal(l["qty"]) * Decimal(l["unit_price"]) for l in lines), Decimal(0))
    return {**dict(row), "status": row["status"].capitalize(), "value": f"{price_text(value)} {row['currency']}"}


def _line_cells(lines) -> list[dict[str, str]]:
    return [{**dict(l), "amount": price_text(Decimal(l["qty"]) * Decimal(l["unit_price"]))} for l in lines]


# -- detail and acknowledge -----------------------------------------------------------------------

DETAIL_LABELS = (("number", "PO number"), ("buyer", "Buyer"), ("supplier", "Supplier"), ("status", "Status"),
                 ("po_date", "PO date"), ("delivery_date", "Requested delivery date"), ("currency", "Currency"),
                 ("ship_name", "Ship-to name"), ("street", "Street"), ("city", "City"), ("postcode", "Postcode"),
                 ("country", "Country"), ("notes", "Notes"), ("version", "Version"), ("changed_at", "Last changed"))


def detail_page(app: Sandbox, req: Request, area: Area, number: str, statuses=(), alerts=()) -> Response:
    found = PortalData(app.db).po(number)
    if found is None:
        return app.render(req, "error.html", heading="Purchase order not found", status=404,
                          alerts=[f"Unknown purchase order {number}"])
    row, lines = found
    cells = _cells(row, lines)
    return app.render(req, "portal_detail.html", heading=f"Purchase order {number}",
                      pairs=[(label, cells[key]) for key, label in DETAIL_LABELS], number=number,
                      can_acknowledge=row["status"] == "new", line_columns=layout_of(app).line_columns,
                      lines=_line_cells(lines), statuses=list(statuses), alerts=list(alerts))


def acknowledge(app: Sandbox, req: Request, area: Area, number: str) -> Response:
    if req.form() is None:
        return stale_form(app, req, f"{LIST}/{number}")
    try:
        PortalData(app.db).acknowledge(number)
    except LookupError:
        return detail_page(app, req, area, number)
    except Refused as refused:
        return detail_page(app, req, area, number, alerts=[str(refused)])
    if app.ghost():
        return app.error_page(req, 500)
    req.session.add_flash("status", f"Purchase order {number} acknowledged")
    return redirect(f"{LIST}/{number}")


# -- admin hooks (POST /_admin/portal/<action>, JSON) ---------------------------------------------

def admin(app: Sandbox, method: str, action: str, values: dict) -> dict:
    """``seed`` {count, pos, buyer}, ``cancel`` {number}, ``change`` {number, ...fields}, ``layout`` {layout}
    (GET reads it). ``ValueError`` for bad input, ``LookupError`` for an unknown action or PO."""
    data = PortalData(app.db)
    if action == "layout":
        if method == "POST":
            set_layout(data, str(values.get("layout", "")))
        return {"layout": data.setting("layout", DEFAULT_LAYOUT)}
    if method != "POST":
        raise LookupError(f"/_admin/portal/{action} takes POST")
    if action == "seed":
        return {"numbers": data.seed(values.get("count", 0), values.get("pos"), values.get("buyer") or DEFAULT_BUYER)}
    if action in ("cancel", "change"):
        number = str(values.pop("number", ""))
        return data.cancel(number) if action == "cancel" else data.change(number, values)
    raise LookupError(f"no admin action {action!r}; actions: seed, cancel, change, layout")


PO = r"(?P<number>[A-Za-z0-9][A-Za-z0-9_-]{0,34})"


def area(credentials: Credentials | None = None) -> Area:
    """The portal area; ``credentials`` are the portal's own user (default: the sandbox user)."""
    return Area("portal", "Supplier portal", "/portal", nav=[("Purchase orders", LIST)], credentials=credentials,
                admin=admin, routes=[
                    Route("GET", "/pos", list_page),
                    Route("POST", "/pos", list_submit),
                    Route("GET", "/pos.csv", export_csv),
                    Route("GET", f"/pos/{PO}", detail_page),
                    Route("POST", f"/pos/{PO}/acknowledge", acknowledge),
                ])
