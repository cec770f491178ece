"""Settings: defaults in the instance folder, overridden by NOTIFIER_* environment variables."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

# The folder holding templates/ and translations/ beside the package (an editable or source install).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

APPLY_MODES = ("inline", "deferred")

DEFAULTS: dict[str, Any] = {
    "WEBHOOK_MAX_BYTES": 1024 * 1024,
    "STANDARD_WEBHOOK_TOLERANCE_SECONDS": 300,
    # AfterShip signs no timestamp and retries for days: its `ts` must be no older than this.
    "AFTERSHIP_MAX_AGE_SECONDS": 7 * 24 * 3600,
    # "inline": a webhook applies its news and plans its messages before it answers. "deferred":
    # it only stores the delivery and answers; workers apply stored deliveries in arrival order
    # (notifier.applier). Deferred answers several times faster: for web tiers under peaks.
    "APPLY": "inline",
    # How long a web process keeps a shop's secrets once read (notifier.shop_directory): a
    # change made from another process, such as a rotated secret, counts within this.
    "SHOP_CACHE_SECONDS": 5,
    "DISPATCH_BATCH_SIZE": 50,
    "DISPATCH_POLL_SECONDS": 1.0,
    "DISPATCH_LEASE_SECONDS": 120,
    "DISPATCH_MAX_ATTEMPTS": 8,
    # How often a running dispatcher checkpoints the heads of the ledger's chains.
    "LEDGER_CHECKPOINT_SECONDS": 3600,
    "MAIL_TIMEOUT_SECONDS": 30,
    # "text" for a person at a terminal, "json" for a log pipeline (see notifier.logs).
    "LOG_FORMAT": "text",
    # Database connections per process: pool + overflow must cover its web threads (`--threads`
    # of `notifier serve` or waitress-serve) plus one for an in-process dispatcher.
    "DATABASE_POOL_SIZE": 10,
    "DATABASE_MAX_OVERFLOW": 10,
    # Where buyers and shop staff reach this service: the base of links in emails (/b/, /console/).
    "PUBLIC_URL": "http://127.0.0.1:8000",
    # How long a survey link takes answers, and an unsubscribe link works, after the email left.
    "SURVEY_LINK_DAYS": 30,
    "UNSUBSCRIBE_LINK_DAYS": 365,
    "TEMPLATES_PATH": str(PROJECT_ROOT / "templates"),
    "TRANSLATIONS_PATH": str(PROJECT_ROOT / "translations"),
    # The agent console's session cookie (Secure too, unless plain http on loopback: see
    # notifier.console.security). Lax: a link from a helpdesk opens the console signed in,
    # while a form posted from another site arrives without the cookie.
    "SESSION_COOKIE_NAME": "notifier_console",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "CONSOLE_SESSION_HOURS": 12,
    "CONSOLE_LOGIN_MAX_FAILURES": 5,
    "CONSOLE_LOGIN_WINDOW_SECONDS": 15 * 60,
    "CONSOLE_NOTE_MAX_CHARS": 4000,
    # Email providers' reports (notifier.provider_hooks). Mailgun: the "HTTP webhook signing key";
    # a signature whose timestamp is further than this from now is refused.
    "MAILGUN_WEBHOOK_SIGNING_KEY": "",
    "MAILGUN_WEBHOOK_TOLERANCE_SECONDS": 15 * 60,
    # SES via SNS: the topic ARNs (comma-separated) to hear, and where signing certificates and
    # subscription confirmations may be fetched from (SNS's own hosts only).
    "SES_TOPIC_ARNS": "",
    "SNS_CERT_URL_PATTERN": r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/",
}


def instance_defaults(instance_path: str) -> dict[str, Any]:
    """Defaults that live in the instance folder: the SQLite file, the .eml outbox, the secret key."""
    folder = Path(instance_path)
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'notifier.db'}",
        "MAIL_URL": (folder / "outbox").as_uri(),
    }


def instance_secret_key(folder: Path) -> str:
    """A random key made once per instance, so a default install still signs links safely."""
    path = folder / "secret_key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
