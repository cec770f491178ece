"""Which of our catalogs a buyer reads, decided from what the storefront sent, with the reason kept."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError
from babel.core import get_global

FALLBACK = "en"


@dataclass(frozen=True)
class Choice:
    locale: str
    reason: str


def candidates(tag: str) -> list[str]:
    """Catalog names a BCP 47 tag could be served by, most specific first (zh-TW → zh_Hant_TW, zh_Hant, zh)."""
    parsed = _parse(tag.strip().replace("_", "-"))
    if parsed is None:
        return []
    names = [str(parsed)]
    if parsed.script:
        names.append(f"{parsed.language}_{parsed.script}")
    if parsed.territory:
        names.append(f"{parsed.language}_{parsed.territory}")
    names.append(parsed.language)
    # Then the language as most of its speakers write it (pt → pt_BR, zh → zh_Hans), unless
    # the tag named its script: zh-TW is Traditional, and Simplified would not serve it.
    likely = get_global("likely_subtags").get(parsed.language)
    if likely and not parsed.script:
        language, _, rest = likely.partition("_")
        script, _, territory = rest.partition("_")
        names += [f"{language}_{script}", f"{language}_{territory}"]
    return list(dict.fromkeys(names))


def _parse(tag: str) -> Locale | None:
    """Babel's reading of a tag; extensions it does not know (de-u-co-phonebk) are shed."""
    parts = tag.split("-")
    while parts and all(parts):
        try:
            return Locale.parse("-".join(parts), sep="-")
        except (ValueError, TypeError, UnknownLocaleError):
            parts.pop()
    return None


def _match(tag: str | None, supported: Collection[str]) -> str | None:
    if not tag:
        return None
    return next((name for name in candidates(tag) if name in supported), None)


def negotiate(buyer_tag: str | None, shop_default: str, supported: Collection[str]) -> Choice:
    """The buyer's tag, then the shop's default, then English; never a catalog we do not have."""
    if (found := _match(buyer_tag, supported)) is not None:
        return Choice(found, f"buyer locale {buyer_tag!r} is served by {found}")
    if buyer_tag:
        why = f"buyer locale {buyer_tag!r} has no catalog"
    else:
        why = "the order names no buyer locale"
    if (found := _match(shop_default, supported)) is not None:
        return Choice(found, f"{why}; the shop default {shop_default!r} is served by {found}")
    return Choice(FALLBACK, f"{why}; the shop default {shop_default!r} has none; using {FALLBACK}")
