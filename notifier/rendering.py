"""Turns (kind, context, locale, timezone) into subject, text and HTML. Knows nothing of HTTP.

One Jinja environment per locale, each with its own gettext catalog installed: catalogs are
compiled in memory from the committed `.po` files, so a stale `.mo` can never be served.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import css_inline
import pytz
from babel import Locale
from babel.dates import format_date, format_datetime, format_interval
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_eval_context,
    select_autoescape,
)
from jinja2.bccache import Bucket, BytecodeCache
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from markupsafe import Markup

SOURCE_LOCALE = "en"
PARTS = ("subject.txt", "body.txt", "body.html")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


# Unicode isolates: a Latin order number, address or URL inside Arabic or Hebrew text keeps its
# own direction instead of being reordered by the surrounding script.
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"


class Formats:
    """Babel's formatting bound to one locale and timezone, handed to templates as `fmt`."""

    def __init__(
        self,
        locale: str,
        timezone: str,
        *,
        html: bool = False,
    ) -> None:
        self.locale = _locale(locale)
        self.zone = pytz.timezone(timezone)
        self.rtl = self.locale.character_order == "right-to-left"
        self.html = html

    @property
    def colon(self) -> str:
        """A label's colon as the language sets it: French puts a no-break space before it,
        Chinese and Japanese use the full-width one (the space templates put after it goes)."""
        if self.locale.language in UNSPACED_LANGUAGES:
            return "\uff1a"
        return "\u00a0:" if self.locale.language == "fr" else ":"

    def ltr(self, value: object) -> str:
        """Always left to right (codes, numbers, addresses of mail and web), in RTL text."""
        return self._isolated(value, LRI, Markup('<bdi dir="ltr">{}</bdi>'))

    def isolate(self, value: object) -> str:
        """Its own direction, whatever it is (names, product titles), in RTL text."""
        return self._isolated(value, FSI, Markup('<bdi dir="auto">{}</bdi>'))

    def _isolated(self, value: object, opener: str, element: Markup) -> str:
        text = "" if value is None else str(value)
        if not (self.rtl and text):
            return text
        if self.html:  # markup, which mail clients honour more widely than the isolate characters
            return element.format(text)
        return f"{opener}{text}{PDI}"

    def money(self, amount: str | Decimal | None, currency: str, *, negative: bool = False) -> str:
        """In the currency's own digits (JPY none, KWD three) and the locale's symbol placement."""
        if amount is None:
            return ""
        return _amount(str(amount), currency, negative, self.locale)

    def number(self, value: int | Decimal) -> str:
        if isinstance(value, int):  # counts and quantities: the same few, email after email
            return _whole_number(value, self.locale)
        return format_decimal(value, locale=self.locale)

    def country(self, code: str | None, fallback: str | None = None) -> str:
        """The country's name in the reader's language, whatever language the storefront used."""
        name = self.locale.territories.get(code.upper()) if code else None
        return name or fallback or ""

    def _local(self, instant: str | datetime) -> datetime:
        moment = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
        return moment.astimezone(self.zone)

    def date(self, instant: str | datetime, width: str = "long") -> str:
        return format_date(self._local(instant), width, locale=self.locale)

    def datetime(self, instant: str | datetime, width: str = "medium") -> str:
        return format_datetime(self._local(instant), width, tzinfo=self.zone, locale=self.locale)

    def date_range(
        self, earliest: str | dt.date, latest: str | dt.date | None = None, skeleton: str = "yMMMd"
    ) -> str:
        """Calendar days as the locale writes a span ("Dec 1 – 4, 2026"), or one day if they agree.

        Dates, not instants: nothing is converted to the reader's timezone.
        """
        start = dt.date.fromisoformat(earliest) if isinstance(earliest, str) else earliest
        end = dt.date.fromisoformat(latest) if isinstance(latest, str) else (latest or start)
        start, end = min(start, end), max(start, end)
        return format_interval(start, end, skeleton, locale=self.locale)


def load_catalog(translations: Path, locale: str) -> Translations:
    """Compile one `.po` in memory; English (the source language) may have none."""
    po_path = translations / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        if locale == SOURCE_LOCALE:
            return Translations()
        raise LookupError(f"no catalog for {locale!r} in {translations}")
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def available_locales(translations: Path) -> frozenset[str]:
    found = {path.parent.parent.name for path in translations.glob("*/LC_MESSAGES/messages.po")}
    return frozenset(found | {SOURCE_LOCALE})


class CompiledTemplates(BytecodeCache):
    """Compiled template code, shared by every locale's environment: they differ only in their
    catalog, so a template is compiled once per process, not once per language it is sent in.
    Jinja checks each entry against its template's source before using it."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


class _EmailContext(Context):
    """Jinja's context, calling functions and methods straight away: its own `call` asks each
    callable, with getattr and hasattr, whether it wants the context passed (a template makes
    some 80 calls an email). A function's own attributes answer that with one lookup."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        kind = type(__obj)
        if kind is types.MethodType and type(__obj.__func__) is types.FunctionType:
            marks = __obj.__func__.__dict__
        elif kind is types.FunctionType:
            marks = __obj.__dict__
        elif kind is types.BuiltinFunctionType:
            marks = _NO_MARKS  # attributes cannot be set on a builtin: never marked
        else:  # a callable object, whose __call__ may be marked
            return super().call(__obj, *args, **kwargs)
        if marks:
            passed = marks.get("jinja_pass_arg")
            if passed is _EVAL_CONTEXT:
                args = (__self.eval_ctx, *args)
            elif passed is not None:  # the context (with its loop and block variables) or env
                return super().call(__obj, *args, **kwargs)
        if kwargs:
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )


_NO_MARKS: dict[str, Any] = {}
_EVAL_CONTEXT = pass_eval_context(lambda: None).jinja_pass_arg  # type: ignore[attr-defined]
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _EmailEnvironment(Environment):
    """Jinja's environment, reading `order.number` from a plain dict (what every email context
    is) by its key at once: Jinja tries the attribute first and gets there through a raised
    AttributeError, some 150 times an email. Names a dict has as attributes (`item.get`,
    `order.items`) still go Jinja's way and mean what they always did. Its templates call
    through `_EmailContext`."""

    context_class = _EmailContext

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class Renderer:
    def __init__(self, templates: Path, translations: Path) -> None:
        self.templates = templates
        self.translations = translations
        self.locales = available_locales(translations)
        self._environments: dict[str, Environment] = {}
        self._lock = threading.Lock()
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
        self._compiled = CompiledTemplates()

    def warm(self) -> int:
        """Compile every email template now (a long-running sender's start), so a broken one
        stops the start rather than a send, and no message waits on a compiler; how many."""
        env = self.environment(SOURCE_LOCALE)
        names = env.list_templates(filter_func=lambda name: name.startswith("email/"))
        for name in names:
            env.get_template(name)
        return len(names)

    def environment(self, locale: str) -> Environment:
        with self._lock:
            if locale not in self._environments:
                self._environments[locale] = self._make_environment(locale)
            return self._environments[locale]

    def _make_environment(self, locale: str) -> Environment:
        if locale not in self.locales:
            raise LookupError(f"no catalog for {locale!r}")
        env = _EmailEnvironment(
            loader=FileSystemLoader(self.templates),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            extensions=["jinja2.ext.i18n"],
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates change with a release, not while a process runs: no stat() per render.
            auto_reload=False,
            bytecode_cache=self._compiled,
        )
        catalog = load_catalog(self.translations, locale)
        env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
        # The same newstyle semantics, one call deep instead of three: `_` reaches the catalog
        # through an alias, `gettext` and the catalog's own method, a template call each.
        gettext, ngettext = _newstyle(catalog)
        env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext)
        return env

    def render(
        self, kind: str, context: dict[str, Any], locale: str, timezone: str
    ) -> RenderedEmail:
        env = self.environment(locale)
        parsed = _locale(locale)
        variables = {
            **context,
            "lang": locale.replace("_", "-"),
            "dir": "rtl" if parsed.character_order == "right-to-left" else "ltr",
            "left": "right" if parsed.character_order == "right-to-left" else "left",
            "right": "left" if parsed.character_order == "right-to-left" else "right",
        }
        text_formats = Formats(locale, timezone)
        html_formats = Formats(locale, timezone, html=True)
        subject = env.get_template(f"email/{kind}/subject.txt").render(variables, fmt=text_formats)
        text = env.get_template(f"email/{kind}/body.txt").render(variables, fmt=text_formats)
        html = env.get_template(f"email/{kind}/body.html").render(variables, fmt=html_formats)
        if parsed.language in UNSPACED_LANGUAGES:
            text, html = _close_sentence_gaps(text), _close_sentence_gaps(html)
        return RenderedEmail(
            subject=re.sub(r"\s+", " ", subject).strip(),
            text=_tidy_text(text),
            html=self._inliner.inline(html),
        )


def _newstyle(catalog: Translations) -> tuple[Callable[..., str], Callable[..., str]]:
    """Jinja's newstyle gettext and ngettext for one catalog: the translation is a format string
    (even without variables), trusted markup in an autoescaped template (the catalogs are ours,
    committed beside the templates), its variables escaped."""

    # Most strings take no variables: each is translated and formatted once, as text and as
    # markup, instead of on every email (the same few dozen labels, email after email).
    plain: dict[str, tuple[str, Markup]] = {}

    @pass_eval_context
    def gettext(context: EvalContext, string: str, /, **variables: Any) -> str:
        if not variables:
            done = plain.get(string)
            if done is None:
                text = catalog.gettext(string) % {}
                done = plain[string] = (text, Markup(text))  # noqa: S704
            return done[1] if context.autoescape else done[0]
        text = catalog.gettext(string)
        return (Markup(text) if context.autoescape else text) % variables  # noqa: S704

    @pass_eval_context
    def ngettext(
        context: EvalContext, singular: str, plural: str, number: int, /, **variables: Any
    ) -> str:
        variables.setdefault("num", number)
        text = catalog.ngettext(singular, plural, number)
        return (Markup(text) if context.autoescape else text) % variables  # noqa: S704

    return gettext, ngettext


@functools.lru_cache(maxsize=64)
def _locale(locale: str) -> Locale:
    return Locale.parse(locale)


@functools.lru_cache(maxsize=4096)
def _whole_number(value: int, locale: Locale) -> str:
    return format_decimal(value, locale=locale)


@functools.lru_cache(maxsize=16384)
def _amount(amount: str, currency: str, negative: bool, locale: Locale) -> str:
    """Babel's format_currency is the dearest call a template makes, and the same amounts come
    back: an email's text and HTML parts show the same ones, a catalogue's prices and a flat
    shipping rate recur from order to order."""
    value = -Decimal(amount) if negative else Decimal(amount)
    return format_currency(value, currency, locale=locale)


# Languages written without spaces between sentences: templates join sentences with one.
UNSPACED_LANGUAGES = frozenset({"ja", "zh"})
FULL_WIDTH_STOP = re.compile(r"(?<=[。！？：]) +(?=\S)")


def _close_sentence_gaps(text: str) -> str:
    return FULL_WIDTH_STOP.sub("", text)


def _tidy_text(text: str) -> str:
    """At most one blank line in a row and a single trailing newline."""
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
