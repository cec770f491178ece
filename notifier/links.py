"""Signed, expiring links in buyer emails (survey answers, unsubscribe) and reading them back.

A token names one message and its shop, signed with the instance's secret key and a salt per
purpose, so a survey link cannot unsubscribe, a link cannot be moved to another shop's message,
and nothing in it can be changed. Its age is measured on the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from notifier.clock import Clock

SURVEY = "survey"
UNSUBSCRIBE = "unsubscribe"
SCORES = (1, 2, 3, 4, 5)


class ClockedSigner(TimestampSigner):
    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock.now().timestamp())


@dataclass(frozen=True)
class Target:
    """What a valid token names."""

    message_id: str
    shop_id: int


class LinkInvalid(Exception):
    """Tampered, truncated or made for something else."""


class LinkExpired(Exception):
    """Genuine but too old; still says which message it was for."""

    def __init__(self, target: Target | None) -> None:
        super().__init__("link expired")
        self.target = target


class BuyerLinks:
    def __init__(
        self,
        secret_key: str,
        base_url: str,
        clock: Clock,
        *,
        survey_valid: timedelta = timedelta(days=30),
        unsubscribe_valid: timedelta = timedelta(days=365),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.valid = {SURVEY: survey_valid, UNSUBSCRIBE: unsubscribe_valid}
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                secret_key,
                salt=f"notifier.buyer.{purpose}",
                signer=ClockedSigner,
                signer_kwargs={"clock": clock},
            )
            for purpose in (SURVEY, UNSUBSCRIBE)
        }

    def token(self, purpose: str, message_id: str, shop_id: int) -> str:
        return str(self._serializers[purpose].dumps([message_id, shop_id]))

    def read(self, purpose: str, token: str) -> Target:
        serializer = self._serializers[purpose]
        try:
            found = serializer.loads(token, max_age=int(self.valid[purpose].total_seconds()))
        except SignatureExpired as expired:
            raise LinkExpired(_target(expired.payload, serializer)) from expired
        except BadSignature as error:
            raise LinkInvalid(str(error)) from error
        target = _target(found)
        if target is None:
            raise LinkInvalid("unexpected payload")
        return target

    def survey_links(self, message_id: str, shop_id: int, reply_to: str) -> dict[str, Any]:
        """What a survey email links to: one URL per score, and the ways to unsubscribe."""
        answer = self.token(SURVEY, message_id, shop_id)
        leave = self.token(UNSUBSCRIBE, message_id, shop_id)
        return {
            "scores": {
                str(score): f"{self.base_url}/b/survey/{answer}?score={score}" for score in SCORES
            },
            "unsubscribe": f"{self.base_url}/b/unsubscribe/{leave}",
            "unsubscribe_mailto": f"mailto:{reply_to}?subject={quote('unsubscribe ' + leave)}",
        }


def _target(payload: Any, serializer: URLSafeTimedSerializer | None = None) -> Target | None:
    if serializer is not None and isinstance(payload, bytes | str):
        try:
            payload = serializer.load_payload(
                payload if isinstance(payload, bytes) else payload.encode()
            )
        except BadSignature:
            return None
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and isinstance(payload[0], str)
        and isinstance(payload[1], int)
    ):
        return Target(payload[0], payload[1])
    return None
