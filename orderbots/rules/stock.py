"""The stock check: requested quantity per sku against what the warehouse says is available.

``stock_findings(order, available)`` sums the order's positive quantities per
sku and returns one ``hold`` finding with code ``stock`` for every sku whose
request exceeds ``available[sku]`` (a sku the warehouse did not report counts
as 0). The finding's field is the first line with that sku.
"""

from __future__ import annotations

from decimal import Decimal

from ..model import Finding, Order

CODE = "stock"


def requested_skus(order: Order) -> list[str]:
    """The skus a stock lookup needs for ``order``, each once."""
    return list(dict.fromkeys(line.sku for line in order.lines if line.sku and line.qty > 0))


def stock_findings(order: Order, available: dict[str, Decimal]) -> list[Finding]:
    wanted: dict[str, Decimal] = {}
    first_line: dict[str, int] = {}
    for line in order.lines:
        if line.sku and line.qty > 0:
            wanted[line.sku] = wanted.get(line.sku, Decimal(0)) + line.qty
            first_line.setdefault(line.sku, line.line_no)
    findings = []
    for sku, qty in wanted.items():
        have = Decimal(str(available.get(sku, 0)))
        if qty > have:
            findings.append(Finding(CODE, "hold", {
                "en": f"Not enough stock of {sku}: {qty} requested, {have} available.",
                "zh-CN": f"物料 {sku} 库存不足：需求 {qty}，可用 {have}。",
            }, f"lines[{first_line[sku]}].qty"))
    return findings
