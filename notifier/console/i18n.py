"""The console's own language, chosen by the agent: a `console` gettext domain, apart from buyers'.

Agent screens are translated in `translations/<locale>/LC_MESSAGES/console.po`, so the sixteen
buyer catalogs never have to carry them. Catalogs are compiled in memory at start, like the
buyer catalogs, so a stale `.mo` can never be served.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations
from flask import Flask, current_app, g, has_request_context, request, session

from notifier.locales import candidates

DOMAIN = "console"
UI_LOCALES = ("en", "zh_Hans")
FALLBACK = "en"


def load_catalogs(translations: Path) -> dict[str, NullTranslations]:
    catalogs: dict[str, NullTranslations] = {}
    for locale in UI_LOCALES:
        po_path = translations / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po_path.exists():
            catalogs[locale] = NullTranslations()
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=DOMAIN)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        catalogs[locale] = Translations(fp=buffer, domain=DOMAIN)
    return catalogs


def ui_locale() -> str:
    """The agent's choice in this session, else the browser's best match, else English."""
    if not has_request_context():
        return FALLBACK
    if "console_locale" in g:
        return str(g.console_locale)
    chosen = session.get("ui_locale")
    if chosen not in UI_LOCALES:
        chosen = next(
            (
                name
                for tag, _quality in request.accept_languages
                for name in candidates(tag)
                if name in UI_LOCALES
            ),
            FALLBACK,
        )
    g.console_locale = chosen
    return str(chosen)


def _catalog() -> NullTranslations:
    catalogs: dict[str, NullTranslations] = current_app.extensions["console_catalogs"]
    return catalogs[ui_locale()]


def raw_gettext(message: str) -> str:
    return _catalog().gettext(message)


def raw_ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog().ngettext(singular, plural, n)


def gettext(message: str, **variables: Any) -> str:
    """Translated into the agent's language, then `%(name)s` placeholders filled in."""
    text = raw_gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    return raw_ngettext(singular, plural, n) % {"num": n, **variables}


def language_name(locale: str) -> str:
    """A locale's name in the agent's language ("德语" for de, to a Chinese-reading agent)."""
    name = Locale.parse(locale).get_display_name(Locale.parse(ui_locale()))
    return name or locale


def native_name(locale: str) -> str:
    """A UI language as its readers name it, for the language menu."""
    return Locale.parse(locale).get_display_name(Locale.parse(locale)) or locale


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale=ui_locale())


def install(app: Flask) -> None:
    """Teach the app's Jinja environment the console's gettext, resolved per request."""
    app.extensions["console_catalogs"] = load_catalogs(Path(app.config["TRANSLATIONS_PATH"]))
    env = app.jinja_env
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        raw_gettext, raw_ngettext, newstyle=True
    )
