"""The console's routes. Every one but the sign-in page and the stylesheet needs a signed-in agent.

The guard runs before every view of the blueprint, so a new route cannot forget it: pages send a
stranger to the sign-in page, downloads answer 401. Every POST carries the session's CSRF token.
An order of a shop the agent does not serve is answered 404, as if it did not exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import (
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from notifier import suppression
from notifier.console import accounts, actions, bp, i18n, records, security
from notifier.console.accounts import Viewer
from notifier.console.i18n import gettext as _
from notifier.kinds import KINDS
from notifier.locales import negotiate
from notifier.models import Agent, Message, Order
from notifier.problems import Problem
from notifier.samples import SAMPLE_SURVEY_LINKS
from notifier.services import services

PUBLIC = frozenset({"console.login", "console.static"})
# Answers that are files, not pages: a stranger gets 401, not a sign-in form.
DOWNLOADS: set[str] = set()
NONCE = re.compile(r"[0-9a-f]{32}")

View = TypeVar("View", bound=Callable[..., Any])


def download(view: View) -> View:
    DOWNLOADS.add(f"console.{view.__name__}")
    return view


# --- the guard ----------------------------------------------------------------------------


def _now() -> datetime:
    return services().clock.now()


def _signed_in() -> Viewer | None:
    agent_id, opened = session.get("agent_id"), session.get("login_at")
    if not isinstance(agent_id, int) or not isinstance(opened, str):
        return None
    lifetime = timedelta(hours=current_app.config["CONSOLE_SESSION_HOURS"])
    if _now() - datetime.fromisoformat(opened) > lifetime:
        return None
    with services().sessions() as db:
        agent = db.get(Agent, agent_id)
        if agent is None or not accounts.same_fingerprint(agent, session.get("pw")):
            return None
        return Viewer.of(agent)


@bp.before_request
def _guard() -> BaseResponse | None:
    if request.endpoint in PUBLIC:
        if request.method == "POST":
            security.check_csrf()
        return None
    viewer = _signed_in()
    if viewer is None:
        for key in ("agent_id", "login_at", "pw"):
            session.pop(key, None)
        if request.endpoint in DOWNLOADS:
            raise Problem(401, _("Sign-in needed"), _("Sign in to the console to download this."))
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("console.login", next=target), 303)
    g.viewer = viewer
    if request.method == "POST":
        security.check_csrf()
    return None


def _viewer() -> Viewer:
    viewer: Viewer = g.viewer
    return viewer


def _safe_next(target: str | None) -> str:
    """Only back into the console: never an open redirect to another site."""
    if (
        target
        and target.startswith("/console/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return url_for("console.search")


@bp.errorhandler(Problem)
def _problem_page(problem: Problem) -> tuple[str, int, dict[str, str]]:
    page = render_template("console/problem.html", title=problem.title, detail=problem.detail)
    return page, problem.status, problem.headers


@bp.errorhandler(HTTPException)
def _http_page(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    if status == 404:
        title, detail = _("Not found"), _("There is nothing here, or it is not yours to see.")
    else:
        title, detail = error.name, error.description or error.name
    return render_template("console/problem.html", title=title, detail=detail), status


# --- signing in and out -------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int, dict[str, str]] | str:
    target = request.values.get("next")
    if request.method == "GET":
        if _signed_in() is not None:
            return redirect(_safe_next(target))
        return render_template("console/login.html", next=target, email="")
    email = request.form.get("email", "")
    config = current_app.config
    throttle = accounts.Throttle(
        config["CONSOLE_LOGIN_MAX_FAILURES"],
        timedelta(seconds=config["CONSOLE_LOGIN_WINDOW_SECONDS"]),
    )
    svc = services()
    with svc.sessions.begin() as db:
        result = accounts.sign_in(
            db,
            email,
            request.form.get("password", ""),
            request.remote_addr or "unknown",
            svc.clock.now(),
            throttle,
        )
        fingerprint = accounts.fingerprint(result.agent) if result.agent else ""
        agent_id = result.agent.id if result.agent else None
    if result.retry_after is not None:
        minutes = max(1, math.ceil(result.retry_after.total_seconds() / 60))
        error = _(
            "Too many failed sign-ins for this email from your address. "
            "Try again in %(minutes)s minutes.",
            minutes=minutes,
        )
        page = render_template("console/login.html", next=target, email=email, error=error)
        return page, 429, {"Retry-After": str(math.ceil(result.retry_after.total_seconds()))}
    if agent_id is None:
        error = _("That email and password do not match an agent.")
        page = render_template("console/login.html", next=target, email=email, error=error)
        return page, 401, {}
    chosen = session.get("ui_locale")
    session.clear()  # a new session for the signed-in agent: nothing carried over but the language
    session.update(agent_id=agent_id, login_at=svc.clock.now().isoformat(), pw=fingerprint)
    if chosen:
        session["ui_locale"] = chosen
    return redirect(_safe_next(target), 303)


@bp.post("/logout")
def logout() -> BaseResponse:
    chosen = session.get("ui_locale")
    session.clear()
    if chosen:
        session["ui_locale"] = chosen
    flash(_("You are signed out."))
    return redirect(url_for("console.login"), 303)


@bp.post("/language")
def language() -> BaseResponse:
    chosen = request.form.get("locale")
    if chosen in i18n.UI_LOCALES:
        session["ui_locale"] = chosen
        g.pop("console_locale", None)
    return redirect(_safe_next(request.form.get("next")), 303)


# --- finding and reading orders -----------------------------------------------------------


@bp.get("/")
def search() -> str:
    text = request.args.get("q", "").strip()
    with services().sessions() as db:
        found = records.search(db, _viewer(), text) if text else []
    now = _now()
    results = [(order, records.flags(order, now)) for order in found[: records.SEARCH_LIMIT]]
    return render_template(
        "console/search.html",
        q=text,
        results=results,
        more=len(found) > records.SEARCH_LIMIT,
    )


def _order(db: Session, order_id: int) -> Order:
    order = records.visible_order(db, _viewer(), order_id)
    if order is None:
        raise Problem(404, _("Not found"), _("There is nothing here, or it is not yours to see."))
    return order


@bp.get("/orders/<int:order_id>")
def order_page(order_id: int) -> str:
    svc = services()
    with svc.sessions() as db:
        order = _order(db, order_id)
        rows = records.timeline(db, order)
        answer = records.latest_survey_answer(db, order)
        blocked = (
            [
                suppression.describe(entry)
                for entry in suppression.active(db, order.shop_id, order.buyer_email)
            ]
            if order.buyer_email
            else []
        )
    return render_template(
        "console/order.html",
        order=order,
        shop=order.shop,
        flags=records.flags(order, svc.clock.now()),
        stalled={
            s.id for s in order.shipments if records.is_stalled(s, order.shop, svc.clock.now())
        },
        emails_in=negotiate(order.buyer_locale_tag, order.shop.locale, svc.renderer.locales),
        rows=rows,
        note_max=current_app.config["CONSOLE_NOTE_MAX_CHARS"],
        evidence=_evidence_available(),
        answer=answer,
        suppressions=blocked,
    )


def _message(db: Session, order: Order, message_id: str) -> records.MessageView:
    view = records.message_view(db, order, message_id)
    if view is None:
        raise Problem(404, _("Not found"), _("There is nothing here, or it is not yours to see."))
    return view


def _chosen_rendering_locale() -> str:
    locales = services().renderer.locales
    chosen = request.args.get("lang") or i18n.ui_locale()
    return chosen if chosen in locales else "en"


def _rendered(db: Session, view: records.MessageView, locale: str) -> tuple[Any, str | None]:
    """The same message rendered now in `locale`, for the agent: (RenderedEmail or None, error)."""
    context = db.scalar(select(Message.context).where(Message.id == view.id)) or {}
    if not KINDS[
        view.kind
    ].transactional:  # placeholders: a real signed link would let an agent answer
        context = {**context, "links": SAMPLE_SURVEY_LINKS}
    try:
        return services().renderer.render(view.kind, context, locale, view.timezone), None
    except Exception as error:  # an erased or old context may no longer fit today's templates
        return None, str(error)


@bp.get("/orders/<int:order_id>/messages/<message_id>")
def message_page(order_id: int, message_id: str) -> str:
    svc = services()
    locale = _chosen_rendering_locale()
    with svc.sessions() as db:
        order = _order(db, order_id)
        view = _message(db, order, message_id)
        email = records.sent_email(db, view)
        history = records.message_history(db, order, message_id)
        rendered, render_error = _rendered(db, view, locale)
    return render_template(
        "console/message.html",
        order=order,
        shop=order.shop,
        message=view,
        email=email,
        history=history,
        rendered=rendered,
        render_error=render_error,
        rendering_locale=locale,
        buyer_locales=sorted(svc.renderer.locales),
        resendable=view.state in {state.value for state in actions.RESENDABLE},
        nonce=actions.new_nonce(),
    )


def _email_frame(html: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = security.EMAIL_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/orders/<int:order_id>/messages/<message_id>/sent.html")
@download
def sent_html(order_id: int, message_id: str) -> Response:
    with services().sessions() as db:
        email = records.sent_email(db, _message(db, _order(db, order_id), message_id))
    if email is None or email.raw is None:
        raise Problem(404, _("Not found"), _("No email of this message can be shown."))
    if email.html is None:
        return _email_frame(render_template("console/plain_email.html", text=email.text or ""))
    return _email_frame(email.html)


@bp.get("/orders/<int:order_id>/messages/<message_id>/sent.eml")
@download
def sent_eml(order_id: int, message_id: str) -> Response:
    with services().sessions() as db:
        view = _message(db, _order(db, order_id), message_id)
        email = records.sent_email(db, view)
    if email is None or email.raw is None:
        raise Problem(404, _("Not found"), _("No email of this message can be shown."))
    response = Response(email.raw, mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="{view.kind}-{view.id}.eml"'
    return response


@bp.get("/orders/<int:order_id>/messages/<message_id>/rendered.html")
@download
def rendered_html(order_id: int, message_id: str) -> Response:
    locale = _chosen_rendering_locale()
    with services().sessions() as db:
        view = _message(db, _order(db, order_id), message_id)
        rendered, error = _rendered(db, view, locale)
    if rendered is None:
        raise Problem(422, _("Cannot render"), error or "")
    return _email_frame(rendered.html)


# --- adding to the record -----------------------------------------------------------------


@bp.post("/orders/<int:order_id>/notes")
def add_note(order_id: int) -> BaseResponse:
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    limit = current_app.config["CONSOLE_NOTE_MAX_CHARS"]
    if len(text) > limit:
        raise Problem(
            400,
            _("Note too long"),
            _(
                "A note is at most %(limit)s characters; this one has %(length)s.",
                limit=limit,
                length=len(text),
            ),
        )
    svc = services()
    with svc.sessions.begin() as db:
        order = _order(db, order_id)
        if text:
            actions.add_note(db, order, _viewer().email, text, svc.clock.now())
    flash(_("Note added to the record.") if text else _("An empty note was not added."))
    return redirect(url_for("console.order_page", order_id=order_id, _anchor="add-note"), 303)


@bp.post("/orders/<int:order_id>/messages/<message_id>/resend")
def resend(order_id: int, message_id: str) -> BaseResponse:
    nonce = request.form.get("nonce", "")
    if not NONCE.fullmatch(nonce):
        raise Problem(400, _("Form expired"), _("Reload the page and send it again."))
    svc = services()
    with svc.sessions.begin() as db:
        order = _order(db, order_id)
        original = db.get(Message, message_id)
        if original is None or original.order_id != order.id:
            raise Problem(
                404, _("Not found"), _("There is nothing here, or it is not yours to see.")
            )
        if original.state not in actions.RESENDABLE:
            raise Problem(
                409,
                _("Cannot resend"),
                _(
                    "Only a sent or failed message can be resent; this one is %(state)s.",
                    state=original.state.value,
                ),
            )
        copy = actions.resend(db, order, original, _viewer().email, nonce, svc.clock.now())
        copy_id = copy.id
    svc.wake_dispatcher.set()
    flash(_("Resent as a new message; it leaves with the next dispatch."))
    return redirect(url_for("console.order_page", order_id=order_id, _anchor=f"m-{copy_id}"), 303)


def _evidence_available() -> bool:
    try:
        from notifier import evidence  # noqa: F401
    except ImportError:
        return False
    return True


@bp.post("/orders/<int:order_id>/evidence")
@download
def evidence_zip(order_id: int) -> Response:
    try:
        from notifier import evidence
    except ImportError as error:
        raise Problem(
            501, _("Not available"), _("Evidence export is not part of this release.")
        ) from error
    svc = services()
    with svc.sessions.begin() as db:
        order = _order(db, order_id)
        data = evidence.export(
            db, order, requested_by=f"agent:{_viewer().email}", now=svc.clock.now()
        )
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"evidence-{order.shop.slug}-{order.number}")
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    return response
