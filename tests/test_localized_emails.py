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
