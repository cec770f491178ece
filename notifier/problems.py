"""RFC 9457 problem details: every error the API gives is application/problem+json, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answer with a status, a short title and a precise detail."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    response = Response(
        json.dumps(body, ensure_ascii=False), status=problem.status, mimetype=PROBLEM_JSON
    )
    response.headers.update(problem.headers)
    return response


def _from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    detail = error.description or error.name
    if status == 413:
        limit = request.max_content_length or current_app.config.get("WEBHOOK_MAX_BYTES")
        detail = "The request body is larger than this endpoint accepts" + (
            f" ({limit} bytes at most)." if limit else "."
        )
    headers = {}
    if status == 405 and error.get_response().headers.get("Allow"):
        headers["Allow"] = error.get_response().headers["Allow"]
    return problem_response(Problem(status, error.name, detail, headers=headers))


def _database_unavailable(error: OperationalError | DBAPIError | PoolTimeout) -> Response:
    """Down, restarting, locked, or every pooled connection busy: nothing stored, retry later."""
    log.error("database unavailable: %s", getattr(error, "orig", None) or error)
    return problem_response(
        Problem(
            503,
            "Service Unavailable",
            "The database is unavailable; nothing was stored. Retry later.",
            headers={"Retry-After": "30"},
        )
    )


def _database_error(error: DBAPIError) -> Response:
    """A connection found dead mid-request (any DB-API class) is an outage; other errors are bugs."""
    if error.connection_invalidated:
        return _database_unavailable(error)
    return _unexpected(error)


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(
        Problem(500, "Internal Server Error", "An unexpected error occurred; nothing was stored.")
    )


def register(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeout, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
