"""Locale negotiation: what storefronts send, mapped onto the catalogs we have, with the reason."""

from __future__ import annotations

import pytest

from notifier.locales import candidates, negotiate

HAVE = {"en", "de", "pt_BR", "zh_Hans", "zh_Hant", "he", "es"}


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("de_CH", "de"),
        ("pt-BR", "pt_BR"),
        ("zh-CN", "zh_Hans"),
        ("zh-TW", "zh_Hant"),
        ("zh-HK", "zh_Hant"),
        ("es-419", "es"),
        ("iw", "he"),
        ("EN-gb", "en"),
        ("de-u-co-phonebk", "de"),
        ("pt", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("zh", "zh_Hans"),
        ("zh-SG", "zh_Hans"),
        ("zh-MO", "zh_Hant"),
        ("zh-Hant-TW-x-private", "zh_Hant"),
    ],
)
def test_storefront_tags_reach_the_nearest_catalog(tag: str, expected: str) -> None:
    assert negotiate(tag, "en", HAVE).locale == expected


@pytest.mark.parametrize("tag", ["", "garbage", "x-klingon", "123", "de--", None])
def test_unusable_tags_fall_back_to_the_shop_default(tag: str | None) -> None:
    choice = negotiate(tag, "de", HAVE)

    assert choice.locale == "de"
    assert "the shop default 'de' is served by de" in choice.reason


def test_a_shop_default_without_a_catalog_falls_back_to_english() -> None:
    choice = negotiate("ja", "fr", {"en", "de"})

    assert choice.locale == "en"
    assert (
        choice.reason
        == "buyer locale 'ja' has no catalog; the shop default 'fr' has none; using en"
    )


def test_candidates_go_from_specific_to_general() -> None:
    assert candidates("zh-TW") == ["zh_Hant_TW", "zh_Hant", "zh_TW", "zh"]
    assert candidates("pt-PT") == ["pt_PT", "pt", "pt_Latn", "pt_BR"]
    assert candidates("not a locale") == []
