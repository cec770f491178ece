"""The translation pipeline cannot drift: a stale .pot, a missing, fuzzy or mismatched entry fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from notifier.kinds import KINDS
from notifier.rendering import PARTS, Renderer, available_locales
from notifier.samples import SAMPLES

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "translations"
TEMPLATES = ROOT / "templates"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
LOCALES = sorted(path.parent.parent.name for path in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def ids(catalog: Catalog) -> set[object]:
    return {message.id for message in catalog if message.id}


def test_the_committed_pot_matches_the_sources(tmp_path: Path) -> None:
    pybabel = shutil.which("pybabel", path=str(Path(sys.executable).parent))
    assert pybabel, "pybabel is installed with Babel"
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [pybabel, "extract", "-F", "babel.cfg", "--no-location", "-o", str(fresh), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert ids(load(fresh)) == ids(load(TRANSLATIONS / "messages.pot")), (
        "translations/messages.pot is stale: run the extract and update commands in the README"
    )


def test_the_buyer_catalogs_leave_the_console_to_its_own_domain(tmp_path: Path) -> None:
    """Agents' screens never reach buyers' translators, nor buyers' emails the console's."""
    buyer = ids(load(TRANSLATIONS / "messages.pot"))
    console = ids(load(TRANSLATIONS / "console.pot"))

    assert "Sign in to the console" in console
    assert "Sign in to the console" not in buyer
    assert not any(str(message).startswith("Order #") for message in console)


# --- the agent console's own domain (babel-console.cfg, console.pot), English and Chinese ---

CONSOLE_LOCALES = ("en", "zh_Hans")


def test_the_committed_console_pot_matches_the_sources(tmp_path: Path) -> None:
    pybabel = shutil.which("pybabel", path=str(Path(sys.executable).parent))
    assert pybabel, "pybabel is installed with Babel"
    fresh = tmp_path / "console.pot"
    subprocess.run(
        [pybabel, "extract", "-F", "babel-console.cfg", "--no-location", "-o", str(fresh), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert ids(load(fresh)) == ids(load(TRANSLATIONS / "console.pot")), (
        "translations/console.pot is stale: run the console extract and update commands in the README"
    )


@pytest.mark.parametrize("locale", CONSOLE_LOCALES)
def test_every_console_catalog_is_complete_and_faithful(locale: str) -> None:
    catalog = load(TRANSLATIONS / locale / "LC_MESSAGES" / "console.po", locale)

    assert problems_in(catalog, load(TRANSLATIONS / "console.pot")) == []


def test_there_are_catalogs_beyond_english() -> None:
    assert {"en", "de"} <= set(LOCALES)


def problems_in(catalog: Catalog, template: Catalog) -> list[str]:
    """Everything that would make a buyer read English or a broken sentence in this catalog."""
    problems = []
    if ids(catalog) != ids(template):
        problems.append(f"out of date with messages.pot: {ids(template) ^ ids(catalog)}")
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.pluralizable and len(strings) != catalog.num_plurals:
            problems.append(f"{len(strings)} of {catalog.num_plurals} plural forms: {sources[0]!r}")
        wanted = set(PLACEHOLDER.findall(" ".join(sources)))
        for string in strings:
            if not string:
                problems.append(f"untranslated: {sources[0]!r}")
            elif set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders differ: {sources[0]!r} -> {string!r}")
    return problems


@pytest.mark.parametrize("locale", LOCALES)
def test_every_catalog_is_complete_and_faithful(locale: str) -> None:
    catalog = load(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale)

    assert problems_in(catalog, load(TRANSLATIONS / "messages.pot")) == []


def test_the_check_sees_what_compile_statistics_misses(tmp_path: Path) -> None:
    header = 'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
    entries = (
        'msgid "%(n)s item"\nmsgid_plural "%(n)s items"\nmsgstr[0] "%(n)s Artikel"\nmsgstr[1] ""\n\n'
        '#, fuzzy\nmsgid "Total"\nmsgstr "Summe"\n\n'
        'msgid "Hello %(name)s,"\nmsgstr "Hallo %(nom)s,"\n'
    )
    (tmp_path / "broken.po").write_text(header + entries, encoding="utf-8")
    (tmp_path / "template.pot").write_text(header + entries, encoding="utf-8")

    found = problems_in(load(tmp_path / "broken.po", "de"), load(tmp_path / "template.pot"))

    assert found == [
        "untranslated: '%(n)s item'",
        "fuzzy: 'Total'",
        "placeholders differ: 'Hello %(name)s,' -> 'Hallo %(nom)s,'",
    ]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_its_three_templates_and_a_sample(kind: str) -> None:
    for part in PARTS:
        assert (TEMPLATES / "email" / kind / part).is_file()
    assert kind in SAMPLES


@pytest.mark.parametrize("locale", sorted(available_locales(TRANSLATIONS)))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_in_every_locale(kind: str, locale: str) -> None:
    rendered = Renderer(TEMPLATES, TRANSLATIONS).render(
        kind, SAMPLES[kind], locale, "Europe/Berlin"
    )

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.endswith("\n")
    assert f'lang="{locale.replace("_", "-")}"' in rendered.html
