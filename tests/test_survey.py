"""The delivery survey end to end: planned after delivery with consent, answered on buyer pages.

Everything goes through the real endpoints: the standard webhooks in, the dispatcher out through
the memory transport, the links in the email followed with the test client.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytz
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier import audit, links
from notifier.clock import FakeClock
from notifier.models import (
    PLANNED_ORDER,
    LedgerContent,
    LedgerEntry,
    Message,
    MessageState,
    Order,
    Shop,
    Suppression,
    SuppressionReason,
    SurveyAnswer,
)
from notifier.transports.memory import MemoryTransport

from .conftest import parsed, services
from .test_journeys import example
from .test_webhooks_standard import post_standard

pytestmark = pytest.mark.usefixtures("standard_shop")

BERLIN = pytz.timezone("Europe/Berlin")


def order_event(order_id: str = "A-2093", **buyer: Any) -> dict[str, Any]:
    event = example("standard-order.json")
    event["data"]["order"]["id"] = order_id
    event["data"]["order"]["number"] = order_id.removeprefix("A-")
    event["data"]["order"]["buyer"].update(buyer)
    return event


def delivered_event(
    order_id: str = "A-2093", at: str = "2026-11-26T11:05:00+01:00"
) -> dict[str, Any]:
    news = example("standard-shipment.json")
    news["data"]["order"] = {"id": order_id, "number": order_id.removeprefix("A-")}
    news["data"]["shipment"].update(
        id=f"{order_id}-1", status="delivered", occurred_at=at, location="Köln"
    )
    return news


def deliver(client: FlaskClient, clock: FakeClock, order_id: str = "A-2093", **buyer: Any) -> None:
    assert post_standard(client, clock, order_event(order_id, **buyer)).status_code == 200
    clock.set(datetime(2026, 11, 26, 10, 10, tzinfo=UTC))
    assert post_standard(client, clock, delivered_event(order_id)).status_code == 200


def surveys(app: Flask) -> list[Message]:
    with services(app).sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.kind == "delivery_survey").order_by(*PLANNED_ORDER)
            )
        )


def send_survey(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> EmailMessage:
    deliver(client, clock, accepts_marketing=True)
    (survey,) = surveys(app)
    clock.set(survey.due_at)
    dispatch()
    (mail,) = [m for m in mailbox.sent if m.message_id == survey.rfc_message_id]
    return parsed(mail)


def score_links(email: EmailMessage) -> dict[int, str]:
    text = email.get_body(("plain",)).get_content()
    found = re.findall(r"^(\d): (\S+?)\r?$", text, flags=re.M)
    return {int(score): url for score, url in found}


def path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def answers(app: Flask) -> list[SurveyAnswer]:
    with services(app).sessions() as session:
        return list(session.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id)))


# --- planning ------------------------------------------------------------------------------


def test_survey_is_planned_three_days_after_delivery_in_the_buyers_evening(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    deliver(client, clock, accepts_marketing=True)

    (survey,) = surveys(app)
    assert survey.state is MessageState.SCHEDULED
    local = survey.due_at.astimezone(BERLIN)
    assert local.date().isoformat() == "2026-11-29"  # delivered the 26th, plus three days
    assert 18 <= local.hour < 20
    assert "consent: the buyer agreed to marketing email" in survey.reason


def test_survey_skips_a_public_holiday_in_the_buyers_country(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    assert post_standard(client, clock, order_event(accepts_marketing=True)).status_code == 200
    clock.set(datetime(2026, 12, 22, 10, 0, tzinfo=UTC))
    news = delivered_event(at="2026-12-22T10:55:00+01:00")
    assert post_standard(client, clock, news).status_code == 200

    (survey,) = surveys(app)
    # The 25th is three days on, and the 26th is a holiday in Germany too.
    assert survey.due_at.astimezone(BERLIN).date().isoformat() == "2026-12-27"
    assert "Christmas" in survey.reason


def test_without_consent_the_survey_is_recorded_as_suppressed_with_the_reason(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    deliver(client, clock)  # the order says nothing about marketing

    (survey,) = surveys(app)
    assert survey.state is MessageState.SUPPRESSED
    assert "never agreed to marketing email" in survey.reason


def test_a_buyer_who_refused_marketing_gets_no_survey_even_under_the_exception(
    app: Flask, client: FlaskClient, clock: FakeClock, runner: Any
) -> None:
    runner.invoke(args=["notifier", "shop", "set", "atelier", "survey.consent=existing_customer"])
    deliver(client, clock, accepts_marketing=False)

    (survey,) = surveys(app)
    assert survey.state is MessageState.SUPPRESSED
    assert "refused marketing email" in survey.reason


@pytest.mark.parametrize(
    ("country", "allowed"), [("DE", True), ("BR", False)], ids=["exception", "no-exception"]
)
def test_existing_customer_exception_applies_only_where_the_law_has_one(
    app: Flask, client: FlaskClient, clock: FakeClock, runner: Any, country: str, allowed: bool
) -> None:
    result = runner.invoke(
        args=["notifier", "shop", "set", "atelier", "survey.consent=existing_customer"]
    )
    assert result.exit_code == 0, result.output
    event = order_event()
    event["data"]["order"]["shipping_address"]["country_code"] = country
    assert post_standard(client, clock, event).status_code == 200
    clock.set(datetime(2026, 11, 26, 10, 10, tzinfo=UTC))
    assert post_standard(client, clock, delivered_event()).status_code == 200

    (survey,) = surveys(app)
    assert (survey.state is MessageState.SCHEDULED) is allowed
    if allowed:
        assert "existing-customer exception in DE" in survey.reason
    else:
        assert "BR has no existing-customer exception" in survey.reason


# --- the email -----------------------------------------------------------------------------


def test_survey_email_carries_signed_score_links_and_one_click_unsubscribe(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)

    assert "2093" in email["Subject"]
    scores = score_links(email)
    assert sorted(scores) == [1, 2, 3, 4, 5]
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", email["List-Unsubscribe"])
    assert https.startswith("http://127.0.0.1:8000/b/unsubscribe/")
    assert mailto.startswith("mailto:care@atelier.example?subject=unsubscribe")
    html = email.get_body(("html",)).get_content()
    assert https in html  # the visible link too
    # On the wire as RFC 2369 wants it: plain URLs in angle brackets, never encoded words.
    (raw,) = [m.raw for m in mailbox.sent if m.message_id == email["Message-ID"]]
    assert f"\r\nList-Unsubscribe: <{https}>,\r\n <{mailto}>\r\n".encode() in raw


def test_transactional_email_has_no_unsubscribe_header(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    assert post_standard(client, clock, order_event()).status_code == 200
    dispatch()
    (confirmation,) = mailbox.sent
    assert parsed(confirmation)["List-Unsubscribe"] is None


# --- answering -----------------------------------------------------------------------------


def test_a_link_scanner_opening_every_link_records_nothing(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    for url in score_links(email).values():
        response = client.get(path(url))
        assert response.status_code == 200
    assert answers(app) == []


def test_buyer_clicks_4_adds_a_comment_and_the_answer_is_recorded(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[4])

    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="de" dir="ltr">' in html
    assert re.search(r'value="4" checked', html)
    assert not re.search(r'value="[1235]" checked', html)
    assert "Content-Security-Policy" in page.headers
    assert page.headers["Referrer-Policy"] == "no-referrer"

    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action is not None
    done = client.post(action.group(1), data={"score": "4", "comment": "Schnell und gut verpackt."})
    assert done.status_code == 200
    assert "Vielen Dank!" in done.get_data(as_text=True)

    (answer,) = answers(app)
    assert (answer.score, answer.comment) == (4, "Schnell und gut verpackt.")
    with services(app).sessions() as session:
        kinds = session.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.id)).all()
        assert "survey.answered" in kinds
        assert audit.verify(session).problems == []


def test_a_later_answer_shows_instead_and_both_stay_in_the_record(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[5]).split("?")[0]
    client.post(url, data={"score": "5"})
    clock.advance(timedelta(hours=1))
    client.post(url, data={"score": "3", "comment": "Doch ein Kratzer."})

    assert [a.score for a in answers(app)] == [5, 3]
    html = client.get(url).get_data(as_text=True)
    assert re.search(r'value="3" checked', html)
    assert "Doch ein Kratzer." in html


def test_a_low_score_flags_the_order_and_alerts_the_shops_support_address(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[1]).split("?")[0]
    comment = "Der Schal kam zerrissen an. <script>alert(1)</script>"
    assert client.post(url, data={"score": "1", "comment": comment}).status_code == 200

    with services(app).sessions() as session:
        order = session.scalars(select(Order)).one()
        assert [flag["flag"] for flag in order.flags] == ["unhappy_buyer"]
    dispatch()
    alerts = [parsed(m) for m in mailbox.sent if m.recipients == ("care@atelier.example",)]
    (alert,) = alerts
    assert "1" in alert["Subject"]
    assert "2093" in alert["Subject"]
    text = alert.get_body(("plain",)).get_content()
    assert "Der Schal kam zerrissen an." in text
    assert "jonas@example.org" in text
    assert "http://127.0.0.1:8000/console/" in text
    html = alert.get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_missing_score_gets_the_form_back_with_a_clear_message(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[2]).split("?")[0]
    for form in ({"comment": "hm"}, {"score": "9"}, {"score": "4", "comment": "x" * 2001}):
        response = client.post(url, data=form)
        assert response.status_code == 400
        assert 'role="alert"' in response.get_data(as_text=True)
    assert answers(app) == []


# --- links that cannot be used -------------------------------------------------------------


def test_a_tampered_token_gets_a_clear_page_not_an_error(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[4]).split("?")[0]
    token = url.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (f"/b/survey/{tampered}", "/b/survey/nonsense", f"/b/unsubscribe/{token}"):
        response = client.get(bad, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert 'lang="fr"' in response.get_data(as_text=True)
        assert client.post(bad, data={"score": "1"}).status_code == 404
    assert answers(app) == []


def test_an_expired_link_says_so_in_the_buyers_language(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[4]).split("?")[0]
    clock.advance(timedelta(days=31))

    response = client.get(url)
    assert response.status_code == 410
    assert 'lang="de"' in response.get_data(as_text=True)
    assert client.post(url, data={"score": "4"}).status_code == 410
    assert answers(app) == []


def test_a_genuine_token_cannot_be_moved_to_another_shop(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    send_survey(app, client, clock, dispatch, mailbox)
    (survey,) = surveys(app)
    svc = services(app)
    with svc.sessions.begin() as session:
        other = Shop(
            slug="other",
            platform=copy.copy(session.scalars(select(Shop)).one().platform),
            webhook_secrets=["x"],
            sender="Other <o@other.example>",
            created_at=clock.now(),
        )
        session.add(other)
        session.flush()
        other_id = other.id
    forged = svc.links.token(links.SURVEY, survey.id, other_id)  # signed, but for another shop
    assert client.get(f"/b/survey/{forged}").status_code == 404
    assert client.post(f"/b/survey/{forged}", data={"score": "1"}).status_code == 404


# --- unsubscribe ---------------------------------------------------------------------------


def test_one_click_unsubscribe_stops_the_next_survey_but_not_shipping_news(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    https, _mailto = re.findall(r"<([^>]+)>", email["List-Unsubscribe"])
    # What a mail client sends (RFC 8058): a form POST, no cookie, no CSRF token.
    response = client.post(
        path(https),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    with services(app).sessions() as session:
        (entry,) = session.scalars(select(Suppression)).all()
        assert entry.reason is SuppressionReason.UNSUBSCRIBED
        assert entry.address == "jonas@example.org"

    # A second order by the same buyer: its news arrives, its survey does not.
    mailbox.sent.clear()
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert (
        post_standard(client, clock, order_event("A-3001", accepts_marketing=True)).status_code
        == 200
    )
    clock.set(datetime(2026, 12, 3, 10, 10, tzinfo=UTC))
    news = delivered_event("A-3001", at="2026-12-03T11:05:00+01:00")
    assert post_standard(client, clock, news).status_code == 200
    clock.set(datetime(2026, 12, 10, 9, 0, tzinfo=UTC))
    dispatch()

    second = [m for m in surveys(app) if m.dedupe_key.endswith("delivery_survey")][-1]
    assert second.state is MessageState.SUPPRESSED
    assert "unsubscribed" in second.reason
    with services(app).sessions() as session:
        sent = session.scalars(select(Message.kind).where(Message.state == MessageState.SENT)).all()
    assert "delivered" in sent
    assert "order_confirmation" in sent
    assert all(parsed(m)["List-Unsubscribe"] is None for m in mailbox.sent)


def test_the_unsubscribe_page_asks_first_and_a_get_changes_nothing(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    https, _mailto = re.findall(r"<([^>]+)>", email["List-Unsubscribe"])
    page = client.get(path(https))
    assert page.status_code == 200
    assert "jonas@example.org" in page.get_data(as_text=True)
    with services(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


# --- what agents see -----------------------------------------------------------------------


def test_the_console_shows_the_answer_and_why_an_address_gets_no_mail(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    from .test_console import ADMIN, make_agent, sign_in

    email = send_survey(app, client, clock, dispatch, mailbox)
    survey_url = path(score_links(email)[4]).split("?")[0]
    client.post(survey_url, data={"score": "4", "comment": "Gut verpackt, danke!"})
    https, _mailto = re.findall(r"<([^>]+)>", email["List-Unsubscribe"])
    client.post(path(https), data={"List-Unsubscribe": "One-Click"})

    make_agent(app, ADMIN)
    assert sign_in(client, ADMIN).status_code == 303
    with services(app).sessions() as session:
        order_id = session.scalars(select(Order.id)).one()
    page = client.get(f"/console/orders/{order_id}").get_data(as_text=True)
    assert "Gut verpackt, danke!" in page
    assert "4 of 5" in page
    assert "jonas@example.org is suppressed for surveys" in page
    assert "one-click unsubscribe from the mail client" in page


def test_operators_list_add_and_lift_suppressions(app: Flask, runner: Any) -> None:
    def run(*args: str) -> Any:
        return runner.invoke(args=["notifier", "suppression", *args])

    assert run("list", "atelier").output.strip() == "no suppressed addresses"
    added = run("add", "atelier", "Jonas@Example.org", "--reason", "asked by phone", "--by", "ana")
    assert added.exit_code == 0, added.output
    assert "jonas@example.org is suppressed for all mail" in run("list", "atelier").output
    assert run("add", "nope", "a@b.example", "--reason", "x").exit_code != 0
    assert run("add", "atelier", "not an address", "--reason", "x").exit_code != 0

    lifted = run("lift", "atelier", "jonas@example.org", "--by", "ana")
    assert lifted.exit_code == 0, lifted.output
    assert run("list", "atelier").output.strip() == "no suppressed addresses"
    assert "lifted" in run("list", "atelier", "--all").output
    assert run("lift", "atelier", "jonas@example.org").exit_code != 0


def test_an_address_stopped_by_an_operator_gets_no_order_news_either(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
    runner: Any,
) -> None:
    runner.invoke(args=["notifier", "suppression", "add", "atelier", "jonas@example.org",
                        "--reason", "legal hold"])  # fmt: skip
    assert post_standard(client, clock, order_event()).status_code == 200
    outcome = dispatch()

    assert (outcome.sent, outcome.suppressed) == (0, 1)
    assert mailbox.sent == []
    with services(app).sessions() as session:
        message = session.scalars(select(Message)).one()
        assert message.state is MessageState.SUPPRESSED
        assert "legal hold" in message.reason
        assert audit.verify(session).problems == []


def test_erasing_the_buyer_drops_their_comment_and_keeps_the_score_and_the_chain(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
    runner: Any,
) -> None:
    email = send_survey(app, client, clock, dispatch, mailbox)
    url = path(score_links(email)[2]).split("?")[0]
    client.post(url, data={"score": "2", "comment": "Jonas Weber, Hauptstraße 5: Paket nass."})
    dispatch()

    result = runner.invoke(args=["notifier", "buyer", "erase", "jonas@example.org", "--yes"])
    assert result.exit_code == 0, result.output

    (answer,) = answers(app)
    assert (answer.score, answer.comment) == (2, None)
    with services(app).sessions() as session:
        assert audit.verify(session).problems == []
        stored = b"".join(session.scalars(select(LedgerContent.content)))
    assert b"Paket nass" not in stored


def test_with_no_delay_the_survey_still_follows_the_delivered_email(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
    runner: Any,
) -> None:
    for setting in ("survey.delay_days=0", "window.delivery_survey=immediate"):
        runner.invoke(args=["notifier", "shop", "set", "atelier", setting])
    deliver(client, clock, accepts_marketing=True)
    clock.advance(timedelta(seconds=5))
    dispatch()

    kinds = {m.rfc_message_id: m.kind for m in _all_messages(app)}
    assert [kinds[mail.message_id] for mail in mailbox.sent][-2:] == [
        "delivered",
        "delivery_survey",
    ]


def _all_messages(app: Flask) -> list[Message]:
    with services(app).sessions() as session:
        return list(session.scalars(select(Message)))
