"""Page objects of the sandbox WMS (``/wms/``, contract in ``sandbox/SCREENS.md``).

``WmsScreens`` offers:

- ``release(erp_number) -> Release``: the WMS reference of the release. Releasing
  is idempotent on the WMS side: an order released before (for instance by a
  submit whose answer was lost) comes back with ``already_released`` set and the
  existing reference. Short stock raises ``ShortStock`` (a ``BusinessError``
  with code ``stock`` and the quantities); an order the WMS does not know raises
  ``BusinessError`` (code ``wms_unknown_order``).
- ``available(skus) -> {sku: Decimal}``: available stock summed over warehouses;
  a SKU the WMS does not list has 0.

``StockLookup(...)`` wraps ``available`` as a plain callable for the validation
pipeline, keeping one signed-in browser across calls.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable

from orderbots.errors import ApplicationError, BusinessError

from .browser import Browser, BrowserOptions, ScreenApp

WMS_REF = re.compile(r"\bWMS-\d{6}\b")
SHORTAGE = re.compile(r"(\S+) requested (-?[\d.]+), available (-?[\d.]+)")


@dataclass(frozen=True)
class Release:
    wms_ref: str
    already_released: bool = False


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: Decimal
    available: Decimal


class ShortStock(BusinessError):
    """The WMS cannot release the order: not enough stock; ``shortages`` lists the quantities."""

    def __init__(self, erp_number: str, shortages: list[Shortage]):
        detail = "; ".join(f"{s.sku} requested {s.requested}, available {s.available}" for s in shortages)
        super().__init__(f"short stock for {erp_number}: {detail}", code="stock", severity="hold")
        self.shortages = shortages


class WmsScreens(ScreenApp):
    """See module docstring."""

    login_path = "/wms/login"
    home_path = "/wms/"
    name = "WMS"

    def release(self, erp_number: str) -> Release:
        """Release ERP order ``erp_number``; see module docstring."""
        return self.action(f"releasing {erp_number}", lambda: self._release(erp_number))

    def _release(self, erp_number: str) -> Release:
        self.goto("/wms/release")
        state = self.submit("Release", f"releasing {erp_number}", {"ERP order number": erp_number})
        alerts = " \n".join(state.alerts)
        if alerts:
            if "already released" in alerts and WMS_REF.search(alerts):
                return Release(WMS_REF.search(alerts).group(0), already_released=True)
            shortages = [Shortage(sku, Decimal(req), Decimal(avail))
                         for sku, req, avail in SHORTAGE.findall(alerts)]
            if shortages:
                raise ShortStock(erp_number, shortages)
            if "Unknown ERP order" in alerts:
                raise BusinessError(f"the WMS does not know ERP order {erp_number}", code="wms_unknown_order")
            raise BusinessError(f"the WMS refused to release {erp_number}: {alerts}", code="wms_refused")
        match = WMS_REF.search(" ".join(state.statuses))
        if not match:
            raise ApplicationError(f"the WMS showed no reference after releasing {erp_number}")
        return Release(match.group(0))

    def available(self, skus: Iterable[str]) -> dict[str, Decimal]:
        """Available stock per SKU over all warehouses (0 when the WMS lists none)."""
        wanted = list(dict.fromkeys(skus))
        return self.action("reading stock", lambda: self._available(wanted))

    def _available(self, skus: list[str]) -> dict[str, Decimal]:
        self.goto("/wms/stock")
        state = self.submit("Show stock", "showing stock", {"Item number": skus[0] if len(skus) == 1 else ""})
        totals = {sku: Decimal(0) for sku in skus}
        for row in state.table("Available"):
            sku = row.get("Item", "").strip()
            if sku in totals:
                try:
                    totals[sku] += Decimal(row.get("Available", "").strip())
                except InvalidOperation:
                    raise ApplicationError(f"the WMS stock table shows {row.get('Available')!r} "
                                           f"as available quantity of {sku}") from None
        return totals


class StockLookup:
    """``stock_lookup(skus) -> {sku: Decimal available}`` backed by the WMS stock screen.

    Callable from any thread: lookups run on one thread of its own, which opens a
    browser and signs in on the first call and keeps both for the next calls (a
    validation run asks once per order). Use as a context manager; leaving it
    closes the browser. A dead browser is replaced on the next call.
    """

    def __init__(self, options: BrowserOptions, base_url: str, user: str, password: str):
        self.options = options
        self.base_url = base_url
        self.user = user
        self._password = password
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="wms-stock")
        self._browser: Browser | None = None
        self._screens: WmsScreens | None = None

    def __call__(self, skus: Iterable[str]) -> dict[str, Decimal]:
        skus = list(skus)
        return self._thread.submit(self._available, skus).result() if skus else {}

    def _available(self, skus: list[str]) -> dict[str, Decimal]:
        if self._browser is None or not self._browser.alive:
            self._close_browser()
            self._browser = Browser(self.options).__enter__()
            session = self._browser.new_session(secrets=(self._password,))
            self._screens = WmsScreens(session, self.base_url, self.user, self._password)
        return self._screens.available(skus)

    def _close_browser(self) -> None:
        if self._browser is not None:
            self._browser.__exit__(None, None, None)
            self._browser = self._screens = None

    def __enter__(self) -> "StockLookup":
        return self

    def __exit__(self, *exc) -> None:
        self._thread.submit(self._close_browser).result()
        self._thread.shutdown()
