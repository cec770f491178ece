"""Mailgun's HTTP API, sending the exact RFC 5322 bytes (`messages.mime`), so what the ledger keeps
is what the buyer gets, and the provider's message id is recorded with the hand-over.

`mailgun://api:KEY@api.mailgun.net/DOMAIN` (or `api.eu.mailgun.net` for the EU region);
`mailgun+http://...` only for a local stand-in in tests.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import requests

from notifier.transports import Outgoing, PermanentFailure, Receipt, TransientFailure

# Statuses worth another try: throttled, and the provider's own trouble.
RETRYABLE = frozenset({408, 409, 429})


class MailgunTransport:
    name = "mailgun"

    def __init__(self, base_url: str, domain: str, api_key: str, timeout: float) -> None:
        self.endpoint = f"{base_url}/v3/{domain}/messages.mime"
        self.api_key = api_key
        self.timeout = timeout
        self._session = requests.Session()

    @classmethod
    def from_url(cls, url: str, timeout: float) -> MailgunTransport:
        parts = urlsplit(url)
        domain = parts.path.strip("/")
        if not (parts.hostname and parts.password and domain and "/" not in domain):
            raise ValueError(
                "a Mailgun URL reads mailgun://api:KEY@api.mailgun.net/DOMAIN (the key as the "
                "password, the sending domain as the path)"
            )
        scheme = "http" if parts.scheme == "mailgun+http" else "https"
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(f"{scheme}://{host}", domain, unquote(parts.password), timeout)

    def send(self, mail: Outgoing) -> Receipt:
        try:
            response = self._session.post(
                self.endpoint,
                auth=("api", self.api_key),
                data={"to": list(mail.recipients)},
                files={"message": ("message.mime", mail.raw, "application/octet-stream")},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise TransientFailure(f"Mailgun unreachable: {type(error).__name__}") from error
        answer = f"{response.status_code} {response.text.strip()[:300]}"
        if response.status_code in RETRYABLE or response.status_code >= 500:
            raise TransientFailure(answer)
        if response.status_code == 401:  # a key being rotated: keep the mail, say so
            raise TransientFailure(f"{answer} (check the API key in NOTIFIER_MAIL_URL)")
        if response.status_code >= 300:
            raise PermanentFailure(answer)
        try:
            provider_id = str(response.json().get("id") or "") or None
        except ValueError:
            provider_id = None
        return Receipt(answer, provider_message_id=provider_id)

    def close(self) -> None:
        self._session.close()
