"""Page objects of the sandbox ERP (``/erp/``, contract in ``sandbox/SCREENS.md``).

Fields are found by label text or ARIA role only. ``ErpScreens`` offers:

- ``enter_order(order) -> Receipt``: header (the customer number typed, or with
  ``customer_lookup="popup"`` chosen in the "Look up" popup; either way the ERP
  checks it on "Next"), lines one by one with "Add line", review, "Submit order",
  the new order number read from the confirmation status. Each step's fields are
  filled by label and its button clicked in one page call (``ScreenApp.submit``),
  and each resulting page is read in one more (``ScreenApp.state``). Raises ``BusinessError`` when the ERP refuses
  the order's data (unknown customer or item, bad date, currency not offered),
  ``ApplicationError`` for failures before "Submit order" was clicked (nothing was
  created), and ``SubmitOutcomeUnknown`` when "Submit order" was clicked but no
  confirmation was read: the order may exist, so search before entering it again.
- ``find_orders(po_number) -> list[ErpListing]``: every order with exactly this
  customer PO, across all result pages.
- ``read_order(number) -> ErpOrder``: the detail page as a structure.

Each is one ``action``: an expired session is logged in again once, transparently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from orderbots.errors import ApplicationError, BusinessError
from orderbots.model import Order

from .browser import ChoiceUnavailable, PageState, ScreenApp, SessionExpired

ORDER_NUMBER = re.compile(r"\bSO-\d{6}\b")
HEADING = r"New sales order\s*[–-]\s*{}"
TRANSIENT_ALERTS = ("no longer valid", "No order is being entered")
UNKNOWN_CUSTOMER = "Unknown customer number"


@dataclass(frozen=True)
class Receipt:
    """What the ERP gave back for an order: its number."""

    erp_number: str


@dataclass(frozen=True)
class ErpListing:
    """One row of the "Find orders" results."""

    number: str
    customer: str
    po_number: str
    order_date: str
    status: str


@dataclass
class ErpOrder:
    """An ERP order as its detail page shows it: header fields by label, lines as dicts."""

    number: str
    fields: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)


class SubmitOutcomeUnknown(ApplicationError):
    """"Submit order" was clicked but no confirmation came back; ``answered`` if the server replied."""

    def __init__(self, message: str, *, answered: bool):
        super().__init__(message)
        self.answered = answered


def decimal_text(value: Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros: 12, 8.5."""
    return f"{value.normalize():f}"


class ErpScreens(ScreenApp):
    """See module docstring; ``customer_lookup`` is ``"type"`` (default) or ``"popup"``."""

    login_path = "/erp/login"
    home_path = "/erp/"
    name = "ERP"
    CUSTOMER_LOOKUPS = ("type", "popup")

    def __init__(self, *args, customer_lookup: str = "type", **kwargs):
        super().__init__(*args, **kwargs)
        if customer_lookup not in self.CUSTOMER_LOOKUPS:
            raise ValueError(f"customer_lookup must be one of {self.CUSTOMER_LOOKUPS}, not {customer_lookup!r}")
        self.customer_lookup = customer_lookup

    # -- order entry ------------------------------------------------------------

    def enter_order(self, order: Order) -> Receipt:
        """Key ``order`` in and submit it; see module docstring for the errors."""
        return self.action(f"entering order {order.po_number}", lambda: self._enter(order))

    def _enter(self, order: Order) -> Receipt:
        state = self.open("/erp/orders/new")
        if not self._on_step("header", state):
            raise ApplicationError(f"/erp/orders/new shows {state.heading!r}, not the header step")
        header = self._header_fields(order)
        if self.customer_lookup == "popup":
            self._choose_customer(order.customer.id)
        else:
            header = {"Customer number": order.customer.id, **header}
        try:
            state = self.submit("Next", "posting the order header", header)
        except ChoiceUnavailable as exc:
            raise BusinessError(f"the ERP does not offer {exc.label.lower()} {exc.value!r} (it offers "
                                f"{', '.join(exc.offered)})", code=f"erp_{exc.label.lower()}") from None
        self._after_step(state, "lines", "the order header", this_step="header")
        for number, line in enumerate(order.lines, start=1):
            state = self.submit("Add line", f"posting line {number} ({line.sku})", {
                "Item number": line.sku, "Quantity": decimal_text(line.qty),
                "Unit price": "" if line.unit_price is None else decimal_text(line.unit_price)})
            self._after_step(state, "lines", f"line {number} ({line.sku})")
            shown = len(_lines(state))
            if shown != number:
                raise ApplicationError(f"the ERP lines table shows {shown} lines after adding line {number}")
        state = self.submit("Review", "posting the order lines")
        self._after_step(state, "review", "the order lines", this_step="lines")
        return self._submit(order)

    @staticmethod
    def _header_fields(order: Order) -> dict[str, str]:
        fields = {"Customer PO": order.po_number,
                  "Requested delivery date": order.requested_date.isoformat() if order.requested_date else "",
                  "Ship-to name": order.ship_to.name, "Street": order.ship_to.street,
                  "City": order.ship_to.city, "Postcode": order.ship_to.postcode,
                  "Country": order.ship_to.country, "Notes": order.notes}
        if order.currency:
            fields["Currency"] = order.currency
        return fields

    def _choose_customer(self, customer_id: str) -> None:
        """Pick the customer in the "Look up" popup; ``BusinessError`` if the ERP does not know it."""
        page = self.page
        with page.expect_popup() as info:
            page.get_by_role("button", name="Look up").click()
        popup = info.value
        try:
            popup.wait_for_load_state("domcontentloaded")
            self._check(None, "opening the customer lookup", page=popup)
            state = self.submit("Search", "searching customers", {"Search customers": customer_id}, page=popup)
            if not any(row.get("Customer number") == customer_id for row in state.table("Customer number")):
                raise BusinessError(f"the ERP customer lookup does not know customer {customer_id!r}",
                                    code="erp_customer")
            row = self.table("Customer number", popup).get_by_role("row").filter(
                has=popup.get_by_role("cell", name=customer_id, exact=True))
            with popup.expect_event("close"):
                row.get_by_role("button", name="Select").first.click()
        finally:
            if not popup.is_closed():
                popup.close()
        chosen = page.get_by_label("Customer number", exact=True).input_value()
        if chosen.strip() != customer_id:
            raise ApplicationError(f"the customer lookup filled {chosen!r} instead of {customer_id!r}")

    def _after_step(self, state: PageState, next_step: str, what: str, this_step: str = "") -> None:
        """Judge the page after posting a step; the ERP's alerts about the data become ``BusinessError``."""
        alerts = state.alerts
        transient = [a for a in alerts if any(t in a for t in TRANSIENT_ALERTS)]
        if transient:
            raise ApplicationError(f"the ERP lost the order being entered when posting {what}: "
                                   f"{'; '.join(transient)}")
        if alerts and self._on_step(this_step or next_step, state):
            unknown_customer = [a for a in alerts if a.startswith(UNKNOWN_CUSTOMER)]
            if unknown_customer:
                raise BusinessError(f"the ERP does not know the customer: {'; '.join(unknown_customer)}",
                                    code="erp_customer")
            raise BusinessError(f"the ERP refused {what}: {'; '.join(alerts)}", code="erp_refused")
        if not self._on_step(next_step, state):
            raise ApplicationError(f"after posting {what} the ERP shows {state.heading!r}, not the "
                                   f"{next_step} step" + (f": {'; '.join(alerts)}" if alerts else ""))

    @staticmethod
    def _on_step(step: str, state: PageState) -> bool:
        return re.fullmatch(HEADING.format(step), state.heading) is not None

    def _submit(self, order: Order) -> Receipt:
        try:
            state = self.submit("Submit order", "submitting the order")
        except SessionExpired as exc:
            raise SubmitOutcomeUnknown(f"{exc}; the order may or may not exist", answered=True) from None
        except ApplicationError as exc:
            raise SubmitOutcomeUnknown(f"{exc}; the order may or may not exist", answered=True) from None
        except Exception as exc:  # noqa: BLE001 - Playwright timeout or crash after the click
            raise SubmitOutcomeUnknown(f"no answer to Submit order ({type(exc).__name__}); "
                                       "the order may or may not exist", answered=False) from None
        match = ORDER_NUMBER.search(" ".join(state.statuses))
        if match:
            return Receipt(match.group(0))
        if state.alerts and self._on_step("review", state):
            raise BusinessError(f"the ERP refused order {order.po_number}: {'; '.join(state.alerts)}",
                                code="erp_refused")
        raise SubmitOutcomeUnknown(f"the ERP showed {state.heading!r} and no order number after Submit order"
                                   + (f": {'; '.join(state.alerts)}" if state.alerts else ""), answered=True)

    # -- search and read-back ---------------------------------------------------------

    def find_orders(self, po_number: str) -> list[ErpListing]:
        """Every ERP order whose customer PO is exactly ``po_number``, across result pages."""
        return self.action(f"searching orders with PO {po_number}", lambda: self._find(po_number))

    def _find(self, po_number: str) -> list[ErpListing]:
        self.goto("/erp/orders")
        state = self.submit("Search", "searching orders", {"Customer PO": po_number})
        found: list[ErpListing] = []
        seen_pages = 0
        while True:
            seen_pages += 1
            for row in state.table("Order number"):
                if row.get("Customer PO", "").strip() == po_number:
                    found.append(ErpListing(row.get("Order number", ""), row.get("Customer", ""),
                                            row.get("Customer PO", ""), row.get("Order date", ""),
                                            row.get("Status", "")))
            if "Next page" not in state.links or seen_pages > 1000:
                return found
            self.post(self.page.get_by_role("link", name="Next page").first, "opening the next result page")
            state = self.state()

    def read_order(self, number: str) -> ErpOrder:
        """The detail page of order ``number`` as an ``ErpOrder``."""
        return self.action(f"reading order {number}", lambda: self._read(number))

    def _read(self, number: str) -> ErpOrder:
        state = self.open(f"/erp/orders/{number}")
        if number not in state.heading:
            raise ApplicationError(f"/erp/orders/{number} shows {state.heading!r}, not order {number}")
        return ErpOrder(number, state.record, _lines(state))


def _lines(state: PageState) -> list[dict[str, str]]:
    """Rows of the lines table (Line | Item | ...), without a "No lines yet" placeholder."""
    return [row for row in state.table("Item") if row.get("Item")]


def differences(order: Order, erp: ErpOrder) -> list[str]:
    """Every field where the ERP's read-back differs from ``order`` ("field: expected X, ERP shows Y").

    Compared: customer number, customer PO, requested delivery date, currency,
    ship-to, notes (whitespace-insensitive), and per line the item, quantity and
    unit price (numerically; a line without a price takes the ERP's price).
    """
    expected = {"Customer number": order.customer.id, "Customer PO": order.po_number,
                "Requested delivery date": order.requested_date.isoformat() if order.requested_date else "",
                "Currency": order.currency, "Ship-to name": order.ship_to.name,
                "Street": order.ship_to.street, "City": order.ship_to.city,
                "Postcode": order.ship_to.postcode, "Country": order.ship_to.country, "Notes": order.notes}
    found = []
    for label, want in expected.items():
        shown = erp.fields.get(label)
        if shown is None:
            found.append(f"{label}: the ERP detail page does not show it")
        elif _squash(shown) != _squash(want or ""):
            found.append(f"{label}: expected {want!r}, ERP shows {shown!r}")
    if len(erp.lines) != len(order.lines):
        found.append(f"lines: expected {len(order.lines)}, ERP shows {len(erp.lines)}")
    for n, (line, shown) in enumerate(zip(order.lines, erp.lines), start=1):
        if shown.get("Item", "").strip() != line.sku:
            found.append(f"line {n} item: expected {line.sku!r}, ERP shows {shown.get('Item')!r}")
        if not _same_number(shown.get("Quantity"), line.qty):
            found.append(f"line {n} quantity: expected {line.qty}, ERP shows {shown.get('Quantity')!r}")
        if line.unit_price is not None and not _same_number(shown.get("Unit price"), line.unit_price):
            found.append(f"line {n} unit price: expected {line.unit_price}, ERP shows {shown.get('Unit price')!r}")
    return found


def _squash(text: str) -> str:
    return " ".join(text.split())


def _same_number(text: str | None, value: Decimal) -> bool:
    try:
        return Decimal((text or "").replace(",", "").strip()) == value
    except ArithmeticError:
        return False
