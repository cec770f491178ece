"""RFC 5322 bytes from a rendered email, built by the stdlib and guarded against header injection.

This machine's CPython predates the fixes for CVE-2024-6923 and CVE-2026-1299, so values taken
from outside data are refused when they carry control characters or encoded-word openers, and
the finished bytes are parsed again to prove no header was smuggled in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
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


def _checked(name: str, value: str) -> str:
    if "=?" in value or any(
        unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS for ch in value
    ):
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
    """The multipart/alternative message, CRLF line endings, exactly as handed to a transport."""
    sender_name, sender_address = parse_mailbox("From", envelope.sender)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _address("From", sender_name, sender_address)
    msg["To"] = _address("To", envelope.recipient_name, envelope.recipient)
    expected = ["From", "To", "Subject", "Date", "Message-ID", "X-Notifier-Message-Id"]
    if envelope.reply_to:
        msg["Reply-To"] = _address("Reply-To", sender_name, envelope.reply_to)
        expected.append("Reply-To")
    msg["Subject"] = _checked("Subject", rendered.subject)
    msg["Date"] = format_datetime(envelope.date)
    msg["Message-ID"] = _checked("Message-ID", envelope.message_id)
    msg["X-Notifier-Message-Id"] = envelope.message_id
    msg["Auto-Submitted"] = "auto-generated"
    expected.append("Auto-Submitted")
    if envelope.unsubscribe:
        msg["List-Unsubscribe"] = LinksHeader("List-Unsubscribe", envelope.unsubscribe)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        expected += ["List-Unsubscribe", "List-Unsubscribe-Post"]
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    raw = msg.as_bytes()
    _prove_headers(raw, expected)
    return raw


def _prove_headers(raw: bytes, expected: list[str]) -> None:
    parsed = message_from_bytes(raw, policy=policy.default)
    found = sorted(name.lower() for name in parsed if name.lower() != "mime-version")
    found = [name for name in found if name != "content-type"]
    if found != sorted(name.lower() for name in expected):
        raise HeaderRefused(f"built message has unexpected headers: {found}")
