"""ERP screens: multi-step sales order entry, customer look-up popup, order search and detail.

The order being entered lives in the session (``session.data["draft"]``):
the header page starts a fresh draft, the lines page adds lines, the review
page shows everything, and "Submit order" stores it in one transaction and
forgets the draft. Values are validated on the server; a problem is an alert
on the same page with the entered values kept. The screen texts are the
contract in ``sandbox/SCREENS.md``.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from .app import Area, Request, Response, Route, Sandbox, redirect, stale_form, url
from .db import DuplicatePO, price_text, qty_text

CURRENCIES = ("EUR", "USD", "CNY", "GBP")
PAGE_SIZE = 10
MAX_LINES = 200
HEADER_LABELS = (("customer_po", "Customer PO"), ("requested_date", "Requested delivery date"),
                 ("currency", "Currency"), ("ship_name", "Ship-to name"), ("street", "Street"), ("city", "City"),
                 ("postcode", "Postcode"), ("country", "Country"), ("notes", "Notes"))
TEXT_LIMITS = {"po": 35, "ship_name": 100, "street": 100, "city": 60, "postcode": 20, "notes": 1000}
FIELD_LABELS = {"po": "Customer PO", "ship_name": "Ship-to name", "street": "Street", "city": "City",
                "postcode": "Postcode", "notes": "Notes"}
NEW = "/erp/orders/new"


# -- header -----------------------------------------------------------------------------------------

def header_page(app: Sandbox, req: Request, area: Area) -> Response:
    req.session.data.pop("draft", None)
    return _header(app, req, {"currency": "EUR"})


def _header(app, req, values, alerts=()) -> Response:
    return app.render(req, "erp_header.html", heading="New sales order – header", values=_blank(values),
                      currencies=CURRENCIES, alerts=list(alerts))


def header_submit(app: Sandbox, req: Request, area: Area) -> Response:
    values = req.form()
    if values is None:
        return stale_form(app, req, NEW)
    header, customer_name, alerts = validate_header(app, values)
    if alerts:
        return _header(app, req, values, alerts)
    req.session.data["draft"] = {"header": header, "customer_name": customer_name, "lines": []}
    return redirect(f"{NEW}/lines")


def validate_header(app: Sandbox, values: dict) -> tuple[dict, str, list[str]]:
    """``(header row, customer name, alerts)`` from the posted header fields."""
    v = {k: (values.get(k) or "").strip() for k in ("customer", "po", "requested_date", "currency", "ship_name",
                                                    "street", "city", "postcode", "country", "notes")}
    alerts = []
    customer = app.db.customer(v["customer"]) if v["customer"] else None
    if not v["customer"]:
        alerts.append("Customer number is required")
    elif customer is None:
        alerts.append(f"Unknown customer number {v['customer']}")
    if not v["po"]:
        alerts.append("Customer PO is required")
    if v["requested_date"]:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v["requested_date"]):
                raise ValueError
            date.fromisoformat(v["requested_date"])
        except ValueError:
            alerts.append(f"Requested delivery date {v['requested_date']} is not a valid date (YYYY-MM-DD)")
    if v["currency"] not in CURRENCIES:
        alerts.append(f"Currency must be one of {', '.join(CURRENCIES)}")
    if v["country"] and not re.fullmatch(r"[A-Za-z]{2}", v["country"]):
        alerts.append(f"Country {v['country']} is not a two-letter ISO code such as DE")
    for key, limit in TEXT_LIMITS.items():
        if len(v[key]) > limit:
            alerts.append(f"{FIELD_LABELS[key]} is too long ({len(v[key])} characters, at most {limit})")
    header = {"customer_id": v["customer"], "customer_po": v["po"], "requested_date": v["requested_date"],
              "currency": v["currency"], "ship_name": v["ship_name"], "street": v["street"], "city": v["city"],
              "postcode": v["postcode"], "country": v["country"].upper(), "notes": v["notes"]}
    return header, customer["name"] if customer else "", alerts


# -- customer look-up popup ------------------------------------------------------------------------

def lookup_page(app: Sandbox, req: Request, area: Area) -> Response:
    target = req.query.get("target", "")
    target = target if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", target) else ""
    q = req.query.get("q", "")
    return app.render(req, "erp_lookup.html", heading="Customer look-up", target=target, q=q,
                      customers=app.db.customers(q))


def lookup_search(app: Sandbox, req: Request, area: Area) -> Response:
    values = req.form() or {}
    return redirect(url("/erp/customers/lookup", target=req.posted.get("target", ""), q=values.get("q", "").strip()))


# -- lines ------------------------------------------------------------------------------------------

def _draft(req: Request) -> dict | None:
    return req.session.data.get("draft")


def lines_page(app: Sandbox, req: Request, area: Area) -> Response:
    if _draft(req) is None:
        return _no_draft(req)
    return _lines(app, req, {})


def _lines(app, req, values, alerts=()) -> Response:
    return app.render(req, "erp_lines.html", heading="New sales order – lines", draft=_draft(req),
                      values=_blank(values), alerts=list(alerts))


def line_submit(app: Sandbox, req: Request, area: Area) -> Response:
    draft = _draft(req)
    if draft is None:
        return _no_draft(req)
    values = req.form()
    if values is None:
        return stale_form(app, req, f"{NEW}/lines")
    line, alerts = validate_line(app, draft, values)
    if alerts:
        return _lines(app, req, values, alerts)
    draft["lines"].append(line)
    req.session.add_flash("status", f"Line {len(draft['lines'])} added: {line['sku']}")
    return redirect(f"{NEW}/lines")


def validate_line(app: Sandbox, draft: dict, values: dict) -> tuple[dict, list[str]]:
    """``(line, alerts)`` from the posted line fields; a blank unit price takes the customer's price."""
    sku = (values.get("sku") or "").strip().upper()
    qty_raw, price_raw = (values.get("qty") or "").strip(), (values.get("unit_price") or "").strip()
    alerts = []
    item = app.db.item(sku) if sku else None
    if not sku:
        alerts.append("Item number is required")
    elif item is None:
        alerts.append(f"Unknown item {sku}")
    elif not item["active"]:
        alerts.append(f"Item {sku} is blocked and cannot be ordered")
    qty = _decimal(qty_raw)
    if qty is None or qty <= 0:
        alerts.append(f"Quantity {qty_raw or '(blank)'} is not a positive number")
    price = _decimal(price_raw) if price_raw else None
    if price_raw and (price is None or price < 0):
        alerts.append(f"Unit price {price_raw} is not a number such as 8.50")
    if len(draft["lines"]) >= MAX_LINES:
        alerts.append(f"An order can have at most {MAX_LINES} lines")
    if alerts:
        return {}, alerts
    unit_price = price_text(price) if price is not None else app.db.price(draft["header"]["customer_id"], sku)
    return {"sku": sku, "description": item["description"], "qty": qty_text(qty), "unit": item["unit"],
            "unit_price": unit_price}, []


def _decimal(text: str) -> Decimal | None:
    """A plain decimal such as ``12`` or ``8.50`` (no signs, exponents or thousands separators), else ``None``."""
    return Decimal(text) if re.fullmatch(r"\d{1,12}(\.\d{1,6})?", text) else None


# -- review and submit ------------------------------------------------------------------------------

def review_submit(app: Sandbox, req: Request, area: Area) -> Response:
    draft = _draft(req)
    if draft is None:
        return _no_draft(req)
    if not draft["lines"]:
        return _lines(app, req, {}, ["Add at least one line before review"])
    return redirect(f"{NEW}/review")


def review_page(app: Sandbox, req: Request, area: Area, alerts=()) -> Response:
    draft = _draft(req)
    if draft is None:
        return _no_draft(req)
    if not draft["lines"]:
        return redirect(f"{NEW}/lines")
    h = draft["header"]
    pairs = [("Customer number", h["customer_id"]), ("Customer name", draft["customer_name"]),
             *((label, h[key]) for key, label in HEADER_LABELS)]
    return app.render(req, "erp_review.html", heading="New sales order – review", draft=draft, pairs=pairs,
                      alerts=list(alerts))


def order_submit(app: Sandbox, req: Request, area: Area) -> Response:
    draft = req.session.data.pop("draft", None)  # taken first: a double click cannot store the order twice
    if draft is None:
        return _no_draft(req)
    if not draft["lines"]:
        req.session.data["draft"] = draft
        return redirect(f"{NEW}/lines")
    try:
        number = app.db.create_order(draft["header"], draft["lines"], unique_po=app.unique_po)
    except BaseException as exc:
        req.session.data["draft"] = draft
        if not isinstance(exc, DuplicatePO):
            raise
        return review_page(app, req, area, [f"Customer PO {draft['header']['customer_po']} is already used by "
                                            f"order {exc.order_number} of customer {draft['header']['customer_id']}"])
    if app.ghost():
        return app.error_page(req, 500)
    return redirect(f"/erp/orders/{number}/created")


def created_page(app: Sandbox, req: Request, area: Area, number: str) -> Response:
    return app.render(req, "erp_created.html", heading="Order created", number=number,
                      statuses=[f"Sales order {number} created"])


def _no_draft(req: Request) -> Response:
    req.session.add_flash("alert", "No order is being entered. Start with the header.")
    return redirect(NEW)


# -- search and detail -----------------------------------------------------------------------------

def search_page(app: Sandbox, req: Request, area: Area) -> Response:
    po = req.query.get("po", "").strip()
    try:
        page = max(1, int(req.query.get("page", "1")))
    except ValueError:
        page = 1
    rows = app.db.find_orders(po, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
    return app.render(req, "erp_search.html", heading="Find orders", po=po, page=page, orders=rows[:PAGE_SIZE],
                      prev_url=url("/erp/orders", po=po, page=page - 1) if page > 1 else "",
                      next_url=url("/erp/orders", po=po, page=page + 1) if len(rows) > PAGE_SIZE else "")


def search_submit(app: Sandbox, req: Request, area: Area) -> Response:
    values = req.form()
    if values is None:
        return stale_form(app, req, "/erp/orders")
    return redirect(url("/erp/orders", po=values.get("po", "").strip()))


def detail_page(app: Sandbox, req: Request, area: Area, number: str) -> Response:
    found = app.db.order(number)
    if found is None:
        return app.render(req, "error.html", heading="Order not found", status=404,
                          alerts=[f"Unknown order {number}"])
    order, lines, release = found
    pairs = [("Customer number", order["customer_id"]), ("Customer name", order["customer_name"] or ""),
             *((label, order[key]) for key, label in HEADER_LABELS), ("Status", order["status"]),
             ("Order date", order["created_at"][:10]), ("WMS reference", release["wms_ref"] if release else "")]
    return app.render(req, "erp_detail.html", heading=f"Sales order {number}", pairs=pairs, lines=lines)


def _blank(values: dict):
    """``values`` where a missing key reads as an empty string (for re-filling forms)."""
    return {k: "" for k in ("customer", "po", "requested_date", "currency", "ship_name", "street", "city",
                            "postcode", "country", "notes", "sku", "qty", "unit_price")} | dict(values)


ORDER_NUMBER = r"(?P<number>SO-\d{6})"
AREA = Area("erp", "ERP", "/erp", nav=[("New order", NEW), ("Find orders", "/erp/orders")], routes=[
    Route("GET", "/orders/new", header_page),
    Route("POST", "/orders/new", header_submit),
    Route("GET", "/customers/lookup", lookup_page),
    Route("POST", "/customers/lookup", lookup_search),
    Route("GET", "/orders/new/lines", lines_page),
    Route("POST", "/orders/new/lines", line_submit),
    Route("POST", "/orders/new/review", review_submit),
    Route("GET", "/orders/new/review", review_page),
    Route("POST", "/orders/new/submit", order_submit),
    Route("GET", f"/orders/{ORDER_NUMBER}/created", created_page),
    Route("GET", "/orders", search_page),
    Route("POST", "/orders", search_submit),
    Route("GET", f"/orders/{ORDER_NUMBER}", detail_page),
])
