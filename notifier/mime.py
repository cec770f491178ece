"""RFC 5322 bytes from a rendered email, written here and guarded against header injection.

This machine's CPython predates the fixes for CVE-2024-6923 and CVE-2026-1299, so values taken
from outside data are refused when they carry control characters or encoded-word openers, the
bytes are written by this module (which folds only at spaces; see `build`), and the finished
header block is parsed again by the stdlib to prove no header was smuggled in.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, getaddresses

from notifier.rendering import RenderedEmail


class HeaderRefused(ValueError):
    """A header value that could change the message's meaning; the message cannot be sent as is."""


@dataclass(frozen=True)
class Envelope:
    sender: str  # "Shop Name <orders@shop.example>"
    recipient: str
    recipient_name: str | None
    reply_to: str | None
    message_id: str
    date: datetime
    # RFC 8058 one-click unsubscribe (an https URL) and its mailto: twin, on marketing mail only.
    unsubscribe: tuple[str, str] | None = None


# Embeddings, overrides and isolates reorder what a mail client shows; joiners, soft hyphens
# and direction marks are ordinary parts of names (Persian ZWNJ, emoji ZWJ) and stay allowed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Unicode's Cc (C0, DEL and C1 controls), Zl and Zp (line and paragraph separators), and the
# direction controls above, as one character class (tested against unicodedata for all of them).
REFUSED_IN_HEADERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029" + "".join(sorted(BIDI_CONTROLS)) + "]"
)


def _checked(name: str, value: str) -> str:
    if "=?" in value or REFUSED_IN_HEADERS.search(value):
        raise HeaderRefused(f"{name} contains control or encoded-word characters: {value!r}")
    return value


def ascii_address(name: str, addr_spec: str) -> str:
    """The address as every SMTP server takes it: an international domain in its IDNA form.

    A non-ASCII local part would need SMTPUTF8 end to end, which is refused rather than
    risked: the message fails visibly instead of bouncing somewhere out of sight.
    """
    local, at, domain = addr_spec.rpartition("@")
    if not at or not local or not domain:
        raise HeaderRefused(f"{name} is not a valid address: {addr_spec!r}")
    if not local.isascii():
        raise HeaderRefused(f"{name} has a non-ASCII local part (needs SMTPUTF8): {addr_spec!r}")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as error:
        raise HeaderRefused(f"{name} has an invalid domain: {addr_spec!r}") from error


def _address(name: str, display_name: str | None, addr_spec: str) -> Address:
    _checked(name, display_name or "")
    _checked(name, addr_spec)
    try:
        return Address(display_name=display_name or "", addr_spec=ascii_address(name, addr_spec))
    except (ValueError, IndexError, HeaderParseError) as error:  # the parser's verdict
        if isinstance(error, HeaderRefused):
            raise
        raise HeaderRefused(f"{name} is not a valid address: {addr_spec!r}") from error


def parse_mailbox(name: str, value: str) -> tuple[str, str]:
    """Exactly one `Name <addr>` (or bare `addr`): no second address hidden in it anywhere."""
    _checked(name, value)
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1] or "@" in found[0][0]:
        raise HeaderRefused(f"{name} is not exactly one mailbox: {value!r}")
    display_name, addr_spec = found[0]
    _address(name, display_name, addr_spec)
    return display_name, addr_spec


class LinksHeader(str):
    """URLs in angle brackets (RFC 2369), folded between them and never into encoded words.

    The policy would fold a long URL into RFC 2047 encoded words, which no mail client reads
    in a List-Unsubscribe; a header object with its own `fold` is the policy's way to say how.
    """

    MAX_URL = 900  # each on its own line, well inside RFC 5322's 998

    name: str
    urls: tuple[str, ...]

    def __new__(cls, name: str, urls: tuple[str, ...]) -> LinksHeader:
        for url in urls:
            _checked(name, url)
            if len(url) > cls.MAX_URL or not url.isascii() or any(c in url for c in " <>,"):
                raise HeaderRefused(f"{name} cannot carry this URL: {url!r}")
        header = super().__new__(cls, ", ".join(f"<{url}>" for url in urls))
        header.name, header.urls = name, urls
        return header

    def fold(self, *, policy: policy.Policy) -> str:
        separator = "," + policy.linesep + " "
        return f"{self.name}: {separator.join(f'<{url}>' for url in self.urls)}{policy.linesep}"


def build(rendered: RenderedEmail, envelope: Envelope) -> bytes:
    """The multipart/alternative message, CRLF line endings, exactly as handed to a transport.

    Written out directly rather than through `email.message.EmailMessage` under `policy.SMTP`,
    whose header parsing and refolding cost milliseconds a message (most of a dispatcher's time).
    Every value still passes `_checked` (no control, line-separator or bidi-override characters,
    no encoded-word openers) and every address the stdlib's parser (`Address`); this module
    folds, only ever at a space or between encoded words, so no line it writes can start a
    header; and the finished header block is parsed again to prove exactly the expected names.
    """
    lines = [
        *_shop_headers(envelope.sender, envelope.reply_to),
        _mailbox_line("To", envelope.recipient_name, envelope.recipient),
    ]
    expected = ["From", "To", "Subject", "Date", "Message-ID", "X-Notifier-Message-Id"]
    if envelope.reply_to:
        expected.append("Reply-To")
    lines += [
        _unstructured("Subject", _checked("Subject", rendered.subject)),
        f"Date: {format_datetime(envelope.date)}",
        _unstructured("Message-ID", _checked("Message-ID", envelope.message_id)),
        _unstructured("X-Notifier-Message-Id", envelope.message_id),
        "Auto-Submitted: auto-generated",
    ]
    expected.append("Auto-Submitted")
    if envelope.unsubscribe:
        links = LinksHeader("List-Unsubscribe", envelope.unsubscribe)
        lines.append(links.fold(policy=policy.SMTP).removesuffix(CRLF))
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        expected += ["List-Unsubscribe", "List-Unsubscribe-Post"]
    boundary = f"=_{secrets.token_hex(16)}"  # "=_" never occurs in quoted-printable text
    lines += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
    expected += ["MIME-Version", "Content-Type"]
    head = CRLF.join(lines).encode("ascii")
    raw = b"".join(
        [
            head,
            b"\r\n\r\n",
            _part(boundary, "plain", rendered.text),
            _part(boundary, "html", rendered.html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )
    _prove_headers(raw, expected)
    return raw


@functools.lru_cache(maxsize=1024)
def _shop_headers(sender: str, reply_to: str | None) -> tuple[str, ...]:
    """From (and Reply-To) as written: a shop's are the same on every email it sends, so they
    are parsed, checked and folded once per process, not once a message."""
    sender_name, sender_address = parse_mailbox("From", sender)
    lines = [_mailbox_line("From", sender_name, sender_address)]
    if reply_to:
        lines.append(_mailbox_line("Reply-To", sender_name, reply_to))
    return tuple(lines)


def _mailbox_line(name: str, display_name: str | None, addr_spec: str) -> str:
    return _mailbox_header(name, _address(name, display_name, addr_spec))


CRLF = "\r\n"
MAX_LINE = 78  # RFC 5322's SHOULD; folded lines stay under it where a value allows
# A display name of these characters needs no quoting (RFC 5322 atext and spaces).
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


def _encoded_words(text: str, first_room: int) -> list[str]:
    """RFC 2047 base64 encoded words of UTF-8, each whole characters and at most 75 long."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    limit = max(min((first_room - 12) // 4 * 3, 45), 3)
    for ch in text:
        length = len(ch.encode("utf-8"))
        if chunk and size + length > limit:
            words.append("".join(chunk))
            chunk, size, limit = [], 0, 45
        chunk.append(ch)
        size += length
    if chunk or not words:
        words.append("".join(chunk))
    return [f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words]


def _fold(name: str, words: list[str], tail: str = "") -> str:
    """`Name: w1 w2 ...`, starting a continuation line (CRLF + space) where one grows too long."""
    out, line = [], f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > MAX_LINE and not line.endswith(":"):
            out.append(line)
            line = ""
        line += " " + word
    if tail:
        if len(line) + 1 + len(tail) > MAX_LINE and not line.endswith(":"):
            out.append(line)
            line = ""
        line += " " + tail
    out.append(line)
    return CRLF.join(out)


def _unstructured(name: str, value: str) -> str:
    """Printable ASCII as it is, folded at its spaces; anything else as encoded words."""
    if _PRINTABLE_ASCII.fullmatch(value) and max(map(len, value.split(" ")), default=0) < 900:
        if len(name) + 2 + len(value) <= MAX_LINE or " " not in value.strip(" "):
            return f"{name}: {value}"
        # Fold before a space: the space stays, so unfolding (dropping CRLF) gives the value back.
        out, line = [], f"{name}:"
        for index, word in enumerate(value.split(" ")):
            full = len(line) + 1 + len(word) > MAX_LINE
            if index and full and line.strip(" ") not in ("", f"{name}:"):
                out.append(line)
                line = ""
            line += " " + word
        out.append(line)
        return CRLF.join(out)
    return _fold(name, _encoded_words(value, MAX_LINE - len(name) - 2))


def _mailbox_header(name: str, address: Address) -> str:
    display, addr_spec = address.display_name, address.addr_spec
    angle = f"<{addr_spec}>"
    if not display:
        return f"{name}: {addr_spec}"
    if _ATOM_PHRASE.fullmatch(display) and display.strip(" ") == display and "  " not in display:
        phrase = [display]
    elif _PRINTABLE_ASCII.fullmatch(display) and len(display) < 60:
        escaped = display.replace("\\", "\\\\").replace('"', '\\"')
        phrase = [f'"{escaped}"']
    else:
        phrase = _encoded_words(display, MAX_LINE - len(name) - 2)
    return _fold(name, phrase, angle)


def _part(boundary: str, subtype: str, text: str) -> bytes:
    try:
        data = text.replace("\r\n", "\n").encode("utf-8")
    except UnicodeError as error:
        raise HeaderRefused(f"the {subtype} body cannot be encoded: {error}") from error
    body = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    body = body.replace(b"\r", b"=0D").replace(b"\n", b"\r\n")
    body += b"\r\n"  # the CRLF before the next boundary belongs to the boundary, not the text
    head = (
        f"--{boundary}\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return head.encode("ascii") + body


def _prove_headers(raw: bytes, expected: list[str]) -> None:
    """The header block read back by the stdlib's parser holds exactly the expected names."""
    # The header block ends at the first empty line, for the parser as for every mail reader.
    head = raw[: raw.index(b"\r\n\r\n") + 4]
    parsed = BytesHeaderParser(policy=compat32).parsebytes(head)
    found = sorted(name.lower() for name in parsed)
    if found != sorted(name.lower() for name in expected) or parsed.defects:
        raise HeaderRefused(f"built message has unexpected headers: {found}")
