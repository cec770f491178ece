"""Amazon SES v2's HTTP API, sending the exact RFC 5322 bytes (`Content.Raw`), so what the ledger
keeps is what the buyer gets, and SES's MessageId is recorded with the hand-over.

`ses://ACCESS_KEY_ID:SECRET@email.REGION.amazonaws.com[?configuration_set=NAME]` (the secret
percent-encoded: `/` as `%2F`); the configuration set is how SES's delivery, bounce and complaint
events reach SNS and so `/webhooks/mail/ses`. `ses+http://...@127.0.0.1:PORT?region=R` only for a
local stand-in in tests.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from notifier.transports import Outgoing, PermanentFailure, Receipt, TransientFailure

PATH = "/v2/email/outbound-emails"
SIGNING_NAME = "ses"  # SES v2 signs as "ses", whatever the host says
HOST = re.compile(r"email\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
HOW_TO_WRITE = (
    "an SES URL reads ses://ACCESS_KEY_ID:SECRET@email.REGION.amazonaws.com (the secret "
    "percent-encoded, / as %2F; ?configuration_set=NAME to receive events; ?region=R when the "
    "host does not name it)"
)
# Error codes SES documents as worth another try: throttling, sending quotas, a paused account an
# operator may resume, and a signature refused over clock skew.
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "SendingPausedException",
        "RequestExpired",
        "RequestTimeTooSkewed",
    }
)
# Refusals of the credentials: a key being rotated, so the mail is kept and the operator told.
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)


class SESTransport:
    name = "ses"

    def __init__(
        self,
        base_url: str,
        region: str,
        credentials: Credentials,
        configuration_set: str | None,
        timeout: float,
    ) -> None:
        self.endpoint = f"{base_url}{PATH}"
        self.region = region
        self.configuration_set = configuration_set
        self.timeout = timeout
        self._credentials = credentials
        self._session = requests.Session()

    @classmethod
    def from_url(cls, url: str, timeout: float) -> SESTransport:
        parts = urlsplit(url)
        try:
            host = parts.hostname
            port = parts.port
        except ValueError:  # an unencoded / in the secret: never echo the URL, it holds the secret
            raise ValueError(HOW_TO_WRITE) from None
        query = parse_qs(parts.query)
        region = query.get("region", [None])[0] or (
            match.group(1) if host and (match := HOST.fullmatch(host)) else None
        )
        if not (host and parts.username and parts.password and region) or parts.path.strip("/"):
            raise ValueError(HOW_TO_WRITE)
        scheme = "http" if parts.scheme == "ses+http" else "https"
        credentials = Credentials(unquote(parts.username), unquote(parts.password))
        configuration_set = query.get("configuration_set", [None])[0]
        base_url = f"{scheme}://{host}" + (f":{port}" if port else "")
        return cls(base_url, region, credentials, configuration_set, timeout)

    def send(self, mail: Outgoing) -> Receipt:
        body = json.dumps(self._request(mail)).encode()
        try:
            response = self._session.post(
                self.endpoint, data=body, headers=self._signed_headers(body), timeout=self.timeout
            )
        except requests.RequestException as error:
            raise TransientFailure(f"SES unreachable: {type(error).__name__}") from error
        if response.status_code >= 300:
            raise _refusal(response)
        try:
            provider_id = str(response.json().get("MessageId") or "") or None
        except (ValueError, AttributeError):
            provider_id = None
        return Receipt(
            f"{response.status_code} MessageId {provider_id}", provider_message_id=provider_id
        )

    def _request(self, mail: Outgoing) -> dict[str, Any]:
        request: dict[str, Any] = {
            "FromEmailAddress": mail.envelope_from,
            "Destination": {"ToAddresses": list(mail.recipients)},
            "Content": {"Raw": {"Data": base64.b64encode(mail.raw).decode("ascii")}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    def _signed_headers(self, body: bytes) -> dict[str, str]:
        """AWS Signature Version 4 over this very body, by botocore's signer (the one boto3 uses)."""
        unsigned = AWSRequest(
            method="POST",
            url=self.endpoint,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        SigV4Auth(self._credentials, SIGNING_NAME, self.region).add_auth(unsigned)
        return {name: str(value) for name, value in unsigned.headers.items()}

    def close(self) -> None:
        self._session.close()


def _refusal(response: requests.Response) -> TransientFailure | PermanentFailure:
    """SES's error code and message, sorted into worth-retrying or never-will-work."""
    code, text = _error(response)
    answer = f"{response.status_code} {code}: {text}"[:400]
    if response.status_code == 429 or response.status_code >= 500 or code in RETRYABLE_CODES:
        return TransientFailure(answer)
    if code in CREDENTIAL_CODES:
        return TransientFailure(f"{answer} (check the access key in NOTIFIER_MAIL_URL)")
    return PermanentFailure(answer)


def _error(response: requests.Response) -> tuple[str, str]:
    """(code, message) from SES's JSON error: x-amzn-ErrorType or `__type`/`code`, and `message`."""
    try:
        data = response.json()
    except ValueError:
        data = None
    details: dict[str, Any] = data if isinstance(data, dict) else {}
    kind = response.headers.get("x-amzn-ErrorType") or str(
        details.get("__type") or details.get("code") or details.get("Code") or ""
    )
    code = kind.split(":", 1)[0].rsplit("#", 1)[-1] or "UnknownError"
    message = details.get("message") or details.get("Message") or response.text.strip()
    return code, str(message)[:300]
