"""Realistic demo work for every channel, with a realistic share of problems.

``write_spreadsheets(inbox, today)`` drops order files into a watched inbox;
``emails(today, to)`` returns raw RFC 822 messages for the mailbox;
``portal_pos(today)`` gives purchase orders for the customer portal. Each
function documents which problems its data carries, so the demo summary can
be checked against it.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import openpyxl

SHEET_HEADER = ["PO Number", "Customer ID", "SKU", "Description", "Qty", "Unit Price", "Delivery Date",
                "Ship To", "Address", "City", "Postcode", "Country"]
ACME_SHIP = ["Acme DC Leeds", "1 Dock Road", "Leeds", "LS1 1AA", "GB"]


def _xlsx(path: Path, header: list[str], rows: list[list]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Orders"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)


def _csv_bytes(header: list[str], rows: list[list], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def write_spreadsheets(inbox: Path, today: date) -> list[str]:
    """Order files for the folder channel; returns their names.

    Good orders for Acme (xlsx), Berlin (csv) and Hualian (GB18030 csv with Chinese
    headers); problems: an unknown item (reject), an incomplete address (hold), the
    small shop over its credit limit (hold), an order for more than the WMS has
    (short stock), the same PO sent again in another file (duplicate), and a file
    that is not a spreadsheet at all (error/).
    """
    due = today + timedelta(days=14)
    inbox.mkdir(parents=True, exist_ok=True)
    _xlsx(inbox / "acme-weekly.xlsx", SHEET_HEADER, [
        ["ACME-5001", "C1001", "SKU-1001", "Water bottle", 120, 8.50, due, *ACME_SHIP],
        ["ACME-5001", "C1001", "SKU-1004", "Lantern", 24, 22.40, due, *ACME_SHIP],
        ["ACME-5002", "C1001", "SKU-2001", "Copy paper", 300, 4.20, due, *ACME_SHIP],
        ["ACME-5003", "C1001", "SKU-7777", "Mystery item", 5, 9.99, due, *ACME_SHIP],
        ["ACME-5004", "C1001", "SKU-3003", "Speaker mini", 40, 24.99, due, *ACME_SHIP],
    ])
    _xlsx(inbox / "acme-resend.xlsx", SHEET_HEADER, [
        ["ACME-5002", "C1001", "SKU-2001", "Copy paper", 300, 4.20, due, *ACME_SHIP],
    ])
    berlin = ["Berlin Bürobedarf Lager", "Lagerstraße 7", "Berlin", "10115", "DE"]
    (inbox / "berlin-bestellung.csv").write_bytes(_csv_bytes(SHEET_HEADER, [
        ["BB-778", "C1004", "SKU-2002", "Pens", 20, 9.80, due.isoformat(), *berlin],
        ["BB-778", "C1004", "SKU-2003", "Files", 150, 2.95, due.isoformat(), *berlin],
        ["BB-779", "C1004", "SKU-2004", "Organiser", 10, 18.60, due.isoformat(), "Berlin Bürobedarf", "", "",
         "", "DE"],
    ]))
    header_zh = ["客户订单号", "客户编号", "物料编码", "数量", "单价", "交货日期", "收货单位", "收货地址", "城市", "邮编", "国家"]
    ship_zh = ["华联上海仓", "浦东新区张江路 88 号", "上海", "201203", "CN"]
    (inbox / "华联订单.csv").write_bytes(_csv_bytes(header_zh, [
        ["HL-2026-0310", "C1003", "SKU-3001", 500, 22.00, due.isoformat(), *ship_zh],
        ["HL-2026-0310", "C1003", "SKU-3002", 40, 89.00, due.isoformat(), *ship_zh],
    ], encoding="gb18030"))
    _xlsx(inbox / "smallshop-order.xlsx", SHEET_HEADER, [
        ["SS-19", "C1005", "SKU-1003", "Trekking poles", 30, 39.00, due, "Small Shop", "3 Rue Haute", "Lyon",
         "69001", "FR"],
    ])
    (inbox / "scan-of-order.xlsx").write_bytes(b"%PDF-1.4 this is a scanned PDF saved with the wrong name\n")
    return sorted(p.name for p in inbox.iterdir())


def _mail(sender: str, to: str, subject: str, body: str, today: date) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = make_msgid(domain="customer.example")
    message["Date"] = today.strftime("%a, %d %b %Y 08:30:00 +0000")
    message.set_content(body)
    return message


def emails(today: date, to: str) -> list[bytes]:
    """Messages for the email channel.

    An xlsx attachment from Nordic Outdoor, an order typed into the body by Great
    Lakes, a Chinese body order from Shenzhen (GB18030), a message from an unknown
    sender (held), and a "please call me" mail with no order in it (reply asking for
    the order, moved to the attention folder).
    """
    due = (today + timedelta(days=10)).isoformat()
    nordic = _mail("Nordic Outdoor Purchasing <purchasing@nordic-outdoor.example>", to, "PO NO-4410",
                   "Hello, our order is attached.\n\nBest regards\nMatti", today)
    book = openpyxl.Workbook()
    book.active.append(SHEET_HEADER)
    ship = ["Nordic Outdoor Varasto", "Teollisuuskatu 12", "Helsinki", "00510", "FI"]
    book.active.append(["NO-4410", "C1002", "SKU-1003", "Poles", 12, 39.00, due, *ship])
    book.active.append(["NO-4410", "C1002", "SKU-1005", "Towel", 60, 11.25, due, *ship])
    data = io.BytesIO()
    book.save(data)
    nordic.add_attachment(data.getvalue(), maintype="application",
                          subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename="NO-4410.xlsx")
    lakes = _mail("Great Lakes Supply <po@greatlakes-supply.example>", to, "Purchase order GL-8812",
                  f"PO: GL-8812\nShip to: Great Lakes Supply DC\nStreet: 400 Lake Shore Dr\nCity: Chicago\n"
                  f"Postcode: 60611\nCountry: US\nCurrency: USD\nRequested date: {due}\n\n"
                  "SKU | Qty | Unit price\nSKU-1001 | 200 | 9.20\nSKU-1004 | 30 | 24.50\n\n-- \nSent from my phone\n",
                  today)
    shenzhen = _mail("深圳创新电子 <order@sz-innovate.example>", to, "采购订单 SZ-0921",
                     f"订单号: SZ-0921\n收货单位: 深圳创新电子仓库\n收货地址: 南山区科技园 6 号\n城市: 深圳\n邮编: 518057\n"
                     f"国家: CN\n币种: CNY\n交货日期: {due}\n\n物料编码 | 数量 | 单价\nSKU-3001 | 1000 | 21.50\n"
                     "SKU-3003 | 2 | 175.00\n", today)
    shenzhen.set_content(shenzhen.get_content(), charset="gb18030")
    stranger = _mail("Unknown Buyer <buyer@stranger.example>", to, "Order 55",
                     f"PO: ST-55\nShip to: Stranger Ltd\nStreet: 5 Nowhere Lane\nCity: York\nPostcode: YO1 7HH\n"
                     f"Country: GB\nRequested date: {due}\n\nSKU | Qty\nSKU-1002 | 10\n", today)
    chat = _mail("Acme Retail <orders@acme-retail.example>", to, "Re: next week",
                 "Hi, could you call me about next week's delivery? Thanks, Jo", today)
    return [m.as_bytes() for m in (nordic, lakes, shenzhen, stranger, chat)]
