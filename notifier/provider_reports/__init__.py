"""What email providers later say about mail they took: delivered, bounced, complained.

Each provider's module verifies its webhook and translates it into `ProviderReport`s; like the
storefront adapters in notifier.sources, they never touch the database. notifier.deliverability
applies the reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.models import ProviderVerdict
from notifier.problems import Problem


@dataclass(frozen=True)
class ProviderReport:
    provider: str
    event_id: str  # unique per report at this provider: what makes a redelivery a duplicate
    verdict: ProviderVerdict
    occurred_at: datetime
    rfc_message_id: str | None  # our Message-ID, with its angle brackets
    provider_message_id: str | None  # the provider's own id, as its send API answered it
    recipient: str | None
    permanent: bool  # a hard bounce: the address will never work
    detail: str


@dataclass(frozen=True)
class Parsed:
    """A verified webhook: its reports, or why it carries none we act on."""

    reports: tuple[ProviderReport, ...] = ()
    ignored_because: str | None = None


def json_object(text: bytes, what: str = "The body") -> dict[str, Any]:
    """The text as a JSON object, or a 400 that says why not."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise Problem(400, "Malformed JSON", f"{what} is not valid JSON: {error}.") from error
    if not isinstance(data, dict):
        raise Problem(400, "Malformed JSON", f"{what} is JSON but not an object.")
    return data


def bracketed(message_id: str | None) -> str | None:
    """A Message-ID as our messages store it, `<...>`, however the provider wrote it."""
    if not message_id or not message_id.strip():
        return None
    return f"<{message_id.strip().strip('<>')}>"


def dig(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]..., or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def bounded(value: Any, limit: int) -> str | None:
    """A non-empty string that fits its column, else None: a provider's oddity is not our 500."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value.strip()
