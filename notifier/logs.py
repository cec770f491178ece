"""Log lines a machine can read: JSON with the request id (web) or the message id (dispatch).

`NOTIFIER_LOG_FORMAT=json` turns it on; the default stays plain text for a person at a terminal.
Each request gets an id (the caller's `X-Request-Id` if it is sane, else a new one), echoed in
the answer, so a storefront's support ticket and our log line meet.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
# Fields a log call may pass in `extra=` that become their own JSON keys.
FIELDS = ("request_id", "message_id", "order_id", "shop", "kind", "state")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while it is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = g.get("request_id")
        return True


def configure(json_lines: bool) -> None:
    """The root handler, once per process (left alone if the host already set one up)."""
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)


def install(app: Flask) -> None:
    @app.before_request
    def _request_id() -> None:
        offered = request.headers.get("X-Request-Id", "")
        g.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex

    @app.after_request
    def _echo(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response
