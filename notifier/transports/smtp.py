"""SMTP and SMTPS over one persistent connection: STARTTLS where offered, AUTH when configured."""

from __future__ import annotations

import smtplib
import ssl
import time
from urllib.parse import parse_qs, unquote, urlsplit

from notifier.transports import Outgoing, PermanentFailure, Receipt, TransientFailure

STARTTLS_MODES = ("auto", "require", "off")


class SMTPTransport:
    name = "smtp"
    sends_apart = True  # waits on the network: runs in a sending process (notifier.sending)
    TRUST_SECONDS = 5.0

    def __init__(
        self,
        host: str,
        port: int,
        *,
        implicit_tls: bool,
        starttls: str,
        username: str | None,
        password: str | None,
        timeout: float,
    ) -> None:
        if starttls not in STARTTLS_MODES:
            raise ValueError(f"starttls must be one of {', '.join(STARTTLS_MODES)}")
        self.host, self.port = host, port
        self.implicit_tls, self.starttls = implicit_tls, starttls
        self.username, self.password = username, password
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None
        self._last_used = 0.0

    @classmethod
    def from_url(cls, url: str, timeout: float) -> SMTPTransport:
        """smtp://user:pass@host:587?starttls=auto|require|off, or smtps://user:pass@host:465."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError("an SMTP mail URL needs a host: smtp://user:pass@host:587")
        implicit_tls = parts.scheme == "smtps"
        query = parse_qs(parts.query)
        return cls(
            parts.hostname,
            parts.port or (465 if implicit_tls else 587),
            implicit_tls=implicit_tls,
            starttls=query.get("starttls", ["auto"])[0],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=float(query.get("timeout", [timeout])[0]),
        )

    def send(self, mail: Outgoing) -> Receipt:
        connection = self._connected_or_transient()
        try:
            try:
                answer = connection.mail(mail.envelope_from)
            except (smtplib.SMTPServerDisconnected, OSError):
                # The server dropped the connection while it idled; nothing of this message
                # has been sent yet, so one fresh connection may carry it at once.
                self.close()
                connection = self._connected_or_transient()
                answer = connection.mail(mail.envelope_from)
            receipt = self._transact(connection, mail, answer)
            self._last_used = time.monotonic()
            return receipt
        except smtplib.SMTPResponseException as error:
            self._reset()
            reply = f"{error.smtp_code} {_text(error.smtp_error)}"
            if 500 <= error.smtp_code < 600:
                raise PermanentFailure(reply) from error
            raise TransientFailure(reply) from error
        except smtplib.SMTPRecipientsRefused as error:
            self._reset()
            code, text = next(iter(error.recipients.values()))
            reply = f"{code} {_text(text)}"
            if 500 <= code < 600:
                raise PermanentFailure(reply) from error
            raise TransientFailure(reply) from error
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise TransientFailure(f"{type(error).__name__}: {error}") from error
        except UnicodeError as error:  # an address smtplib cannot put on the wire
            self._reset()
            raise PermanentFailure(f"cannot encode for SMTP: {error}") from error

    def _transact(
        self, connection: smtplib.SMTP, mail: Outgoing, reply: tuple[int, bytes]
    ) -> Receipt:
        """MAIL (already said), RCPT, DATA one by one, so the server's final reply is kept."""
        code, text = reply
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, text, mail.envelope_from)
        for recipient in mail.recipients:
            code, text = connection.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, text)})
        code, text = connection.data(mail.raw)
        if code != 250:
            raise smtplib.SMTPDataError(code, text)
        return Receipt(f"{code} {_text(text)}")

    def _connected_or_transient(self) -> smtplib.SMTP:
        """A server that is down, busy or refusing us says nothing about this message: retry."""
        try:
            return self._connected()
        except smtplib.SMTPResponseException as error:
            self.close()
            raise TransientFailure(
                f"{error.smtp_code} {_text(error.smtp_error)} (connecting to {self.host}:{self.port})"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise TransientFailure(
                f"{type(error).__name__}: {error} (connecting to {self.host}:{self.port})"
            ) from error

    def _connected(self) -> smtplib.SMTP:
        if self._connection is not None:
            # Busy: a connection used a moment ago is trusted (a NOOP per message would cost a
            # round trip each); one that idled is checked first.
            if time.monotonic() - self._last_used < self.TRUST_SECONDS:
                return self._connection
            try:
                if self._connection.noop()[0] == 250:
                    return self._connection
            except (OSError, smtplib.SMTPException):
                pass
            self.close()
        self._connection = self._open()
        return self._connection

    def _open(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.implicit_tls:
            connection = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if not self.implicit_tls and self.starttls != "off":
                if connection.has_extn("starttls"):
                    connection.starttls(context=context)
                    connection.ehlo()
                elif self.starttls == "require":
                    raise TransientFailure(f"{self.host} does not offer STARTTLS")
                elif self.username:
                    raise TransientFailure(
                        f"{self.host} does not offer STARTTLS; not sending the password in the "
                        "clear (add ?starttls=off to the mail URL to allow it)"
                    )
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _reset(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (OSError, smtplib.SMTPException):
            self._connection.close()
        self._connection = None


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
