"""The delivery survey: asked once an order has arrived, answered on a buyer page, acted on.

Planning happens in the webhook's transaction (after the last parcel is delivered); answers come
from the buyer pages. A score of 1 or 2 flags the order and writes to the shop's support address
at once, so someone can help before the buyer turns to their bank.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import consent, ledger, outbox, policies
from notifier.kinds import DELIVERY_SURVEY, SURVEY_ALERT, order_context
from notifier.locales import Choice, negotiate
from notifier.models import Message, MessageState, Order, Shop, SurveyAnswer
from notifier.planner import Plan
from notifier.scheduling import Planned, plan_message

UNHAPPY = 2  # this score or lower alerts the shop
AFTER_THE_NEWS = timedelta(seconds=1)
COMMENT_MAX_CHARS = 2000


def plan_after_delivery(
    session: Session,
    *,
    shop: Shop,
    order: Order,
    delivered_at: datetime,
    now: datetime,
    locales: Collection[str],
) -> Planned:
    """Plan the survey once every parcel of the order has arrived; suppressed without consent."""
    waiting = [s for s in order.shipments if s.milestone != "delivered"]
    if waiting:
        return Planned(None, f"survey waits for {len(waiting)} more parcel(s)")
    delay = policies.for_shop(DELIVERY_SURVEY.name, shop.settings).delay
    planned = plan_message(
        session,
        shop=shop,
        order=order,
        kind=DELIVERY_SURVEY,
        dedupe_key=f"order:{order.id}:{DELIVERY_SURVEY.name}",
        # Never before the delivered news itself, even with no delay configured.
        earliest=max(delivered_at, now + AFTER_THE_NEWS - delay),
        now=now,
        locales=locales,
        news={"at": delivered_at.isoformat()},
    )
    message = planned.message
    if message is None:
        return planned
    address = order.details.get("shipping_address") or {}
    verdict = consent.survey_verdict(
        shop.settings, order.details.get("buyer_accepts_marketing"), address.get("country_code")
    )
    if not verdict.allowed:
        outbox.end(session, message, MessageState.SUPPRESSED, f"no consent: {verdict.reason}", now)
        return Planned(message, f"{DELIVERY_SURVEY.name} suppressed: {verdict.reason}")
    message.reason = f"{message.reason}; consent: {verdict.reason}"
    return planned


def latest_answer(session: Session, message_id: str) -> SurveyAnswer | None:
    return session.scalar(
        select(SurveyAnswer)
        .where(SurveyAnswer.message_id == message_id)
        .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
        .limit(1)
    )


def record_answer(
    session: Session,
    message: Message,
    *,
    score: int,
    comment: str | None,
    now: datetime,
    console_url: str,
    locales: Collection[str],
) -> SurveyAnswer:
    """Keep the answer (earlier ones stay in the record), and alert the shop if it is unhappy."""
    order = session.scalars(
        select(Order).where(Order.id == message.order_id).with_for_update()
    ).one()
    answer = SurveyAnswer(
        message_id=message.id,
        order_id=order.id,
        shop_id=message.shop_id,
        score=score,
        comment=comment or None,
        answered_at=now,
    )
    session.add(answer)

    def build() -> ledger.Built:
        content = {
            "answer": answer.id,
            "message": message.id,
            "score": answer.score,
            "comment": answer.comment,
        }
        return order.id, order.shop_id, f"survey answer {answer.id}", content

    ledger.note(session, "survey.answered", build, now)
    if score <= UNHAPPY:
        session.flush()  # the answer's id names the alert
        _alert(session, order, answer, now, console_url, locales)
    return answer


def _alert(
    session: Session,
    order: Order,
    answer: SurveyAnswer,
    now: datetime,
    console_url: str,
    locales: Collection[str],
) -> Message:
    shop = order.shop
    order.flags = [
        *order.flags,
        {
            "flag": "unhappy_buyer",
            "reason": f"survey score {answer.score} of 5",
            "at": now.isoformat(),
        },
    ]
    support = shop.support_email or parseaddr(shop.sender)[1]
    context = {
        **order_context(order, shop),
        "answer": {
            "score": answer.score,
            "comment": answer.comment,
            "at": now.isoformat(),
            "buyer_email": order.buyer_email,
        },
        "console_url": console_url,
    }
    return outbox.schedule(
        session,
        shop=shop,
        order=order,
        kind=SURVEY_ALERT,
        dedupe_key=f"survey_answer:{answer.id}:{SURVEY_ALERT.name}",
        recipient=outbox.Recipient(support, None),
        locale=_shop_language(shop, locales),
        timezone=shop.timezone,
        plan=Plan(now, "at once: a buyer rated the delivery 2 or lower"),
        context=context,
        now=now,
    )


def _shop_language(shop: Shop, locales: Collection[str]) -> Choice:
    found = negotiate(shop.locale, "en", locales).locale
    return Choice(found, f"the shop's language {shop.locale!r} is served by {found}")
