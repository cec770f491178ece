"""notifier.mime: RFC 5322 bytes from a rendered email, and refusal of anything that could smuggle
in a header. Pure: no database, no app."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier import mime
from notifier.rendering import RenderedEmail

RENDERED = RenderedEmail(
    subject="Order #1001 confirmed – thank you!",
    text="Hello Anna,\n\nTotal: €1,234.56\n",
    html='<html lang="en"><body><p>Hello Anna,</p><p>Total: €1,234.56</p></body></html>',
)
ENVELOPE = mime.Envelope(
    sender="Lumen & Co. <orders@lumen.example>",
    recipient="anna@example.org",
    recipient_name="Anna Schmidt",
    reply_to="help@lumen.example",
    message_id="<order_confirmation.3f2a@lumen.example>",
    date=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
)
TOP_LEVEL_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "x-notifier-message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
}
INJECTIONS = [
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\u2028",
    "=?utf-8?q?=0A?=Bcc: x@evil.example",
]


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header_names(parsed: EmailMessage) -> list[str]:
    return sorted(name.lower() for name in parsed)  # repeated headers are kept


def build(rendered: RenderedEmail = RENDERED, **changes: Any) -> bytes:
    return mime.build(rendered, replace(ENVELOPE, **changes))


# --- what a good message looks like ------------------------------------------------------


def test_the_message_has_exactly_the_expected_headers() -> None:
    parsed = parse(build())

    assert header_names(parsed) == sorted(TOP_LEVEL_HEADERS)
    assert str(parsed["From"]) == '"Lumen & Co." <orders@lumen.example>'
    assert parsed["To"].addresses[0].addr_spec == "anna@example.org"
    assert parsed["To"].addresses[0].display_name == "Anna Schmidt"
    assert len(parsed["To"].addresses) == 1
    assert parsed["Reply-To"].addresses[0].addr_spec == "help@lumen.example"
    assert parsed["Subject"] == RENDERED.subject
    assert parsed["Date"].datetime == ENVELOPE.date
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["MIME-Version"] == "1.0"


def test_without_reply_to_there_is_no_reply_to_header() -> None:
    parsed = parse(build(reply_to=None))

    assert header_names(parsed) == sorted(TOP_LEVEL_HEADERS - {"reply-to"})


def test_lines_end_in_crlf() -> None:
    raw = build()

    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_the_body_is_multipart_alternative_with_text_then_html() -> None:
    parsed = parse(build())

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    # Quoted-printable over SMTP line endings: the text comes back with CRLF.
    assert parts[0].get_content().replace("\r\n", "\n") == RENDERED.text
    assert parts[1].get_content().replace("\r\n", "\n").rstrip("\n") == RENDERED.html
    assert all(part["Content-Transfer-Encoding"] == "quoted-printable" for part in parts)


def test_the_message_id_is_the_one_given() -> None:
    parsed = parse(build(message_id="<welcome.0b1c@atelier.example>"))

    assert parsed["Message-ID"] == "<welcome.0b1c@atelier.example>"
    assert parsed["X-Notifier-Message-Id"] == "<welcome.0b1c@atelier.example>"


def test_non_ascii_subject_and_display_name_survive_a_round_trip() -> None:
    rendered = replace(RENDERED, subject="Bestellung #1001 bestätigt – vielen Dank! 注文 ✓")
    raw = mime.build(
        rendered,
        replace(ENVELOPE, sender="Åsa Ström <orders@lumen.example>", recipient_name="Zoë Ørsted"),
    )

    assert raw.isascii()  # encoded words, not raw UTF-8, in the headers
    parsed = parse(raw)
    assert parsed["Subject"] == "Bestellung #1001 bestätigt – vielen Dank! 注文 ✓"
    assert parsed["To"].addresses[0].display_name == "Zoë Ørsted"
    assert parsed["From"].addresses[0].display_name == "Åsa Ström"


def test_a_long_subject_is_folded_and_unfolds_to_the_same_text() -> None:
    subject = "Your order " + " ".join(f"item-{n}" for n in range(40))
    parsed = parse(mime.build(replace(RENDERED, subject=subject), ENVELOPE))

    assert parsed["Subject"] == subject


def test_no_display_name_gives_a_bare_address() -> None:
    parsed = parse(build(recipient_name=None))

    [address] = parsed["To"].addresses
    assert (address.display_name, address.addr_spec) == ("", "anna@example.org")


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", INJECTIONS)
def test_an_injection_in_the_subject_is_refused(bad: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        mime.build(replace(RENDERED, subject=f"Order confirmed{bad}Bcc: x@evil.example"), ENVELOPE)


@pytest.mark.parametrize("bad", INJECTIONS)
def test_an_injection_in_the_recipient_name_is_refused(bad: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        build(recipient_name=f"Anna{bad}Bcc: x@evil.example")


@pytest.mark.parametrize("bad", INJECTIONS)
def test_an_injection_in_the_address_is_refused(bad: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        build(recipient=f"anna@example.org{bad}Bcc: x@evil.example")


@pytest.mark.parametrize("bad", INJECTIONS)
def test_an_injection_in_the_message_id_is_refused(bad: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        build(message_id=f"<a.b@lumen.example>{bad}Bcc: x@evil.example")


@pytest.mark.parametrize("bad", ["\u2028", "\x85", "=?utf-8?q?=0A?="])
def test_an_injection_in_the_sender_name_is_refused(bad: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        build(sender=f"Lumen{bad}Nord <orders@lumen.example>")


@pytest.mark.parametrize("bad", ["\n", "\u2028", "=?utf-8?q?=0A?="])
def test_a_sender_with_a_smuggled_address_is_refused(bad: str) -> None:
    try:
        raw = build(sender=f"Lumen{bad}Bcc: x@evil.example <orders@lumen.example>")
    except mime.HeaderRefused:
        return
    sent_from = parse(raw)["From"].addresses[0].addr_spec
    pytest.fail(f"not refused; the message was built From: {sent_from}")


@pytest.mark.parametrize(
    "address",
    ["", "anna", "not an address", "anna@", "a b@example.org", "anna@example.org, x@evil.example"],
)
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        build(recipient=address)


@pytest.mark.parametrize("address", ["@", "@example.org", "a@b@example.org", "<anna@example.org>"])
def test_an_address_the_parser_rejects_is_refused_too(address: str) -> None:
    with pytest.raises(mime.HeaderRefused):
        build(recipient=address)


# --- the property: refused, or exactly the expected headers -------------------------------


@settings(max_examples=200, deadline=None)
@given(name=st.text(), subject=st.text())
def test_any_name_and_subject_is_refused_or_adds_no_header(name: str, subject: str) -> None:
    try:
        raw = mime.build(replace(RENDERED, subject=subject), replace(ENVELOPE, recipient_name=name))
    except mime.HeaderRefused:
        return

    parsed = parse(raw)
    assert header_names(parsed) == sorted(TOP_LEVEL_HEADERS)
    assert "Bcc" not in parsed
    assert "Cc" not in parsed
    [address] = parsed["To"].addresses
    assert address.addr_spec == "anna@example.org"
    assert [part.get_content_type() for part in parsed.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet=st.characters(codec="utf-8"), min_size=1).map(
        lambda text: f"Anna {text}"
    ),
    injected=st.sampled_from(INJECTIONS),
)
def test_an_injection_anywhere_in_the_name_is_refused(name: str, injected: str) -> None:
    middle = len(name) // 2
    with pytest.raises(mime.HeaderRefused):
        build(recipient_name=name[:middle] + injected + "Bcc: x@evil.example" + name[middle:])


def test_the_refused_characters_are_exactly_unicodes_controls_separators_and_bidi_overrides() -> (
    None
):
    import sys
    import unicodedata

    from notifier.mime import BIDI_CONTROLS, REFUSED_IN_HEADERS

    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        expected = unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS
        assert bool(REFUSED_IN_HEADERS.match(ch)) is expected, f"U+{code:04X}"
