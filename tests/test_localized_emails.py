"""What each buyer reads: snapshots of every kind in every locale, and the formats that matter."""

from __future__ import annotations

import copy
import os
import re
from decimal import Decimal
from gettext import c2py
from html import unescape
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from babel.numbers import format_currency

from notifier.kinds import KINDS
from notifier.mime import BIDI_CONTROLS
from notifier.rendering import LRI, PDI, Formats, Renderer, available_locales
from notifier.samples import SAMPLES

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).parent / "snapshots" / "email"
UPDATE = os.environ.get("NOTIFIER_UPDATE_SNAPSHOTS") == "1"
RENDERER = Renderer(ROOT / "templates", ROOT / "translations")
LOCALES = sorted(available_locales(ROOT / "translations"))
SIXTEEN = {
    "en", "de", "fr", "es", "it", "nl", "pl", "sv", "tr",
    "pt_BR", "ja", "ko", "zh_Hans", "zh_Hant", "ar", "he",
}  # fmt: skip


def snapshot_text(kind: str, locale: str) -> str:
    rendered = RENDERER.render(kind, SAMPLES[kind], locale, "Europe/Berlin")
    return f"Subject: {rendered.subject}\n\n{rendered.text}"


def test_all_sixteen_buyer_locales_are_shipped() -> None:
    assert set(LOCALES) == SIXTEEN


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_snapshot(kind: str, locale: str) -> None:
    """The exact words a buyer gets; NOTIFIER_UPDATE_SNAPSHOTS=1 rewrites them for review."""
    path = SNAPSHOTS / kind / f"{locale}.txt"
    text = snapshot_text(kind, locale)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: run the tests with NOTIFIER_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


def english_fragments() -> set[str]:
    """Every run of English words in the catalog template, placeholders cut out."""
    with (ROOT / "translations" / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    fragments = set()
    for message in template:
        for msgid in message.id if isinstance(message.id, tuple) else (message.id,):
            for piece in re.split(r"%\(\w+\)s", msgid or ""):
                if len(piece.strip(" .,:!?()")) >= 12:
                    fragments.add(piece.strip(" .,:!?()"))
    return fragments


@pytest.mark.parametrize("locale", sorted(set(LOCALES) - {"en"}))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_english_is_left_in_a_translated_email(kind: str, locale: str) -> None:
    rendered = RENDERER.render(kind, SAMPLES[kind], locale, "Europe/Berlin")
    words = f"{rendered.subject}\n{rendered.text}\n{unescape(rendered.html)}"

    assert [fragment for fragment in english_fragments() if fragment in words] == []


def sample_in(currency: str, total: str) -> dict:
    context = copy.deepcopy(SAMPLES["order_confirmation"])
    context["order"].update(
        currency=currency, total=total, subtotal=total, discount=None, shipping=None, tax=None
    )
    for item in context["order"]["line_items"]:
        item["line_total"] = total
    return context


def test_an_arabic_email_reads_right_to_left_with_its_riyal_amount() -> None:
    rendered = RENDERER.render(
        "order_confirmation", sample_in("SAR", "1234.5"), "ar", "Asia/Riyadh"
    )
    total = format_currency(Decimal("1234.5"), "SAR", locale="ar")

    assert '<html lang="ar" dir="rtl">' in rendered.html
    assert total in rendered.text
    assert total in unescape(rendered.html)
    assert "text-align: left" in rendered.html  # amounts sit at the end of an RTL line
    # Latin codes and addresses keep their own direction inside Arabic sentences.
    assert f"{LRI}#1001{PDI}" in rendered.text
    assert f"{LRI}help@lumen.example{PDI}" in rendered.text
    assert '<bdi dir="ltr">#1001</bdi>' in rendered.html
    assert '<bdi dir="auto">Brass desk lamp</bdi>' in rendered.html


def test_a_japanese_total_has_no_decimals() -> None:
    rendered = RENDERER.render("order_confirmation", sample_in("JPY", "12345"), "ja", "Asia/Tokyo")

    assert format_currency(Decimal("12345"), "JPY", locale="ja") == "￥12,345"
    assert "￥12,345" in rendered.text
    assert "12,345.00" not in rendered.text


def test_a_kuwaiti_amount_keeps_three_decimals() -> None:
    rendered = RENDERER.render("order_confirmation", sample_in("KWD", "12.5"), "en", "Asia/Kuwait")

    total = format_currency(Decimal("12.5"), "KWD", locale="en")
    assert total.endswith("12.500")
    assert total in rendered.text


def test_traditional_and_simplified_chinese_differ() -> None:
    traditional = RENDERER.render(
        "order_confirmation", SAMPLES["order_confirmation"], "zh_Hant", "Asia/Taipei"
    )
    simplified = RENDERER.render(
        "order_confirmation", SAMPLES["order_confirmation"], "zh_Hans", "Asia/Shanghai"
    )

    assert "訂單" in traditional.subject + traditional.text
    assert "订单" in simplified.subject + simplified.text
    assert "订单" not in traditional.text
    assert "訂單" not in simplified.text


@pytest.mark.parametrize(
    ("locale", "counts"),
    [("pl", (1, 2, 5, 22, 25, 112)), ("ar", (0, 1, 2, 3, 11, 100)), ("ja", (1, 2))],
)
def test_every_plural_form_is_written_and_reached(locale: str, counts: tuple[int, ...]) -> None:
    """Each count shows the form the language's rule picks for it, and all forms get used."""
    with (ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    [message] = [m for m in catalog if isinstance(m.id, tuple) and m.id[0].startswith("Your order")]
    rule = c2py(catalog.plural_expr)
    formats = Formats(locale, "UTC")

    assert {rule(count) for count in counts} == set(range(catalog.num_plurals))
    for count in counts:
        context = copy.deepcopy(SAMPLES["order_confirmation"])
        context["order"]["item_count"] = count
        text = RENDERER.render("order_confirmation", context, locale, "UTC").text
        assert message.string[rule(count)] % {"n": formats.number(count)} in text


# --- shipping news: every email must read well with whatever the carrier did or did not say ---

SHIPMENT_KINDS = sorted(kind for kind in KINDS if "shipment" in SAMPLES[kind])
EXCEPTIONS = (
    "lost", "damaged", "returned_to_sender", "refused", "address_issue", "customs_held", "other",
)  # fmt: skip


def bare(kind: str) -> dict:
    """The sample as news may really come: no name, tracking, dates, places or order page."""
    context = copy.deepcopy(SAMPLES[kind])
    context["buyer"]["name"] = None
    context["order"]["status_url"] = None
    context["shipping_address"] = None
    if "shipment" in context:
        context["shipment"].update(
            carrier=None, tracking_number=None, tracking_url=None, expected=None
        )
        for step in [*context["shipment"]["journey"], context["news"]]:
            step.update(location=None, country_code=None)
        for key in ("exception", "note", "days"):
            context["news"].pop(key, None)
    return context


def several(kind: str) -> dict:
    context = copy.deepcopy(SAMPLES[kind])
    context["shipment"]["parcel_count"] = 2
    return context


def in_german(kind: str, context: dict) -> str:
    rendered = RENDERER.render(kind, context, "de", "Europe/Berlin")
    return f"{rendered.subject}\n{rendered.text}"


def in_english(kind: str, context: dict) -> str:
    rendered = RENDERER.render(kind, context, "en", "Europe/Berlin")
    return f"{rendered.subject}\n{rendered.text}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_email_without_the_optional_facts_has_no_holes(kind: str, locale: str) -> None:
    rendered = RENDERER.render(kind, bare(kind), locale, "Europe/Berlin")
    lines = rendered.text.splitlines()

    for words in (rendered.subject, rendered.text, rendered.html):
        assert "None" not in words
        assert "()" not in words
    for line, following in zip(lines[1:], [*lines[2:], ""], strict=True):  # after the greeting
        assert not re.search(r"[:：]\s+$", line), f"empty label {line!r} in {kind}/{locale}"
        if line.endswith((":", "：")):  # a heading, so a list must follow it
            assert following.startswith("- "), f"empty heading {line!r} in {kind}/{locale}"
    assert "<strong></strong>" not in rendered.html
    assert 'href=""' not in rendered.html


@pytest.mark.parametrize("kind", SHIPMENT_KINDS)
def test_a_bare_email_still_says_where_the_parcel_is(kind: str) -> None:
    english = in_english(kind, bare(kind))

    assert "#1001" in english.splitlines()[0]
    for label in ("Carrier:", "Tracking number:", "Track your parcel", "Expected delivery"):
        assert label not in english
    if kind != "delivered" and len(SAMPLES[kind]["shipment"]["journey"]) > 1:
        assert "Your parcel's journey so far:" in english


@pytest.mark.parametrize("kind", [*SHIPMENT_KINDS, "order_cancelled"])
def test_every_subject_names_the_order(kind: str) -> None:
    for locale in LOCALES:
        rendered = RENDERER.render(kind, SAMPLES[kind], locale, "Europe/Berlin")
        assert "1001" in rendered.subject, locale


@pytest.mark.parametrize("kind", SHIPMENT_KINDS)
def test_one_parcel_of_several_is_called_part_of_the_order(kind: str) -> None:
    one, two = in_english(kind, SAMPLES[kind]), in_english(kind, several(kind))

    assert "one parcel of your order" not in one.lower()
    assert "one parcel of your order #1001" in two.lower()
    if kind not in ("delivery_failed", "shipment_exception"):  # their subjects fit both
        assert two.startswith("Part of your order #1001") or "part of your order #1001" in two
        assert "Ein Teil Ihrer Bestellung #1001" in in_german(kind, several(kind)).splitlines()[0]


def test_the_journey_names_each_milestone_and_country_in_the_reader_s_language() -> None:
    text = in_german("ready_for_pickup", SAMPLES["ready_for_pickup"])
    journey = text.split("Bisheriger Sendungsverlauf:\n")[1].split("\n\n")[0].splitlines()

    assert journey == [
        "- 24.11.2026: Versandt (Shenzhen)",
        "- 25.11.2026: Versandland China verlassen (Shenzhen)",
        "- 28.11.2026: Im Zielland Deutschland angekommen (Leipzig)",
        "- 01.12.2026: In Zustellung (Berlin)",
        "- 01.12.2026: Zustellversuch erfolglos (Berlin)",
        "- 01.12.2026: Zur Abholung bereit (DHL Packstation 105, Linienstraße 40, 10119 Berlin)",
    ]


def test_a_journey_of_the_news_alone_is_not_repeated_as_a_list() -> None:
    assert "journey so far" not in in_english("shipment_shipped", SAMPLES["shipment_shipped"])


def test_the_arrival_country_falls_back_to_the_shipping_address() -> None:
    context = copy.deepcopy(SAMPLES["arrived_destination"])
    context["news"]["country_code"] = None
    context["shipping_address"]["country_code"] = "JP"

    assert in_english("arrived_destination", context).startswith(
        "Your order #1001 has arrived in Japan\n"
    )


def test_expected_dates_already_past_are_not_shown() -> None:
    context = copy.deepcopy(SAMPLES["arrived_destination"])
    context["shipment"]["expected"] = {"earliest": "2026-11-20", "latest": "2026-11-27"}

    assert "Expected delivery" not in in_english("arrived_destination", context)
    assert "Expected delivery: Dec 1\u2009–\u20094, 2026" in in_english(
        "arrived_destination", SAMPLES["arrived_destination"]
    )


def test_a_single_expected_day_reads_as_one_date() -> None:
    context = copy.deepcopy(SAMPLES["shipment_shipped"])
    context["shipment"]["expected"] = {"earliest": "2026-12-02", "latest": "2026-12-02"}

    assert "Voraussichtliche Zustellung: 2. Dez. 2026\n" in in_german("shipment_shipped", context)


def test_each_exception_reason_has_its_own_sentence() -> None:
    sentences = {}
    for reason in (*EXCEPTIONS, None):
        context = copy.deepcopy(SAMPLES["shipment_exception"])
        context["news"]["exception"] = reason
        for locale in ("en", "de"):
            text = RENDERER.render("shipment_exception", context, locale, "UTC").text
            sentences[reason, locale] = text.split("\n\n")[1]

    for locale in ("en", "de"):
        named = [sentences[reason, locale] for reason in EXCEPTIONS if reason != "other"]
        assert len(set(named)) == len(named)
        assert sentences["other", locale] == sentences[None, locale]
    assert "lost in transit" in sentences["lost", "en"]
    assert "verloren gegangen" in sentences["lost", "de"]


def test_a_stalled_parcel_counts_the_silent_days() -> None:
    one = copy.deepcopy(SAMPLES["shipment_delayed"])
    one["news"]["days"] = 1

    assert "in 8 days." in in_english("shipment_delayed", SAMPLES["shipment_delayed"])
    assert "in 1 day." in in_english("shipment_delayed", one)
    assert "seit 8 Tagen keine" in in_german("shipment_delayed", SAMPLES["shipment_delayed"])
    assert "seit 1 Tag keine" in in_german("shipment_delayed", one)


def test_a_delay_the_carrier_reported_reads_differently_from_silence() -> None:
    context = copy.deepcopy(SAMPLES["shipment_delayed"])
    context["news"].update(stalled=False, days=None)
    stalled = in_english("shipment_delayed", SAMPLES["shipment_delayed"])
    reported = in_english("shipment_delayed", context)

    assert stalled.startswith("Your order #1001 is still on its way\n")
    assert reported.startswith("Your order #1001 is delayed\n")
    assert "will arrive later than planned" in reported
    assert "Last tracking update" in stalled
    assert "Last tracking update" not in reported
    # An estimate made before the carrier fell silent is likely stale; a new one is worth repeating.
    assert "delivery estimate" not in stalled
    assert "Latest delivery estimate from the carrier: Dec 1\u2009–\u20094, 2026" in reported


@pytest.mark.parametrize("kind", SHIPMENT_KINDS)
def test_tracking_numbers_and_links_keep_their_direction_in_arabic(kind: str) -> None:
    rendered = RENDERER.render(kind, SAMPLES[kind], "ar", "Asia/Riyadh")
    tracking = SAMPLES[kind]["shipment"]["tracking_number"]

    assert f"{LRI}{tracking}{PDI}" in rendered.text
    assert f'<bdi dir="ltr">{tracking}</bdi>' in rendered.html


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_subject_is_a_header_the_mail_builder_accepts(kind: str, locale: str) -> None:
    """Isolates are refused in headers (notifier.mime), so subjects carry none, even in Arabic."""
    subject = RENDERER.render(kind, SAMPLES[kind], locale, "Europe/Berlin").subject

    assert not set(subject) & BIDI_CONTROLS


@pytest.mark.parametrize("locale", ["ja", "zh_Hans", "zh_Hant"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_space_between_sentences_where_the_language_writes_none(kind: str, locale: str) -> None:
    rendered = RENDERER.render(kind, SAMPLES[kind], locale, "Asia/Tokyo")

    for part in (rendered.text, rendered.html):
        assert not re.search(r"[。！？] +\S", part), part


def test_french_labels_keep_a_no_break_space_before_the_colon() -> None:
    text = RENDERER.render(
        "shipment_shipped", SAMPLES["shipment_shipped"], "fr", "Europe/Paris"
    ).text

    assert "Transporteur\u00a0: DHL" in text
    assert not re.search(r"\S: ", text.split("\n\n", 1)[1].replace("https:", "")), text


@pytest.mark.parametrize(("locale", "label"), [("ja", "配送業者"), ("zh_Hans", "快递公司")])
def test_chinese_and_japanese_labels_take_the_full_width_colon_without_a_space(
    locale: str, label: str
) -> None:
    rendered = RENDERER.render("shipment_shipped", SAMPLES["shipment_shipped"], locale, "UTC")

    assert f"{label}：DHL" in rendered.text
    assert f"{label}：" in rendered.html
    assert f"{label}:" not in rendered.text
