"""Transports deliver bytes and report what the other side said; they know nothing else.

Chosen by the scheme of NOTIFIER_MAIL_URL: file:// (a folder of .eml files, the default),
smtp:// and smtps:// (one persistent connection), mailgun:// and ses:// (providers' HTTP APIs),
memory:// (tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Outgoing:
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    message_id: str


@dataclass(frozen=True)
class Receipt:
    response: str
    provider_message_id: str | None = None


class TransportError(Exception):
    """Delivery did not happen; `response` says what the other side answered."""

    def __init__(self, response: str) -> None:
        super().__init__(response)
        self.response = response


class TransientFailure(TransportError):
    """Worth trying again later: the server is down, busy or said 4xx."""


class PermanentFailure(TransportError):
    """Will never work as is: the server said 5xx about this message."""


class Transport(Protocol):
    name: str

    def send(self, mail: Outgoing) -> Receipt: ...

    def close(self) -> None: ...


def from_url(url: str, timeout: float) -> Transport:
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from notifier.transports.files import FileTransport

        return FileTransport.from_url(url)
    if scheme in ("smtp", "smtps"):
        from notifier.transports.smtp import SMTPTransport

        return SMTPTransport.from_url(url, timeout)
    if scheme in ("mailgun", "mailgun+http"):
        from notifier.transports.mailgun import MailgunTransport

        return MailgunTransport.from_url(url, timeout)
    if scheme in ("ses", "ses+http"):
        from notifier.transports.ses import SESTransport

        return SESTransport.from_url(url, timeout)
    if scheme == "memory":
        from notifier.transports.memory import MemoryTransport

        return MemoryTransport.named(urlsplit(url).netloc or "default")
    raise ValueError(
        f"unsupported mail URL scheme {scheme!r}: use file://, smtp://, smtps://, mailgun://, "
        "ses:// or memory://"
    )


def describe(url: str) -> str:
    """The URL without its password, for logs and status output.

    Read up to the last `@`, not by urlsplit, so a secret someone forgot to percent-encode (an
    AWS secret's `/`) is hidden too.
    """
    scheme, separator, rest = url.partition("://")
    userinfo, at, location = rest.rpartition("@")
    if not (separator and at and ":" in userinfo):
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}"
