"""Every shipped rule firing on a realistic bad order, and staying quiet on the good variant."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from orderbots.model import Address, Customer, Finding, OrderLine
from orderbots.rules import Exposure
from tests.plugins.rules import TODAY, acme_order, shanghai_order


def codes(findings):
    return [f.code for f in findings]


def only(findings, code) -> Finding:
    hits = [f for f in findings if f.code == code]
    assert len(hits) == 1, f"expected one {code}, got {codes(findings)}"
    return hits[0]


def test_clean_orders_pass_every_rule(evaluate):
    assert evaluate(acme_order()) == []
    assert evaluate(shanghai_order()) == []


def set_line(order, index, **changes):
    order.lines[index] = replace(order.lines[index], **changes)
    return order


# (order, code, severity, field, words in the English text, words in the Chinese text)
FIRING = {
    "missing_po": (acme_order(po=""), "missing_po", "reject", "po_number", ["purchase order number"], ["采购订单号"]),
    "no_lines": (acme_order(lines=[]), "no_lines", "reject", "lines", ["PO-4711", "no order lines"], ["PO-4711"]),
    "missing_sku": (set_line(acme_order(), 1, sku=""), "missing_sku", "hold", "lines[2].sku",
                    ["Line 2", "no item number"], ["第 2 行"]),
    "unknown_customer": (acme_order(customer=Customer("C9999", "Mystery Buyer GmbH", "buyer@mystery.example")),
                         "unknown_customer", "hold", "customer.id", ["C9999", "Mystery Buyer GmbH"], ["C9999"]),
    "invalid_email": (acme_order(customer=Customer("C1001", "Acme Retail Ltd", "orders@acme retail", "en")),
                      "invalid_email", "hold", "customer.email", ["orders@acme retail"], ["orders@acme retail"]),
    "qty_not_positive": (set_line(acme_order(), 0, qty=Decimal("0")), "qty_not_positive", "reject", "lines[1].qty",
                         ["Line 1", "SKU-1001", "greater than zero"], ["SKU-1001", "大于零"]),
    "negative_qty": (set_line(acme_order(), 2, qty=Decimal("-5")), "qty_not_positive", "reject", "lines[3].qty",
                     ["-5", "SKU-2001"], ["-5"]),
    "unknown_item": (set_line(acme_order(), 1, sku="SKU-7777"), "unknown_item", "reject", "lines[2].sku",
                     ["SKU-7777", "not in our catalogue"], ["SKU-7777", "产品目录"]),
    "inactive_item": (set_line(acme_order(), 0, sku="SKU-9001", unit_price=Decimal("7.00")), "inactive_item",
                      "reject", "lines[1].sku", ["SKU-9001", "Discontinued umbrella", "discontinued"], ["已停产"]),
    "qty_above_max": (set_line(acme_order(), 2, sku="SKU-1003", qty=Decimal("501"), unit_price=Decimal("39.00")),
                      "qty_above_max", "hold", "lines[3].qty", ["501", "SKU-1003", "500 PR"], ["501", "500"]),
    "currency_mismatch": (acme_order(currency="USD", lines=acme_order().lines[:1]), "currency_mismatch", "hold", "lines[1].unit_price",
                          ["SKU-1001", "EUR", "USD"], ["EUR", "USD"]),
    "price_deviation": (set_line(acme_order(), 0, unit_price=Decimal("7.90")), "price_deviation", "hold",
                        "lines[1].unit_price", ["7.90", "8.50", "7.1%", "2%"], ["7.90", "8.50"]),
    "customer_price_first": (set_line(shanghai_order(), 0, unit_price=Decimal("3.10")), "price_deviation", "hold",
                             "lines[1].unit_price", ["3.10", "22.00 CNY"], ["22.00"]),
    "credit_limit": (acme_order(customer=Customer("C1005", "Small Shop & Co", "owner@smallshop.example", "en"),
                                ship_to=Address("Small Shop & Co", "3 rue de la Paix", "Paris", "75002", "FR")),
                     "credit_limit", "hold", None, ["1358.00 EUR", "500 EUR"], ["信用额度"]),
    "invalid_date": (acme_order(requested_date="31/02/2025"), "invalid_date", "hold", "requested_date",
                     ["31/02/2025"], ["31/02/2025"]),
    "date_far_ahead": (acme_order(requested_date=TODAY + timedelta(days=4000)), "invalid_date", "hold",
                       "requested_date", ["365 days"], ["365"]),
    "delivery_in_past": (acme_order(requested_date=TODAY - timedelta(days=1)), "delivery_in_past", "hold",
                         "requested_date", ["2025-03-09", "in the past"], ["2025-03-09"]),
    "delivery_too_soon": (acme_order(requested_date=TODAY + timedelta(days=1)), "delivery_too_soon", "warn",
                          "requested_date", ["2025-03-11", "2025-03-12", "2 days"], ["2025-03-12"]),
    "address_incomplete": (acme_order(ship_to=Address("Acme Retail Ltd", "", "Manchester", "M1 1AE", "")),
                           "address_incomplete", "hold", "ship_to", ["street, country"], ["street, country"]),
}


@pytest.mark.parametrize("case", FIRING)
def test_rule_fires_with_messages_in_both_languages(evaluate, case):
    order, code, severity, field, en_words, zh_words = FIRING[case]
    finding = only(evaluate(order), code)
    assert (finding.severity, finding.field) == (severity, field)
    assert all(w in finding.messages["en"] for w in en_words), finding.messages["en"]
    assert all(w in finding.messages["zh-CN"] for w in zh_words), finding.messages["zh-CN"]
    assert "{" not in finding.messages["en"] + finding.messages["zh-CN"]


POSTCODES_OK = [("GB", "SW1A 1AA"), ("GB", "m11ae"), ("GB", "EC1A 1BB"), ("US", "10001"), ("US", "60614-1234"),
                ("DE", "10115"), ("FR", "75002"), ("FI", "00100"), ("ES", "28013"), ("CN", "200001"),
                ("NL", "1012 AB"), ("NL", "1012AB")]
POSTCODES_BAD = [("GB", "12345"), ("GB", "QQ1 1AA"), ("US", "1000"), ("US", "10001-12"), ("DE", "1011"),
                 ("FR", "7500"), ("FI", "001000"), ("ES", "53001"), ("CN", "20001"), ("NL", "0123 AB"),
                 ("NL", "1012 SA")]


@pytest.mark.parametrize("country,postcode", POSTCODES_OK)
def test_postcode_valid(evaluate, country, postcode):
    order = acme_order(ship_to=Address("Acme Retail Ltd", "1 Main Street", "Anytown", postcode, country))
    assert "invalid_postcode" not in codes(evaluate(order))


@pytest.mark.parametrize("country,postcode", POSTCODES_BAD)
def test_postcode_invalid(evaluate, country, postcode):
    order = acme_order(ship_to=Address("Acme Retail Ltd", "1 Main Street", "Anytown", postcode, country))
    finding = only(evaluate(order), "invalid_postcode")
    assert finding.field == "ship_to.postcode"
    assert postcode in finding.messages["en"] and country in finding.messages["zh-CN"]


def test_postcode_of_unlisted_country_is_not_judged(evaluate):
    order = acme_order(ship_to=Address("Acme Retail Ltd", "1 Main Street", "Reykjavik", "whatever", "IS"))
    assert evaluate(order) == []


QUIET = {
    "price_within_tolerance": set_line(acme_order(), 0, unit_price=Decimal("8.62")),  # +1.4 %
    "line_without_price": set_line(acme_order(), 0, unit_price=None),
    "qty_exactly_max": set_line(acme_order(), 2, sku="SKU-1003", qty=Decimal("500"), unit_price=Decimal("39.00")),
    "customer_usd_price": acme_order(customer=Customer("C1007", "Great Lakes Supply Inc", "po@greatlakes-supply.example"),
                                     currency="USD", ship_to=Address("GLS", "1 Lake Dr", "Chicago", "60601", "US"),
                                     lines=[OrderLine(1, "SKU-1001", Decimal("10"), unit_price=Decimal("9.20"))]),
    "no_currency_means_customer_currency": acme_order(currency=""),
    "delivery_exactly_at_lead_time": acme_order(requested_date=TODAY + timedelta(days=2)),
    "no_requested_date": acme_order(requested_date=None),
    "no_email": acme_order(customer=Customer("C1001", "Acme Retail Ltd", "", "en")),
}


@pytest.mark.parametrize("case", QUIET)
def test_rules_stay_quiet_on_acceptable_variants(evaluate, case):
    assert evaluate(QUIET[case]) == []


def test_several_problems_are_all_reported(evaluate):
    order = set_line(acme_order(po=""), 1, sku="SKU-7777")
    order.ship_to = Address("Acme Retail Ltd", "12 Market Street", "Manchester", "XX", "GB")
    assert sorted(codes(evaluate(order))) == ["invalid_postcode", "missing_po", "unknown_item"]


def test_duplicate_po_fires_only_for_the_stored_duplicate(evaluate, rule_ctx):
    order = acme_order()
    assert evaluate(order, rule_ctx.for_item("C1001/PO-4711", None)) == []
    finding = only(evaluate(order, rule_ctx.for_item("C1001/PO-4711#2", "C1001/PO-4711")), "duplicate_po")
    assert finding.severity == "hold"
    assert "already received as order C1001/PO-4711" in finding.messages["en"]
    assert "C1001/PO-4711" in finding.messages["zh-CN"]


def test_credit_limit_counts_open_exposure_but_not_the_order_itself(evaluate, rule_ctx, masterdata):
    # Berlin Bürobedarf: limit 15,000 EUR; this order is worth 1,358 EUR.
    order = acme_order(customer=Customer("C1004", "Berlin Bürobedarf GmbH", "einkauf@berlin-buero.example"),
                       ship_to=Address("Berlin Bürobedarf GmbH", "Friedrichstr. 1", "Berlin", "10117", "DE"))
    exposure = Exposure({"C1004/OLD-1": ("C1004", Decimal("13000")), "C1001/X": ("C1001", Decimal("99999"))})
    ctx = replace(rule_ctx, exposure=exposure, key="C1004/PO-4711")
    assert evaluate(order, ctx) == []
    exposure.add("C1004/OLD-2", "C1004", Decimal("700"))
    finding = only(evaluate(order, ctx), "credit_limit")
    assert "1358.00 EUR" in finding.messages["en"] and "13700 EUR" in finding.messages["en"]
    assert "15000 EUR" in finding.messages["en"]
    # Re-validating an order that is itself counted as open does not count it twice.
    exposure.add("C1004/PO-4711", "C1004", Decimal("1358.00"))
    exposure.remove("C1004/OLD-2")
    assert evaluate(order, ctx) == []


def test_credit_value_uses_price_list_for_lines_without_price(evaluate, rule_ctx):
    order = acme_order(customer=Customer("C1005", "Small Shop & Co", "owner@smallshop.example"),
                       ship_to=Address("Small Shop & Co", "3 rue de la Paix", "Paris", "75002", "FR"),
                       lines=[OrderLine(1, "SKU-1003", Decimal("20"))])  # 20 x 39.00 = 780 > 500
    finding = only(evaluate(order), "credit_limit")
    assert "780.00 EUR" in finding.messages["en"]


def test_intake_problems_come_first_and_unchanged(evaluate):
    problem = Finding("bad_row", "hold", {"en": "orders.xlsx, sheet Orders, row 7, column Qty: 'ten' is not a number"},
                      "lines[2].qty")
    order = acme_order(problems=[problem])
    assert evaluate(order) == [problem]
