"""The agent console under /console/: server-rendered pages, no JavaScript, every page signed in."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request

from notifier.config import PROJECT_ROOT
from notifier.console import i18n, records, security

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder="static",
    static_url_path="/static",
    template_folder=str(PROJECT_ROOT / "templates"),
)


def _console_headers(response: Response) -> Response:
    if request.path == "/console" or request.path.startswith("/console/"):
        return security.add_headers(response)
    return response


def init_app(app: Flask) -> None:
    from notifier.console import views  # noqa: F401 - registers the routes on bp

    app.session_interface = security.ConsoleSessionInterface()
    i18n.install(app)
    app.jinja_env.globals.update(
        csrf_token=security.csrf_token,
        csrf_field=security.CSRF_FIELD,
        ui_locale=i18n.ui_locale,
        ui_locales=i18n.UI_LOCALES,
        language_name=i18n.language_name,
        native_name=i18n.native_name,
        money=i18n.money,
        utc=records.utc,
        local=records.local,
    )
    app.register_blueprint(bp)
    app.after_request(_console_headers)
