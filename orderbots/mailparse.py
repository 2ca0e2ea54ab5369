"""One email (RFC 822 bytes) into plain parts: sender, ids, subject, body texts and attachments.

Contract of ``parse(raw)``:
- Never raises on malformed input: content that was not read is listed in
  ``ParsedMail.problems``, MIME damage in ``ParsedMail.defects``; ``not_an_email`` is set when the bytes are not an
  RFC 822 message at all (an Outlook ``.msg``, a binary file, no headers).
- The MIME structure is parsed with ``policy.compat32``: ``policy.default``
  gives the same parts but its header objects cost ~12 ms per message (a
  ceiling of ~80 messages/s); every header is decoded here from its raw value.
- Text is decoded with the declared charset, then UTF-8, then GB18030 (charset
  labels lie); GB2312/GBK labels are read as GB18030, their superset.
- Header values, attachment names (RFC 2231, encoded words, also the non-RFC
  ``filename="=?GB2312?B?...?="``, raw 8-bit) and addresses are decoded the
  same way. Everything that may end up in a header later (subject, Message-ID,
  References, names) is one line without control characters.
- ``message/rfc822`` parts and ``.eml`` attachments are parsed recursively up
  to ``max_depth``; their bodies and attachments are labelled
  ``"<inner name>/body"`` and ``"<inner name>/<file name>"``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy, utils
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser

MAX_DEPTH = 3
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\ufeff]+")
_MSGID = re.compile(r"<[^<>\s]{1,900}>")
_FOLDED = re.compile(r"\r?\n[ \t]")
_GB = {"gb2312", "gbk", "cp936", "ms936", "x-gbk", "euc-cn", "gb_2312-80", "chinese", "csgb2312"}


@dataclass
class Body:
    """The text of one message body (plain text, or the HTML source)."""

    label: str
    text: str
    html: bool = False


@dataclass
class Attachment:
    label: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    message_id: str
    references: str
    subject: str
    sender_email: str
    sender_name: str
    date: datetime | None
    bodies: list[Body] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    not_an_email: str = ""
    fingerprint: str = ""
    automated: bool = False

    def unique_label(self, label: str) -> str:
        """``label``, or ``name (2).ext``, ``(3)``... when a body or attachment already has it."""
        taken = {b.label for b in self.bodies} | {a.label for a in self.attachments}
        stem, dot, ext = label.rpartition(".") if "." in label.rsplit("/", 1)[-1] else (label, "", "")
        candidate, n = label, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem} ({n}){dot}{ext}"
        return candidate


# -- text decoding -----------------------------------------------------------

def _codec(charset: str | None) -> str | None:
    name = (charset or "").strip().strip('"').lower()
    if not name:
        return None
    return "gb18030" if name in _GB else name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text of ``data``: the declared charset, then UTF-8, then GB18030, then Latin-1."""
    for candidate in (_codec(charset), "utf-8", "gb18030"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def one_line(text: str, limit: int = 998) -> str:
    """``text`` as one header-safe line: control characters (CR, LF, ...) become spaces."""
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", text or "")).strip()[:limit]


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (and raw 8-bit text) with the charset fallbacks."""
    value = _unescape(value or "")
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # noqa: BLE001 - a broken encoded word stays as written
        return value
    return "".join(decode_bytes(chunk, cs) if isinstance(chunk, bytes) else chunk for chunk, cs in chunks)


def _unescape(value: str) -> str:
    """Undo the parser's surrogate escapes of raw 8-bit header bytes."""
    if not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_bytes(value.encode("ascii", "surrogateescape"))
    return value


def _raw_header(msg: Message, name: str) -> str:
    """The undecoded value of header ``name`` ('' if absent), unfolded."""
    name = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == name:
            value = str(value)
            return _FOLDED.sub(" ", value) if "\n" in value else value
    return ""


def header_text(msg: Message, name: str) -> str:
    return one_line(decode_words(_raw_header(msg, name)))


def message_ids(value: str) -> list[str]:
    """The well-formed ``<id>`` tokens of a Message-ID / References header."""
    return _MSGID.findall(value or "")


def fingerprint(mail: ParsedMail) -> str:
    """sha256 of what a message says: Message-ID, sender, date, subject, body texts and attachments.

    Computed from decoded content, so the same mail relayed twice, or re-encoded by a
    server migration (new boundaries, base64 instead of quoted-printable, other trace
    headers), keeps its fingerprint, while two mails reusing one Message-ID differ.
    """
    digest = hashlib.sha256()
    for value in (mail.message_id, mail.sender_email, mail.subject, mail.date.isoformat() if mail.date else ""):
        digest.update(value.encode("utf-8", "surrogatepass") + b"\0")
    for body in mail.bodies:
        digest.update(" ".join(body.text.split()).encode("utf-8", "surrogatepass") + b"\0")
    for att in mail.attachments:
        digest.update(att.filename.encode("utf-8", "surrogatepass") + hashlib.sha256(att.data).digest())
    return digest.hexdigest()


def synthetic_id(raw: bytes) -> str:
    """A stable stand-in Message-ID for a message without one (from its bytes)."""
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:32]}@orderbots.invalid>"


# -- addresses ---------------------------------------------------------------

_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>")
_BARE_ADDR = re.compile(r"[^\s@<>()\[\]\\,;:\"=?]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def sender(msg: Message) -> tuple[str, str]:
    """(lower-case address, display name) of ``From`` (else ``Sender``); ("", "") if none is usable."""
    for name in ("From", "Sender"):
        address, display = mailbox(_unescape(_raw_header(msg, name)))
        if address:
            return address.lower(), display
    return "", ""


def mailbox(raw: str) -> tuple[str, str]:
    """The first mailbox of an address header, never fooled by specials inside encoded words or quotes."""
    blanked = _QUOTED.sub(lambda m: " " * len(m.group()), raw)
    match = _ANGLE_ADDR.search(blanked)
    if match:
        display = raw[:match.start()].strip().strip('"').replace('\\"', '"')
        return match[1], one_line(decode_words(display))
    for candidate in (raw, decode_words(raw)):  # a bare address, perhaps itself an encoded word
        for display, address in utils.getaddresses([candidate]):
            if _BARE_ADDR.fullmatch(address):
                return address, one_line(decode_words(display))
    return "", ""


# -- structure ---------------------------------------------------------------

def parse(raw: bytes, *, max_depth: int = MAX_DEPTH) -> ParsedMail:
    """See the module docstring."""
    not_email = _not_an_email(raw)
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    address, name = sender(msg)
    ids = message_ids(_raw_header(msg, "Message-ID"))
    message_id = ids[0] if ids else synthetic_id(raw)
    try:
        date = utils.parsedate_to_datetime(_raw_header(msg, "Date")) if _raw_header(msg, "Date") else None
    except (TypeError, ValueError, IndexError):
        date = None
    mail = ParsedMail(
        message_id=message_id, references=" ".join(message_ids(_raw_header(msg, "References"))[-20:]),
        subject=header_text(msg, "Subject"), sender_email=address, sender_name=name, date=date,
        not_an_email=not_email, automated=_automated(msg, address))
    if not not_email:
        _collect(msg, "", 0, max_depth, mail)
    mail.fingerprint = fingerprint(mail) if not not_email else hashlib.sha256(raw).hexdigest()
    return mail


def _not_an_email(raw: bytes) -> str:
    if raw.startswith(OLE2_MAGIC):
        return ("this is an Outlook .msg file (OLE2), not an internet email; "
                "forward the original email, or save it as .eml, and send that")
    head = raw[:4096].split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if not re.search(rb"^(from|date|subject|message-id|received|to|mime-version|return-path):", head,
                     re.IGNORECASE | re.MULTILINE):
        return "this is not an email message (no mail headers found)"
    return ""


def _automated(msg: Message, address: str) -> bool:
    """Bounces, lists and auto-replies: never answered automatically (no mail loops)."""
    auto = _raw_header(msg, "Auto-Submitted").strip().lower()
    precedence = _raw_header(msg, "Precedence").strip().lower()
    local = address.split("@")[0]
    return bool((auto and auto != "no") or precedence in ("bulk", "junk", "list")
                or _raw_header(msg, "List-Id") or msg.get_content_type() == "multipart/report"
                or local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply"))


def _collect(part: Message, prefix: str, depth: int, max_depth: int, mail: ParsedMail) -> None:
    """Walk one message's parts into ``mail.bodies`` / ``mail.attachments``."""
    for defect in getattr(part, "defects", []):
        mail.defects.append(f"{prefix or 'message'}: {type(defect).__name__}")
    ctype = part.get_content_type()
    if ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart()):
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner, Message):
            _nested(inner, f"{prefix}{_filename(part) or 'attached.eml'}/", depth, max_depth, mail)
        return
    if part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                _collect(sub, prefix, depth, max_depth, mail)
        return
    filename = _filename(part)
    disposition = (part.get_content_disposition() or "").lower()
    try:
        data = part.get_payload(decode=True) or b""
    except Exception as exc:  # noqa: BLE001 - a part that cannot be decoded is a problem, not a crash
        mail.problems.append(f"{prefix}{filename or ctype}: cannot decode ({exc})")
        return
    if filename.lower().endswith(".eml") or ctype == "message/rfc822":
        inner = BytesParser(policy=policy.compat32).parsebytes(data)
        _nested(inner, f"{prefix}{filename or 'attached.eml'}/", depth, max_depth, mail)
    elif filename or disposition == "attachment":
        label = mail.unique_label(f"{prefix}{filename or 'unnamed'}")
        mail.attachments.append(Attachment(label, filename or "unnamed", ctype, data))
    elif ctype in ("text/plain", "text/html"):
        mail.bodies.append(Body(mail.unique_label(f"{prefix}body"), decode_bytes(data, part.get_content_charset()),
                                html=ctype == "text/html"))


def _nested(inner: Message, prefix: str, depth: int, max_depth: int, mail: ParsedMail) -> None:
    if depth + 1 > max_depth:
        mail.problems.append(f"{prefix.rstrip('/')}: attached emails nested deeper than {max_depth} levels "
                             "were not read")
        return
    _collect(inner, prefix, depth + 1, max_depth, mail)


def _filename(part: Message) -> str:
    """The attachment's file name, decoded and reduced to a safe base name ('' if none)."""
    name = _param(part, "filename", "Content-Disposition") or _param(part, "name", "Content-Type")
    name = one_line(decode_words(name), 255)
    return unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")


def _param(part: Message, param: str, header: str) -> str:
    """A header parameter (RFC 2231 decoded), read from the raw header so 8-bit names survive."""
    raw = _unescape(_raw_header(part, header))
    if param not in raw.lower():
        return ""  # not there under any spelling (RFC 2231 ``filename*0*=`` included)
    scratch = Message()
    scratch[header] = raw
    try:
        value = scratch.get_param(param, header=header)
        if isinstance(value, tuple):
            value = utils.collapse_rfc2231_value(value)
    except Exception:  # noqa: BLE001 - malformed parameters
        return ""
    return str(value or "")
