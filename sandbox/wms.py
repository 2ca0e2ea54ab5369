"""WMS screens: stock enquiry and release of an ERP order (reserve its stock).

A release is all or nothing and happens once per ERP order number; the WMS
reads ERP orders from the shared sandbox database. Screen texts are the
contract in ``sandbox/SCREENS.md``.
"""

from __future__ import annotations

from .app import Area, Request, Response, Route, Sandbox, redirect, stale_form, url
from .db import ReleaseRefused


def stock_page(app: Sandbox, req: Request, area: Area) -> Response:
    sku = req.query.get("sku", "").strip().upper()
    rows = app.db.stock(sku)
    alerts = [f"Unknown item {sku}"] if sku and not rows and app.db.item(sku) is None else []
    return app.render(req, "wms_stock.html", heading="Stock", sku=sku, rows=rows, alerts=alerts)


def stock_submit(app: Sandbox, req: Request, area: Area) -> Response:
    values = req.form()
    if values is None:
        return stale_form(app, req, "/wms/stock")
    return redirect(url("/wms/stock", sku=values.get("sku", "").strip()))


def release_page(app: Sandbox, req: Request, area: Area) -> Response:
    return app.render(req, "wms_release.html", heading="Release order", order_number="", release=None)


def release_submit(app: Sandbox, req: Request, area: Area) -> Response:
    values = req.form()
    if values is None:
        return stale_form(app, req, "/wms/release")
    number = values.get("order_number", "").strip().upper()
    if not number:
        return app.render(req, "wms_release.html", heading="Release order", order_number="", release=None,
                          alerts=["ERP order number is required"])
    try:
        release = app.db.release(number)
    except ReleaseRefused as refused:
        return app.render(req, "wms_release.html", heading="Release order", order_number=number, release=None,
                          alerts=refused.messages)
    if app.ghost():
        return app.error_page(req, 500)
    return app.render(req, "wms_release.html", heading="Release order", order_number="", release=release,
                      statuses=[f"Released. WMS reference {release.wms_ref}"])


AREA = Area("wms", "WMS", "/wms", nav=[("Stock", "/wms/stock"), ("Release order", "/wms/release")], routes=[
    Route("GET", "/stock", stock_page),
    Route("POST", "/stock", stock_submit),
    Route("GET", "/release", release_page),
    Route("POST", "/release", release_submit),
])
