"""Buyer pages under /b/: answering the delivery survey and unsubscribing from it.

No account and no cookie: the signed token in the link is the buyer's only credential, so a
forwarded email lets its reader answer or unsubscribe, and nothing more. Mail scanners open every
link, so a GET only shows a page; only a POST records anything. Pages speak the language the
email was written in, work without JavaScript and never show a stack trace.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, request, url_for
from sqlalchemy.orm import Session

from notifier import links, suppression, survey
from notifier.kinds import DELIVERY_SURVEY, shop_context
from notifier.locales import candidates
from notifier.models import Message, Shop, SuppressionReason
from notifier.rendering import Formats
from notifier.services import services

bp = Blueprint(
    "buyer", __name__, url_prefix="/b", static_folder="static", static_url_path="/static"
)

# Inline styles and scripts forbidden; forms post only here; no one may frame the page.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# RFC 8058: the one-click POST a mail client sends carries this body and nothing else.
ONE_CLICK = "List-Unsubscribe=One-Click"


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The URL holds the buyer's token: never hand it to another site.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "buyer.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/survey/<token>")
def survey_page(token: str) -> Response:
    found = _message(links.SURVEY, token)
    if isinstance(found, Response):
        return found
    message, shop = found
    return _survey_form(message, shop, token, chosen=_score(request.args.get("score")))


@bp.post("/survey/<token>")
def survey_answer(token: str) -> Response:
    found = _message(links.SURVEY, token)
    if isinstance(found, Response):
        return found
    message, shop = found
    score = _score(request.form.get("score"))
    comment = (request.form.get("comment") or "").strip()
    problem = None
    if score is None:
        problem = "score"
    elif len(comment) > survey.COMMENT_MAX_CHARS or "\x00" in comment:
        problem = "comment"
    if problem is not None:
        kept = comment.replace("\x00", "")[: survey.COMMENT_MAX_CHARS]
        return _survey_form(message, shop, token, chosen=score, comment=kept, error=problem)
    assert score is not None
    svc = services()
    with svc.sessions.begin() as session:
        answer = survey.record_answer(
            session,
            _reloaded(session, message),
            score=score,
            comment=comment,
            now=svc.clock.now(),
            console_url=f"{current_app.config['PUBLIC_URL'].rstrip('/')}/console/",
            locales=svc.renderer.locales,
        )
        unhappy = answer.score <= survey.UNHAPPY
    svc.wake_dispatcher.set()  # the shop's alert leaves at once
    return _page(
        "thanks",
        message,
        shop,
        score=score,
        unhappy=unhappy,
        survey_url=url_for("buyer.survey_page", token=token),
    )


def _survey_form(
    message: Message,
    shop: Shop,
    token: str,
    *,
    chosen: int | None,
    comment: str | None = None,
    error: str | None = None,
) -> Response:
    """The form, with the last answer shown (and chosen, unless the buyer just chose)."""
    with services().sessions() as session:
        previous = survey.latest_answer(session, message.id)
    return _page(
        "survey",
        message,
        shop,
        status=400 if error else 200,
        chosen=chosen or (previous.score if previous and not error else None),
        comment=comment if comment is not None else (previous.comment if previous else ""),
        previous=previous,
        error=error,
        action=url_for("buyer.survey_answer", token=token),
        unsubscribe_url=_unsubscribe_url(message),
    )


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Response:
    found = _message(links.UNSUBSCRIBE, token)
    if isinstance(found, Response):
        return found
    message, shop = found
    return _page("unsubscribe", message, shop, action=url_for("buyer.unsubscribe", token=token))


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    """The page's button and RFC 8058's one-click POST alike: honoured at once."""
    found = _message(links.UNSUBSCRIBE, token)
    if isinstance(found, Response):
        return found
    message, shop = found
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    with services().sessions.begin() as session:
        suppression.add(
            session,
            shop_id=shop.id,
            address=message.recipient,
            reason=SuppressionReason.UNSUBSCRIBED,
            detail="one-click unsubscribe from the mail client"
            if one_click
            else "unsubscribe page",
            source="buyer",
            now=services().clock.now(),
            message=_reloaded(session, message),
        )
    return _page("unsubscribed", message, shop)


def _message(purpose: str, token: str) -> tuple[Message, Shop] | Response:
    """The survey message a token names (read, then detached); or the page saying why not."""
    svc = services()
    try:
        target = svc.links.read(purpose, token)
    except links.LinkExpired as expired:
        return _link_problem("expired", purpose, expired.target)
    except links.LinkInvalid:
        return _link_problem("invalid", purpose, None)
    with svc.sessions() as session:
        message = session.get(Message, target.message_id)
        if (
            message is None
            or message.shop_id != target.shop_id
            or message.kind != DELIVERY_SURVEY.name
        ):
            return _link_problem("invalid", purpose, None)
        shop = message.shop
        session.expunge_all()  # plain values from here on
    return message, shop


def _reloaded(session: Session, message: Message) -> Message:
    found = session.get(Message, message.id)
    assert found is not None  # messages are never deleted
    return found


def _link_problem(problem: str, purpose: str, target: links.Target | None) -> Response:
    """A clear page, in the buyer's language where the link still says it, never an error."""
    svc = services()
    message: Message | None = None
    shop: Shop | None = None
    if target is not None:
        with svc.sessions() as session:
            message = session.get(Message, target.message_id)
            if message is not None and message.shop_id == target.shop_id:
                shop = message.shop
                session.expunge_all()
            else:
                message = None
    locale = message.locale if message else _from_browser(svc.renderer.locales)
    days = svc.links.valid[purpose].days
    return _render(
        "link_problem",
        locale,
        message.timezone if message else "UTC",
        status=410 if problem == "expired" else 404,
        problem=problem,
        purpose=purpose,
        days=days,
        shop=_shop_view(shop) if shop else None,
    )


def _page(name: str, message: Message, shop: Shop, *, status: int = 200, **values: Any) -> Response:
    context = message.context
    return _render(
        name,
        message.locale,
        message.timezone,
        status=status,
        shop=_shop_view(shop),
        order=context.get("order", {}),
        recipient=message.recipient,
        **values,
    )


def _shop_view(shop: Shop) -> dict[str, Any]:
    return shop_context(shop)


def _render(name: str, locale: str, timezone: str, *, status: int, **values: Any) -> Response:
    svc = services()
    env = svc.renderer.environment(locale)
    fmt = Formats(locale, timezone, html=True)
    html = env.get_template(f"buyer/{name}.html").render(
        values,
        fmt=fmt,
        lang=locale.replace("_", "-"),
        dir="rtl" if fmt.rtl else "ltr",
        scores=links.SCORES,
        stylesheet=url_for("buyer.static", filename="buyer.css"),
        max_comment=survey.COMMENT_MAX_CHARS,
    )
    return Response(html, status=status, mimetype="text/html")


def _unsubscribe_url(message: Message) -> str:
    token = services().links.token(links.UNSUBSCRIBE, message.id, message.shop_id)
    return url_for("buyer.unsubscribe_page", token=token)


def _score(value: str | None) -> int | None:
    if value is not None and value.strip() in {str(score) for score in links.SCORES}:
        return int(value)
    return None


def _from_browser(available: frozenset[str]) -> str:
    for tag, _quality in request.accept_languages:
        for name in candidates(tag):
            if name in available:
                return name
    return "en"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
