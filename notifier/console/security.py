"""What keeps the console's pages to the agent who asked: cookie flags, CSRF tokens, headers.

The session is Flask's signed cookie. It is always Secure, HttpOnly and SameSite=Lax, except that
on plain http to this machine's loopback (`notifier serve` on 127.0.0.1 for a trial) it drops
Secure, since a browser would never send it back there otherwise. Behind a TLS proxy the request
arrives as http with the public host name, so the cookie stays Secure.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from flask import Flask, Request, Response, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from notifier.console.i18n import gettext as _
from notifier.problems import Problem

CSRF_FIELD = "csrf_token"

# No script at all: the console works without JavaScript, so none may run, inline or not.
PAGE_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# An email's HTML, shown in a sandboxed frame: no script, no form, no remote loads (an email's
# pixels and images stay silent), only its own inline styles.
EMAIL_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def _plain_http_to_loopback() -> bool:
    if request.scheme != "http":
        return False
    host = urlsplit(f"//{request.host}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Machines post here with signatures or tokens, never cookies: no session is read or written.
MACHINE_PATHS = ("/webhooks/", "/api/")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(MACHINE_PATHS):
            return None  # Flask puts an empty null session in its place
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return not _plain_http_to_loopback()


def csrf_token() -> str:
    """This session's token, made on first use; every console form carries it."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Problem(
            400,
            _("Form expired"),
            _(
                "This form is missing its security token or comes from an old page. "
                "Go back, reload the page and send it again."
            ),
        )


def add_headers(response: Response) -> Response:
    """On every console answer: its policy (unless it set a stricter one), no caching of PII."""
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response
