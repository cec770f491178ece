"""The dispatcher against a real SMTP server (aiosmtpd): delivery, retries, failures, takeovers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier import outbox
from notifier.clock import FakeClock
from notifier.dispatcher import Dispatcher
from notifier.models import Delivery, DeliveryOutcome, Message, MessageState
from notifier.recording import RetryPolicy
from notifier.sending import SendingFailed, SendingProcess
from notifier.transports.memory import MemoryTransport
from notifier.transports.smtp import SMTPTransport

from .conftest import post_shopify, services, shopify_order

pytestmark = pytest.mark.usefixtures("shopify_shop")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    """An SMTP server's mailbox that can be told to answer the next DATA commands differently."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.data_replies: list[str] = []
        self.greetings = 0  # EHLOs: one per connection
        self.on_data: Callable[[], None] | None = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.on_data is not None:
            self.on_data()
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued as 7F3A2"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def post_orders(client: FlaskClient, count: int, *, first: int) -> None:
    """`count` new orders, numbered from `first`, each with its confirmation due at once."""
    for number in range(first, first + count):
        post_shopify(client, shopify_order(id=number, name=f"#{number}"))


def smtp_transport(port: int) -> SMTPTransport:
    return SMTPTransport.from_url(f"smtp://127.0.0.1:{port}?starttls=off", timeout=5)


def dispatcher(app: Flask, transport: Any, **options: Any) -> Dispatcher:
    svc = services(app)
    options.setdefault("worker", "w1")
    options.setdefault("links", svc.links)
    return Dispatcher(svc.sessions, transport, svc.renderer, svc.clock, **options)


def only_message(app: Flask) -> Message:
    with services(app).sessions() as session:
        return session.scalars(select(Message)).one()


def deliveries(app: Flask) -> list[Delivery]:
    with services(app).sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_smtp_receives_exactly_the_recorded_bytes(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_shopify(client, shopify_order())
    transport = smtp_transport(port)

    outcome = dispatcher(app, transport).run_once()
    transport.close()

    assert outcome.sent == 1
    [envelope] = sink.received
    [record] = deliveries(app)
    assert envelope.rcpt_tos == ["anna.schmidt@example.org"]
    assert envelope.mail_from == "orders@lumen.example"
    assert envelope.original_content.replace(b"\r\n", b"\n") == record.raw.replace(b"\r\n", b"\n")
    assert record.outcome is DeliveryOutcome.ACCEPTED
    assert record.response == "250 2.0.0 Ok: queued as 7F3A2"
    message = only_message(app)
    assert message.state is MessageState.SENT
    parsed = message_from_bytes(envelope.original_content, policy=policy.default)
    assert parsed["Message-ID"].strip() == message.rfc_message_id


def test_one_connection_carries_many_messages(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_orders(client, 5, first=1000)
    dispatcher(app, smtp_transport(port)).run_once()

    assert len(sink.received) == 5
    assert sink.greetings == 1


def test_the_next_message_is_rendered_while_one_is_on_the_wire(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_orders(client, 4, first=1100)
    svc = services(app)
    second_rendered = threading.Event()
    renders = 0
    render = svc.renderer.render

    def counting_render(*args: Any, **kwargs: Any) -> Any:
        nonlocal renders
        renders += 1
        if renders == 2:
            second_rendered.set()
        return render(*args, **kwargs)

    waited: list[bool] = []

    def hold_the_first_message() -> None:  # the server takes its time over the first DATA
        if not waited:
            waited.append(second_rendered.wait(timeout=10))

    sink.on_data = hold_the_first_message
    svc.renderer.render = counting_render  # type: ignore[method-assign]
    outcome = dispatcher(app, smtp_transport(port)).run_once()

    # While the server held the first message, the dispatcher rendered the second.
    assert waited == [True]
    assert outcome.sent == 4
    assert len(sink.received) == 4
    with svc.sessions() as session:
        assert set(session.scalars(select(Message.state))) == {MessageState.SENT}
        assert session.scalar(select(func.count()).select_from(Delivery)) == 4


def test_a_sending_process_that_dies_leaves_its_messages_to_be_sent_again(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_shopify(client, shopify_order())
    worker = dispatcher(app, smtp_transport(port))

    def kill_the_sending_process() -> None:
        assert isinstance(worker._line, SendingProcess)
        worker._line._process.kill()
        worker._line._process.wait()

    sink.on_data = kill_the_sending_process
    with pytest.raises(SendingFailed, match="the sending process ended"):
        worker.run_once()
    # Nothing recorded: the worker cannot know whether the server kept the message.
    assert only_message(app).state is MessageState.SENDING
    assert deliveries(app) == []

    sink.on_data = None
    services(app).clock.advance(timedelta(minutes=3))  # the lease runs out
    outcome = dispatcher(app, smtp_transport(port), worker="w2").run_once()
    assert outcome.sent == 1
    [record] = deliveries(app)
    assert record.possible_resend is True


def test_a_bug_in_the_sending_process_ends_the_round_with_its_error(
    app: Flask, client: FlaskClient
) -> None:
    from .apart_transport import BuggyApartTransport

    post_shopify(client, shopify_order())
    worker = dispatcher(app, BuggyApartTransport())

    with pytest.raises(SendingFailed, match=r"KeyError: .*no route for <"):
        worker.run_once()
    assert worker._line is None  # closed; the next round starts a fresh sending process
    assert only_message(app).state is MessageState.SENDING
    assert deliveries(app) == []


def test_a_transport_that_breaks_unexpectedly_ends_the_round_with_its_error(
    app: Flask, client: FlaskClient
) -> None:
    post_shopify(client, shopify_order())

    class Broken:
        name = "broken"

        def send(self, mail: Any) -> Any:
            raise RuntimeError("the transport's own bug")

        def close(self) -> None:
            pass

    with pytest.raises(RuntimeError, match="the transport's own bug"):
        dispatcher(app, Broken()).run_once()
    # Unrecorded, as if the worker had died mid-send: the lease runs out and it is sent again.
    assert only_message(app).state is MessageState.SENDING
    assert deliveries(app) == []


def test_a_4xx_is_retried_with_backoff_under_the_same_message_id(
    app: Flask, client: FlaskClient, clock: FakeClock, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    sink.data_replies = ["451 4.3.0 Mailbox busy, try later"]
    post_shopify(client, shopify_order())
    transport = smtp_transport(port)
    send = dispatcher(app, transport)

    first = send.run_once()
    waiting = only_message(app)
    second = send.run_once()  # not due again yet
    clock.set(waiting.next_attempt_at)
    third = send.run_once()
    transport.close()

    assert (first.retried, second.handled, third.sent) == (1, 0, 1)
    assert waiting.state is MessageState.RETRY
    assert waiting.last_error == "attempt 1: 451 4.3.0 Mailbox busy, try later"
    delay = waiting.next_attempt_at - waiting.updated_at
    assert timedelta(seconds=45) <= delay <= timedelta(seconds=75)
    records = deliveries(app)
    assert [r.outcome for r in records] == [
        DeliveryOutcome.TRANSIENT_FAILURE,
        DeliveryOutcome.ACCEPTED,
    ]
    assert records[0].rfc_message_id == records[1].rfc_message_id
    assert only_message(app).attempts == 2
    assert len(sink.received) == 1


def test_a_5xx_fails_at_once_and_stays_visible(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    _, port = smtp_server
    post_shopify(client, shopify_order(email="nobody@example.org"))
    transport = smtp_transport(port)

    outcome = dispatcher(app, transport).run_once()
    transport.close()

    assert outcome.failed == 1
    message = only_message(app)
    assert message.state is MessageState.FAILED
    assert message.last_error is not None
    assert message.last_error.startswith("attempt 1: 550 5.1.1")
    [record] = deliveries(app)
    assert record.outcome is DeliveryOutcome.PERMANENT_FAILURE


def test_a_server_that_is_down_is_retried_then_fails_visibly(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    post_shopify(client, shopify_order())
    transport = smtp_transport(free_port())  # nothing listens there
    send = dispatcher(app, transport, retry=RetryPolicy(max_attempts=3))

    rounds = []
    for _ in range(3):
        rounds.append(send.run_once())
        clock.advance(timedelta(hours=7))

    assert [r.retried for r in rounds] == [1, 1, 0]
    assert rounds[-1].failed == 1
    message = only_message(app)
    assert message.state is MessageState.FAILED
    assert "ConnectionRefusedError" in (message.last_error or "")
    assert message.attempts == 3


def test_require_starttls_refuses_a_server_without_it(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_shopify(client, shopify_order())
    transport = SMTPTransport.from_url(f"smtp://127.0.0.1:{port}?starttls=require", timeout=5)

    dispatcher(app, transport).run_once()

    assert sink.received == []
    assert only_message(app).last_error == "attempt 1: 127.0.0.1 does not offer STARTTLS"


def test_nothing_leaves_before_it_is_due(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    later = clock.now() + timedelta(hours=1)
    with services(app).sessions.begin() as session:
        session.execute(sa.update(Message).values(due_at=later, next_attempt_at=later))

    before = dispatch()
    clock.set(later - timedelta(seconds=1))
    still_before = dispatch()
    clock.set(later)
    at_due = dispatch()

    assert (before.handled, still_before.handled, at_due.sent) == (0, 0, 1)
    assert len(mailbox.sent) == 1


def test_a_dead_workers_lease_expires_and_the_resend_is_marked(
    app: Flask, client: FlaskClient, clock: FakeClock, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    lease = timedelta(minutes=2)
    with services(app).sessions.begin() as session:  # a worker claims, then dies
        [claim] = outbox.claim_due(session, worker="dead", now=clock.now(), lease=lease, limit=10)
    survivor = dispatcher(app, mailbox, worker="alive", lease=lease)

    during_lease = survivor.run_once()
    clock.advance(lease)
    after_lease = survivor.run_once()

    assert claim.attempt == 1
    assert (during_lease.handled, after_lease.sent) == (0, 1)
    [record] = deliveries(app)
    assert record.possible_resend is True
    assert record.attempt == 2
    message = only_message(app)
    assert record.rfc_message_id == message.rfc_message_id
    assert message.state is MessageState.SENT


def test_a_header_injection_attempt_fails_the_message_visibly(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    order = shopify_order()
    order["customer"]["first_name"] = "Anna\r\nBcc: everyone@evil.example"
    post_shopify(client, order)

    outcome = dispatch()

    assert outcome.failed == 1
    assert mailbox.sent == []
    message = only_message(app)
    assert message.state is MessageState.FAILED
    assert "To contains control or encoded-word characters" in (message.last_error or "")


def test_deliveries_refuse_update_and_delete(
    app: Flask, client: FlaskClient, dispatch: Callable
) -> None:
    post_shopify(client, shopify_order())
    dispatch()

    for statement in (sa.update(Delivery).values(response="edited"), sa.delete(Delivery)):
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            services(app).sessions.begin() as session,
        ):
            session.execute(statement)
    assert deliveries(app)[0].response.startswith("kept in memory")


def test_concurrent_workers_never_send_the_same_message(app: Flask, client: FlaskClient) -> None:
    post_orders(client, 40, first=2000)
    boxes = [MemoryTransport(), MemoryTransport()]
    workers = [
        dispatcher(app, box, worker=f"w{index}", batch_size=3) for index, box in enumerate(boxes)
    ]
    start = threading.Barrier(2)

    def work(worker: Dispatcher) -> None:
        start.wait()
        worker.run_once()

    threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    sent = [mail.message_id for box in boxes for mail in box.sent]
    assert len(sent) == 40
    assert len(set(sent)) == 40


def test_smtp_auth_with_credentials_from_the_url(app: Flask, client: FlaskClient) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss word")

    sink, port = Sink(), free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        post_shopify(client, shopify_order())
        good = SMTPTransport.from_url(
            f"smtp://relay%40lumen:p%40ss%20word@127.0.0.1:{port}?starttls=off", timeout=5
        )
        outcome = dispatcher(app, good).run_once()
        good.close()
    finally:
        controller.stop()

    assert outcome.sent == 1
    assert logins == [(b"relay@lumen", b"p@ss word")]
    assert len(sink.received) == 1


def test_wrong_smtp_credentials_are_retried_not_dropped(app: Flask, client: FlaskClient) -> None:
    from aiosmtpd.smtp import AuthResult

    sink, port = Sink(), free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],  # one mechanism, so the refusal is not retried in-line
    )
    controller.start()
    try:
        post_shopify(client, shopify_order())
        bad = SMTPTransport.from_url(f"smtp://u:wrong@127.0.0.1:{port}?starttls=off", timeout=5)
        outcome = dispatcher(app, bad).run_once()
        bad.close()
    finally:
        controller.stop()

    assert outcome.retried == 1
    message = only_message(app)
    assert message.state is MessageState.RETRY
    assert (message.last_error or "").startswith("attempt 1: 535")


def test_an_international_domain_goes_out_in_its_idna_form(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_shopify(client, shopify_order(email="jonas@müller.example"))
    transport = smtp_transport(port)

    outcome = dispatcher(app, transport).run_once()
    transport.close()

    assert outcome.sent == 1
    assert sink.received[0].rcpt_tos == ["jonas@xn--mller-kva.example"]


def test_a_non_ascii_local_part_fails_alone_and_the_connection_carries_on(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_shopify(client, shopify_order(id=1, name="#1", email="jürgen@example.org"))
    post_shopify(client, shopify_order(id=2, name="#2", email="anna@example.org"))
    transport = smtp_transport(port)

    outcome = dispatcher(app, transport).run_once()
    transport.close()

    assert (outcome.sent, outcome.failed) == (1, 1)
    assert [envelope.rcpt_tos for envelope in sink.received] == [["anna@example.org"]]
    with services(app).sessions() as session:
        failed = session.scalars(select(Message).where(Message.state == MessageState.FAILED)).one()
    assert "non-ASCII local part" in (failed.last_error or "")


def test_a_server_refusing_at_greeting_is_retried_not_failed(
    app: Flask, client: FlaskClient
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def greet_and_hang_up() -> None:
        connection, _ = listener.accept()
        connection.sendall(b"554 5.3.2 Too busy, try again later\r\n")
        connection.close()

    server = threading.Thread(target=greet_and_hang_up)
    server.start()
    post_shopify(client, shopify_order())
    transport = smtp_transport(listener.getsockname()[1])

    outcome = dispatcher(app, transport).run_once()
    server.join(timeout=10)
    listener.close()

    assert outcome.retried == 1
    assert (only_message(app).last_error or "").startswith("attempt 1: 554 5.3.2 Too busy")


def test_credentials_are_not_sent_where_starttls_is_missing(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    post_shopify(client, shopify_order())
    transport = SMTPTransport.from_url(f"smtp://user:secret@127.0.0.1:{port}", timeout=5)

    outcome = dispatcher(app, transport).run_once()

    assert outcome.retried == 1
    assert "not sending the password in the clear" in (only_message(app).last_error or "")
    assert sink.received == []


def test_backoff_stays_bounded_for_any_attempt() -> None:
    policy = RetryPolicy()

    delays = [policy.delay("m", attempt) for attempt in (1, 2, 10, 100, 10_000)]

    assert timedelta(seconds=45) <= delays[0] <= timedelta(seconds=75)
    assert all(delay <= policy.max_delay * 1.25 for delay in delays)
    assert delays[-1] >= policy.max_delay * 0.75


def test_the_file_outbox_keeps_a_resend_beside_the_first_copy(tmp_path: Any) -> None:
    from notifier.transports import Outgoing
    from notifier.transports.files import FileTransport

    transport = FileTransport(tmp_path / "outbox")
    mail = Outgoing("a@example.org", ("b@example.org",), b"Subject: x\r\n\r\nbody\r\n", "<m1@x>")

    transport.send(mail)
    transport.send(mail)

    names = sorted(path.name for path in (tmp_path / "outbox").iterdir())
    assert names == ["m1_x.2.eml", "m1_x.eml"]


def test_the_sending_process_loads_the_transports_and_not_the_application() -> None:
    import subprocess
    import sys

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, notifier.sending, notifier.transports.smtp; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'flask', 'sqlalchemy', 'jinja2', 'babel', 'pydantic', 'requests'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"


def test_a_worker_never_claims_again_what_it_is_still_sending(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    post_orders(client, 1, first=3000)
    lease = timedelta(minutes=2)
    sessions = services(app).sessions
    with sessions.begin() as session:
        [claim] = outbox.claim_due(session, worker="w1", now=clock.now(), lease=lease, limit=10)
    clock.advance(lease * 2)  # a slow server: the lease ran out while the message was on the wire

    with sessions.begin() as session:
        mine = outbox.claim_due(
            session,
            worker="w1",
            now=clock.now(),
            lease=lease,
            limit=10,
            sending=[claim.message_id],
        )
    with sessions.begin() as session:
        theirs = outbox.claim_due(session, worker="w2", now=clock.now(), lease=lease, limit=10)

    assert mine == []
    assert [other.message_id for other in theirs] == [claim.message_id]  # a takeover still works


def test_what_is_still_on_the_wire_is_never_claimed_again_by_its_own_worker(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    smtp_server: tuple[Sink, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, port = smtp_server
    post_orders(client, 2, first=3100)
    claimed_again = threading.Event()

    def hold_the_first_message() -> None:  # until the worker has claimed its next batch
        if not sink.received:
            claimed_again.wait(timeout=10)

    real_claim = outbox.claim_due
    claims = 0

    def claim_due(session: Any, **options: Any) -> Any:
        nonlocal claims
        claims += 1
        if claims == 2:  # the first message's lease runs out while the server holds it
            clock.advance(timedelta(minutes=3))
        try:
            return real_claim(session, **options)
        finally:
            if claims == 2:
                claimed_again.set()

    sink.on_data = hold_the_first_message
    monkeypatch.setattr(outbox, "claim_due", claim_due)
    outcome = dispatcher(app, smtp_transport(port), batch_size=1).run_once()

    received = [message_from_bytes(mail.original_content)["Message-ID"] for mail in sink.received]
    assert len(received) == len(set(received)) == 2
    assert outcome.sent == 2
    assert len(deliveries(app)) == 2


def test_a_failed_claim_still_records_what_reached_the_server(
    app: Flask, client: FlaskClient, smtp_server: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, port = smtp_server
    post_orders(client, 3, first=3200)
    real_claim = outbox.claim_due
    claims = 0

    def claim_due(session: Any, **options: Any) -> Any:
        nonlocal claims
        claims += 1
        if claims == 2:  # the database goes away while the first batch is on the wire
            raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real_claim(session, **options)

    monkeypatch.setattr(outbox, "claim_due", claim_due)
    with pytest.raises(sa.exc.OperationalError):
        dispatcher(app, smtp_transport(port), batch_size=2).run_once()

    assert len(sink.received) == 2
    assert len(deliveries(app)) == 2  # every hand-over that reached the server is recorded
    with services(app).sessions() as session:
        states = sorted(state.value for state in session.scalars(select(Message.state)))
    assert states == ["scheduled", "sent", "sent"]
