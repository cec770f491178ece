"""The agent console through Flask's test client: who may see what, forms, headers, the record.

Orders are made the way production makes them, through the signed webhook endpoints, and their
mail is sent by the real dispatcher into the memory transport.
"""

from __future__ import annotations

import html
import io
import json
import re
import secrets
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from notifier import audit, outbox
from notifier.clock import FakeClock
from notifier.console import accounts
from notifier.kinds import KINDS
from notifier.locales import Choice
from notifier.models import (
    PLANNED_ORDER,
    Agent,
    Delivery,
    LedgerContent,
    LedgerEntry,
    Message,
    MessageState,
    Order,
    Shop,
)
from notifier.planner import Plan
from notifier.transports.memory import MemoryTransport

from .conftest import post_shopify, services, shopify_order
from .test_journeys import fulfilment, post_fulfilment
from .test_webhooks_standard import post_standard, standard_event

PASSWORD = "plum-kettle-harbour-57"
ADMIN = "admin@support.example"
LUMEN_AGENT = "mia@support.example"
TRACKING = "JD014600006281230704"


# --- helpers (used by test_api.py and test_browser.py too) --------------------------------


def make_agent(
    app: Flask, email: str, shops: tuple[str, ...] = (), password: str = PASSWORD
) -> None:
    svc = services(app)
    with svc.sessions.begin() as session:
        accounts.add_agent(session, email, password, list(shops), svc.clock.now())


def form_token(client: FlaskClient) -> str:
    """The session's CSRF token, as a page of the console would have put it in a form."""
    with client.session_transaction() as session:
        token: str = session.setdefault("csrf", secrets.token_urlsafe(32))
    return token


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    data = {"email": email, "password": password, "csrf_token": form_token(client)}
    return client.post("/console/login", data=data, **kwargs)


def post_form(client: FlaskClient, path: str, **fields: str) -> Any:
    return client.post(path, data={"csrf_token": form_token(client), **fields})


def order_id(app: Flask, number: str) -> int:
    with services(app).sessions() as session:
        found = session.scalar(select(Order.id).where(Order.number == number))
    assert found is not None
    return found


def messages_of(app: Flask, order: int) -> list[Message]:
    with services(app).sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.order_id == order).order_by(*PLANNED_ORDER)
            )
        )


def ledger_of(app: Flask, order: int) -> list[tuple[LedgerEntry, bytes | None]]:
    with services(app).sessions() as session:
        rows = session.execute(
            select(LedgerEntry, LedgerContent.content)
            .outerjoin(LedgerContent, LedgerContent.sha256 == LedgerEntry.content_sha256)
            .where(LedgerEntry.chain == f"order:{order}")
            .order_by(LedgerEntry.seq)
        )
        return [(entry, content) for entry, content in rows]


def verify(app: Flask) -> audit.Report:
    with services(app).sessions() as session:
        return audit.verify(session)


def place_lumen_order(client: FlaskClient, dispatch: Callable[..., Any], **changes: Any) -> None:
    """Order #1001 at lumen, confirmed by email, then shipped with a tracking number."""
    assert post_shopify(client, shopify_order(**changes)).status_code == 200
    assert post_fulfilment(client, fulfilment()).status_code == 200
    dispatch()


@pytest.fixture
def lumen_order(
    app: Flask, client: FlaskClient, dispatch: Callable[..., Any], shopify_shop: Shop
) -> int:
    place_lumen_order(client, dispatch)
    return order_id(app, "#1001")


@pytest.fixture
def atelier_order(app: Flask, client: FlaskClient, clock: FakeClock, standard_shop: Shop) -> int:
    assert post_standard(client, clock, standard_event()).status_code == 200
    return order_id(app, "A-2041")


@pytest.fixture
def admin(app: Flask, client: FlaskClient) -> FlaskClient:
    """A client signed in as an administrator (every shop)."""
    make_agent(app, ADMIN)
    assert sign_in(client, ADMIN).status_code == 303
    return client


def first_sent(app: Flask, order: int) -> Message:
    return next(m for m in messages_of(app, order) if m.state is MessageState.SENT)


# --- nothing answers a stranger ------------------------------------------------------------


PUBLIC_ENDPOINTS = {"console.login", "console.static"}


def guarded_rules(app: Flask, values: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL) of every console and API route but sign-in and the stylesheet."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/console", "/api/")) or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        sample = {name: (values or {}).get(name, 1) for name in rule.arguments}
        url = rule.build(sample, append_unknown=False)
        assert url is not None
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((rule.endpoint, method, url[1]))
    return found


def test_every_console_and_api_route_refuses_a_stranger(app: Flask, client: FlaskClient) -> None:
    rules = guarded_rules(app)
    assert len(rules) >= 12, rules  # the list is real, not empty by a broken filter

    for endpoint, method, url in rules:
        response = client.open(url, method=method, data={"csrf_token": form_token(client)})
        if url.startswith("/api/"):
            assert response.status_code == 401, (endpoint, url)
            assert response.mimetype == "application/problem+json"
        elif response.status_code in (302, 303):
            assert response.location.startswith("/console/login"), (endpoint, url)
        else:
            assert response.status_code == 401, (endpoint, method, url, response.status_code)
        assert b"Anna" not in response.data


def test_downloads_answer_401_and_pages_redirect_to_sign_in(
    client: FlaskClient, lumen_order: int, app: Flask
) -> None:
    message = first_sent(app, lumen_order)
    base = f"/console/orders/{lumen_order}/messages/{message.id}"

    page = client.get(f"/console/orders/{lumen_order}")
    eml = client.get(f"{base}/sent.eml")
    html = client.get(f"{base}/sent.html")

    assert page.status_code == 303
    assert page.location == f"/console/login?next=/console/orders/{lumen_order}"
    assert eml.status_code == 401
    assert html.status_code == 401
    assert b"Sign in" in eml.data


# --- signing in -----------------------------------------------------------------------------


def test_an_agent_signs_in_searches_and_signs_out(app: Flask, client: FlaskClient) -> None:
    make_agent(app, ADMIN)

    login_page = client.get("/console/login")
    wrong = sign_in(client, ADMIN, "not-the-password-at-all")
    right = sign_in(client, " Admin@Support.example ")
    search = client.get("/console/")
    out = post_form(client, "/console/logout")
    after = client.get("/console/")

    assert login_page.status_code == 200
    assert b'name="csrf_token"' in login_page.data
    assert wrong.status_code == 401
    assert b"do not match an agent" in wrong.data
    assert right.status_code == 303
    assert right.location == "/console/"
    assert search.status_code == 200
    assert ADMIN.encode() in search.data
    assert out.status_code == 303
    assert after.status_code == 303
    assert after.location.startswith("/console/login")


def test_after_sign_in_the_agent_lands_where_they_were_going_but_never_off_site(
    app: Flask, client: FlaskClient
) -> None:
    make_agent(app, ADMIN)

    inside = sign_in(client, ADMIN, query_string={"next": "/console/?q=1001"})
    post_form(client, "/console/logout")
    outside = sign_in(client, ADMIN, query_string={"next": "https://evil.example/"})
    post_form(client, "/console/logout")
    sneaky = sign_in(client, ADMIN, query_string={"next": "//evil.example/console/"})

    assert inside.location == "/console/?q=1001"
    assert outside.location == "/console/"
    assert sneaky.location == "/console/"


def cookie_of(response: Any) -> str:
    [cookie] = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("notifier_console=")
    ]
    return cookie


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [
        ("http://localhost", False),
        ("http://127.0.0.1:8000", False),
        ("https://localhost", True),
        ("http://console.shop.example", True),  # plain http elsewhere: a proxy's TLS in front
        ("https://console.shop.example", True),
    ],
)
def test_the_session_cookie_is_httponly_lax_and_secure_off_loopback(
    app: Flask, client: FlaskClient, base_url: str, secure: bool
) -> None:
    make_agent(app, ADMIN)
    page = client.get("/console/login", base_url=base_url).get_data(as_text=True)
    [token] = re.findall(r'name="csrf_token" value="([^"]+)"', page)

    response = client.post(
        "/console/login",
        data={"email": ADMIN, "password": PASSWORD, "csrf_token": token},
        base_url=base_url,
    )

    cookie = cookie_of(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def test_five_failures_per_email_and_address_lock_sign_in_for_fifteen_minutes(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_agent(app, ADMIN)

    failures = [sign_in(client, ADMIN, f"wrong-guess-{n}").status_code for n in range(5)]
    locked = sign_in(client, ADMIN)  # even the right password waits
    elsewhere = sign_in(client, ADMIN, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    post_form(client, "/console/logout")
    clock.advance(timedelta(minutes=14))
    still = sign_in(client, ADMIN)
    clock.advance(timedelta(minutes=2))
    again = sign_in(client, ADMIN)

    assert failures == [401] * 5
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.data
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert elsewhere.status_code == 303
    assert still.status_code == 429
    assert again.status_code == 303


def test_an_unknown_email_fails_like_a_wrong_password(app: Flask, client: FlaskClient) -> None:
    make_agent(app, ADMIN)

    unknown = sign_in(client, "nobody@support.example")
    wrong = sign_in(client, ADMIN, "wrong-password-here")

    assert unknown.status_code == wrong.status_code == 401
    assert unknown.data.replace(b"nobody@support.example", b"") == wrong.data.replace(
        ADMIN.encode(), b""
    )


def test_a_session_ends_after_its_hours_or_when_the_password_changes(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    make_agent(app, ADMIN)
    sign_in(client, ADMIN)
    clock.advance(timedelta(hours=13))
    expired = client.get("/console/")
    sign_in(client, ADMIN)
    with services(app).sessions.begin() as session:
        agent = session.scalar(select(Agent).where(Agent.email == ADMIN))
        assert agent is not None
        agent.password_hash = accounts.hash_password("a-new-password-for-mia-99")
    changed = client.get("/console/")

    assert expired.status_code == 303
    assert changed.status_code == 303


# --- forms and headers ----------------------------------------------------------------------


def test_every_form_post_without_its_csrf_token_is_refused(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    message = first_sent(app, lumen_order)
    real = {"order_id": lumen_order, "message_id": message.id}
    posts = [
        (endpoint, url)
        for endpoint, method, url in guarded_rules(app, real)
        if method == "POST" and url.startswith("/console")
    ]
    assert {endpoint for endpoint, _ in posts} >= {
        "console.logout",
        "console.language",
        "console.add_note",
        "console.resend",
        "console.evidence_zip",
    }

    for _endpoint, url in posts:
        fields = {"text": "a note", "nonce": "0" * 32, "locale": "en"}
        missing = admin.post(url, data=fields)
        forged = admin.post(url, data={"csrf_token": "forged", **fields})
        assert missing.status_code == 400, url
        assert forged.status_code == 400, url
        assert missing.mimetype == "text/html"
        assert b"security token" in missing.data

    login = admin.post("/console/login", data={"email": ADMIN, "password": PASSWORD})
    assert login.status_code == 400
    assert not [e for e, _ in ledger_of(app, lumen_order) if e.kind == "note"]
    assert len(messages_of(app, lumen_order)) == 2  # nothing was resent


def console_pages(app: Flask, lumen_order: int) -> list[str]:
    message = first_sent(app, lumen_order)
    base = f"/console/orders/{lumen_order}"
    return [
        "/console/",
        "/console/?q=1001",
        base,
        f"{base}/messages/{message.id}",
        f"{base}/messages/{message.id}?lang=zh_Hans",
        f"{base}/messages/nope",
        "/console/orders/999999",
    ]


def test_every_console_page_carries_the_security_headers(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    admin_pages = console_pages(app, lumen_order)
    for url in [*admin_pages, "/console/login", "/console/static/console.css"]:
        with admin.get(url) as response:
            response.get_data()
        policy_header = response.headers["Content-Security-Policy"]
        assert "script-src 'none'" in policy_header, url
        assert "frame-ancestors 'none'" in policy_header, url
        assert "'unsafe-inline'" not in policy_header, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        if not url.endswith(".css"):
            assert response.headers["Cache-Control"] == "no-store"
            assert b"<script" not in response.data
            assert b"style=" not in response.data, url  # CSP allows no inline style


def test_the_email_html_is_served_sandboxed_without_scripts(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    message = first_sent(app, lumen_order)
    base = f"/console/orders/{lumen_order}/messages/{message.id}"

    page = admin.get(base)
    frame = admin.get(f"{base}/sent.html")

    assert re.search(rb'<iframe class="email-frame" sandbox src="[^"]*/sent\.html"', page.data)
    policy_header = frame.headers["Content-Security-Policy"]
    assert policy_header.startswith("sandbox;")
    assert "script-src" not in policy_header  # default-src 'none' covers it
    assert "default-src 'none'" in policy_header
    assert "frame-ancestors 'self'" in policy_header
    assert frame.mimetype == "text/html"
    assert b"#1001" in frame.data


# --- who sees which shop --------------------------------------------------------------------


def test_an_agent_of_one_shop_never_sees_another_shops_orders(
    app: Flask, client: FlaskClient, lumen_order: int, atelier_order: int
) -> None:
    make_agent(app, LUMEN_AGENT, ("lumen",))
    sign_in(client, LUMEN_AGENT)
    [atelier_message] = messages_of(app, atelier_order)
    base = f"/console/orders/{atelier_order}"

    by_number = client.get("/console/?q=A-2041")
    by_name = client.get("/console/?q=meier")
    own = client.get("/console/?q=1001")
    answers = [
        client.get(base),
        client.get(f"{base}/messages/{atelier_message.id}"),
        client.get(f"{base}/messages/{atelier_message.id}/sent.eml"),
        post_form(client, f"{base}/notes", text="peeking"),
        post_form(client, f"{base}/messages/{atelier_message.id}/resend", nonce="1" * 32),
    ]

    assert f"/console/orders/{atelier_order}".encode() not in by_number.data
    assert b"Meier" not in by_name.data
    assert b"No order matches" in by_number.data
    assert b"No order matches" in by_name.data
    assert b"#1001" in own.data
    assert [a.status_code for a in answers] == [404] * 5
    assert all(b"Meier" not in a.data for a in answers)
    assert not [e for e, _ in ledger_of(app, atelier_order) if e.kind == "note"]


def test_an_administrator_sees_every_shop(
    app: Flask, admin: FlaskClient, lumen_order: int, atelier_order: int
) -> None:
    assert f"/console/orders/{atelier_order}".encode() in admin.get("/console/?q=a-2041").data
    assert admin.get(f"/console/orders/{atelier_order}").status_code == 200
    assert admin.get(f"/console/orders/{lumen_order}").status_code == 200


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["#1001", "1001", "5523487293612", "anna.schmidt@example.org", "SCHMIDT", "anna sch", TRACKING],
)
def test_search_finds_an_order_by_each_of_its_names(
    admin: FlaskClient, lumen_order: int, query: str
) -> None:
    response = admin.get("/console/", query_string={"q": query})

    assert response.status_code == 200
    assert f'href="/console/orders/{lumen_order}"'.encode() in response.data
    assert b"1 order matches" in response.data


def test_search_treats_wildcards_as_text(admin: FlaskClient, lumen_order: int) -> None:
    assert b"No order matches" in admin.get("/console/?q=%25").data
    assert b"No order matches" in admin.get("/console/?q=__").data


# --- escaping -------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"


def test_hostile_buyer_text_is_shown_escaped_everywhere(
    app: Flask, client: FlaskClient, dispatch: Callable[..., Any], shopify_shop: Shop
) -> None:
    order = shopify_order()
    order["customer"] = {**order["customer"], "first_name": HOSTILE, "last_name": '"><img src=x>'}
    order["shipping_address"] = {**order["shipping_address"], "city": HOSTILE}
    place_lumen_order(client, dispatch, **{k: order[k] for k in ("customer", "shipping_address")})
    make_agent(app, ADMIN)
    sign_in(client, ADMIN)
    number = order_id(app, "#1001")
    post_form(client, f"/console/orders/{number}/notes", text=f"buyer wrote {HOSTILE}")

    pages = [
        client.get("/console/", query_string={"q": "alert"}),
        client.get(f"/console/orders/{number}"),
        *[
            client.get(f"/console/orders/{number}/messages/{m.id}")
            for m in messages_of(app, number)
        ],
    ]

    for page in pages:
        assert page.status_code == 200
        assert b"<script>" not in page.data
        assert b"<img src=x>" not in page.data
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].data
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1].data


# --- the order page -------------------------------------------------------------------------


def test_the_order_page_shows_header_shipments_and_one_timeline(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    page = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)

    assert "Order #1001" in page
    assert "Anna Schmidt" in page
    assert "anna.schmidt@example.org" in page
    assert "Europe/Berlin" in page
    assert "buyer locale &#39;de&#39; is served by de" in page
    assert TRACKING in page
    # One timeline: the webhooks, the messages with both clocks and their reasons, the ledger.
    assert "orders/create" in page
    assert "fulfillments/create" in page
    assert "Planned order_confirmation" in page
    assert "Planned shipment_shipped" in page
    assert "2026-11-23 09:00 UTC" in page
    assert "buyer: 2026-11-23 10:00 CET" in page
    assert "Handed to the mail server" in page
    entries = ledger_of(app, lumen_order)
    for entry, _content in entries:
        assert f"#{entry.seq} · {entry.entry_sha256[:8]}" in page
    times = re.findall(r'<time datetime="([^"]+)"', page)
    assert times == sorted(times)


def test_flags_show_exceptions_and_stalled_parcels(
    app: Flask, admin: FlaskClient, lumen_order: int, clock: FakeClock
) -> None:
    with services(app).sessions.begin() as session:
        order = session.get(Order, lumen_order)
        assert order is not None
        order.flags = [
            {"flag": "exception", "reason": "lost", "shipment": TRACKING, "at": "2026-11-25"}
        ]
    quiet = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)
    clock.advance(timedelta(days=8))
    sign_in(admin, ADMIN)  # the session ended meanwhile
    silent = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)
    listed = admin.get("/console/?q=1001").get_data(as_text=True)

    assert "exception: lost" in quiet
    assert "stalled" not in quiet
    assert "flag-stalled" in silent
    assert "flag-stalled" in listed
    assert "exception: lost" in listed


# --- one message ----------------------------------------------------------------------------


def test_the_message_page_shows_the_email_exactly_as_sent(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    message = first_sent(app, lumen_order)
    base = f"/console/orders/{lumen_order}/messages/{message.id}"
    with services(app).sessions() as session:
        delivery = session.scalar(select(Delivery).where(Delivery.message_id == message.id))
        assert delivery is not None
        raw = delivery.raw
    assert raw is not None
    sent = message_from_bytes(raw, policy=policy.default)

    page = admin.get(base).get_data(as_text=True)
    eml = admin.get(f"{base}/sent.eml")

    assert "Bestellung #1001" in page  # the German subject, among the headers
    assert html.escape(message.rfc_message_id) in page
    text = sent.get_body(preferencelist=("plain",))
    assert text is not None
    first_line = text.get_content().strip().splitlines()[0]
    assert first_line in page
    assert eml.status_code == 200
    assert eml.mimetype == "message/rfc822"
    assert eml.data == raw
    assert "attachment" in eml.headers["Content-Disposition"]


def test_show_in_my_language_renders_for_the_agent_and_says_so(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    message = first_sent(app, lumen_order)
    base = f"/console/orders/{lumen_order}/messages/{message.id}"

    page = admin.get(base, query_string={"lang": "en"}).get_data(as_text=True)
    frame = admin.get(f"{base}/rendered.html", query_string={"lang": "en"})
    unknown = admin.get(base, query_string={"lang": "xx"}).get_data(as_text=True)

    assert "Order #1001 confirmed" in page  # the English subject, rendered for the agent
    assert "It is not what the buyer received" in page
    assert "Bestellung #1001" in page  # what was sent is still there
    assert frame.headers["Content-Security-Policy"].startswith("sandbox;")
    assert b'lang="en"' in frame.data
    assert 'value="en" selected' in unknown
    assert page.count("<option") >= 16 + 2


def test_the_console_speaks_simplified_chinese_when_asked(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    english = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)
    post_form(admin, "/console/language", locale="zh_Hans", next=f"/console/orders/{lumen_order}")
    chinese = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)

    assert "Timeline" in english
    assert "时间线" in chinese
    assert "Timeline" not in chinese
    assert 'lang="zh-Hans"' in chinese


def test_the_browser_language_picks_the_console_language(app: Flask, client: FlaskClient) -> None:
    chinese = client.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    german = client.get("/console/login", headers={"Accept-Language": "de-DE,de;q=0.9"})

    assert "登录" in chinese.get_data(as_text=True)
    assert "Sign in" in german.get_data(as_text=True)


# --- notes and resends ----------------------------------------------------------------------


def test_a_note_joins_the_ledger_and_the_timeline(
    app: Flask, admin: FlaskClient, lumen_order: int, clock: FakeClock
) -> None:
    clock.advance(timedelta(hours=2))
    text = "Buyer called: parcel not received.\nAsked to wait two days."

    added = post_form(admin, f"/console/orders/{lumen_order}/notes", text=text)
    page = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)

    assert added.status_code == 303
    [(entry, content)] = [(e, c) for e, c in ledger_of(app, lumen_order) if e.kind == "note"]
    assert content is not None
    assert entry.recorded_at == clock.now()
    assert entry.subject == f"order {lumen_order}"
    assert json.loads(content) == {"author": ADMIN, "text": text}
    assert f"Note by {ADMIN}" in page
    assert "Buyer called: parcel not received.\nAsked to wait two days." in page
    assert verify(app).intact


def test_a_note_is_refused_when_too_long_and_skipped_when_empty(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    too_long = post_form(admin, f"/console/orders/{lumen_order}/notes", text="x" * 4001)
    empty = post_form(admin, f"/console/orders/{lumen_order}/notes", text="   ")

    assert too_long.status_code == 400
    assert b"at most 4000 characters" in too_long.data
    assert empty.status_code == 303
    assert not [e for e, _ in ledger_of(app, lumen_order) if e.kind == "note"]


def test_resend_plans_a_linked_message_that_the_dispatcher_sends(
    app: Flask,
    admin: FlaskClient,
    lumen_order: int,
    dispatch: Callable[..., Any],
    mailbox: MemoryTransport,
    clock: FakeClock,
) -> None:
    clock.advance(timedelta(hours=3))
    original = first_sent(app, lumen_order)
    nonce = "ab" * 16
    path = f"/console/orders/{lumen_order}/messages/{original.id}/resend"

    first = post_form(admin, path, nonce=nonce)
    twice = post_form(admin, path, nonce=nonce)  # a double click
    [copy] = [m for m in messages_of(app, lumen_order) if m.resend_of == original.id]
    before = len(mailbox.sent)
    dispatch()
    page = admin.get(f"/console/orders/{lumen_order}").get_data(as_text=True)

    assert first.status_code == twice.status_code == 303
    assert first.location.endswith(f"#m-{copy.id}")
    assert copy.id != original.id
    assert copy.rfc_message_id != original.rfc_message_id
    assert copy.kind == original.kind
    assert copy.due_at == clock.now()
    assert copy.reason.startswith(f"resent by agent {ADMIN} from message {original.id}")
    assert len(mailbox.sent) == before + 1
    assert mailbox.sent[-1].message_id == copy.rfc_message_id
    assert messages_of(app, lumen_order)[-1].state is MessageState.SENT
    assert f'id="m-{copy.id}"' in page
    assert "resent by agent" in page
    assert verify(app).intact


def test_only_sent_or_failed_messages_can_be_resent(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    order = messages_of(app, lumen_order)[0].order_id
    svc = services(app)
    with svc.sessions.begin() as session:
        pending = outbox.schedule(
            session,
            shop=session.get(Order, order).shop,  # type: ignore[union-attr]
            order=session.get(Order, order),  # type: ignore[arg-type]
            kind=KINDS["delivered"],
            dedupe_key="pending-one",
            recipient=outbox.Recipient("anna.schmidt@example.org", "Anna"),
            locale=Choice("de", "test"),
            timezone="Europe/Berlin",
            plan=Plan(svc.clock.now() + timedelta(days=1), "tomorrow"),
            context={},
            now=svc.clock.now(),
        )
        pending_id = pending.id

    refused = post_form(
        admin, f"/console/orders/{lumen_order}/messages/{pending_id}/resend", nonce="c" * 32
    )

    assert refused.status_code == 409
    assert b"Only a sent or failed message can be resent" in refused.data


def test_evidence_export_downloads_a_zip_and_records_who_asked(
    app: Flask, admin: FlaskClient, lumen_order: int
) -> None:
    pytest.importorskip("notifier.evidence")

    response = post_form(admin, f"/console/orders/{lumen_order}/evidence")

    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert "evidence-lumen-_1001.zip" in response.headers["Content-Disposition"]
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    exports = [c for e, c in ledger_of(app, lumen_order) if e.kind == "evidence.exported"]
    assert len(exports) == 1
    assert f"agent:{ADMIN}".encode() in (exports[0] or b"")
    assert verify(app).intact


# --- fast on a long record ------------------------------------------------------------------


@contextmanager
def counted_statements(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def add_messages(app: Flask, order: int, count: int) -> None:
    """`count` more messages due now, planned the way the planner plans them."""
    svc = services(app)
    with svc.sessions.begin() as session:
        target = session.get(Order, order)
        assert target is not None
        for n in range(count):
            outbox.schedule(
                session,
                shop=target.shop,
                order=target,
                kind=KINDS["order_confirmation"],
                dedupe_key=f"bulk:{order}:{n}",
                recipient=outbox.Recipient("anna.schmidt@example.org", "Anna Schmidt"),
                locale=Choice("de", "bulk"),
                timezone="Europe/Berlin",
                plan=Plan(svc.clock.now(), f"bulk message {n}"),
                context=KINDS["order_confirmation"].build_context(target, target.shop, None, None),
                now=svc.clock.now(),
            )


def test_the_order_page_issues_the_same_few_queries_for_300_messages(
    app: Flask, admin: FlaskClient, lumen_order: int, dispatch: Callable[..., Any]
) -> None:
    engine = services(app).engine
    with counted_statements(engine) as small:
        assert admin.get(f"/console/orders/{lumen_order}").status_code == 200
    add_messages(app, lumen_order, 298)
    dispatch()
    assert len(messages_of(app, lumen_order)) == 300
    with counted_statements(engine) as large:
        page = admin.get(f"/console/orders/{lumen_order}")

    assert page.status_code == 200
    assert page.data.count(b'class="row row-message') == 300
    assert len(large) == len(small)
    assert len(large) <= 12, large


# --- the agent command ----------------------------------------------------------------------


def test_agent_add_takes_a_password_file_and_keeps_only_an_argon2id_hash(
    app: Flask, runner: FlaskCliRunner, shopify_shop: Shop, standard_shop: Shop, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")

    result = runner.invoke(
        args=["notifier", "agent", "add", "Mia@Support.example", "--shop", "lumen",
              "--shop", "atelier", "--password-file", str(secret)]
    )  # fmt: skip
    listed = runner.invoke(args=["notifier", "agent", "list"])

    assert result.exit_code == 0, result.output
    assert "added agent mia@support.example (sees atelier, lumen)" in result.output
    assert PASSWORD not in result.output
    with services(app).sessions() as session:
        agent = session.scalar(select(Agent).where(Agent.email == LUMEN_AGENT))
        assert agent is not None
        assert agent.password_hash.startswith("$argon2id$")
        assert PASSWORD not in agent.password_hash
        assert not agent.all_shops
    assert "mia@support.example\tatelier, lumen" in listed.output


def test_agent_add_asks_twice_and_without_shops_makes_an_administrator(
    app: Flask, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(
        args=["notifier", "agent", "add", ADMIN], input=f"{PASSWORD}\n{PASSWORD}\n"
    )

    assert result.exit_code == 0, result.output
    assert "Password: " in result.output
    assert "Repeat for confirmation: " in result.output
    assert "sees every shop" in result.output
    with services(app).sessions() as session:
        assert session.scalar(select(Agent.all_shops).where(Agent.email == ADMIN)) is True


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-1", "too short"),
        ("aaaaaaaaaaaaaaaa", "too few characters"),
        ("Password12345!", "commonly guessed"),
        ("admin-support-2026", "commonly guessed"),
        ("mia-is-the-best-agent", "contains the email address"),
    ],
)
def test_agent_add_refuses_weak_passwords_with_a_reason(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, password: str, reason: str
) -> None:
    secret = tmp_path / "password"
    secret.write_text(password)

    result = runner.invoke(
        args=["notifier", "agent", "add", LUMEN_AGENT, "--password-file", str(secret)]
    )

    assert result.exit_code != 0
    assert reason in result.output
    with services(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Agent)) == 0


def test_agent_add_refuses_unknown_shops_and_a_second_agent_of_the_same_email(
    app: Flask, runner: FlaskCliRunner, shopify_shop: Shop, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    args = ["notifier", "agent", "add", LUMEN_AGENT, "--password-file", str(secret)]

    unknown = runner.invoke(args=[*args, "--shop", "nowhere"])
    first = runner.invoke(args=[*args, "--shop", "lumen"])
    again = runner.invoke(args=args)

    assert unknown.exit_code != 0
    assert "no shop named nowhere" in unknown.output
    assert first.exit_code == 0
    assert again.exit_code != 0
    assert "exists already" in again.output
