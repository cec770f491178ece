"""A sender compiles every email template when it starts, once for all languages: a broken
template stops the start, and no message waits on the compiler."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, TemplateSyntaxError

from notifier.rendering import Renderer
from notifier.samples import SAMPLES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = Environment.compile

    def counting(self: Environment, source: Any, name: str | None = None, *a: Any, **k: Any) -> Any:
        seen.append(str(name))
        return original(self, source, name, *a, **k)

    monkeypatch.setattr(Environment, "compile", counting)
    return seen


def test_warm_compiles_every_email_template_once(compiles: list[str]) -> None:
    renderer = Renderer(ROOT / "templates", ROOT / "translations")
    on_disk = sorted(
        str(path.relative_to(ROOT / "templates"))
        for path in (ROOT / "templates" / "email").rglob("*")
        if path.is_file()
    )
    assert renderer.warm() == len(on_disk)
    assert sorted(compiles) == on_disk


def test_other_languages_reuse_what_was_compiled(compiles: list[str]) -> None:
    renderer = Renderer(ROOT / "templates", ROOT / "translations")
    renderer.warm()
    compiles.clear()
    german = renderer.render("order_confirmation", SAMPLES["order_confirmation"], "de", "UTC")
    arabic = renderer.render("order_confirmation", SAMPLES["order_confirmation"], "ar", "UTC")
    assert compiles == []
    assert "Bestellung" in german.subject
    assert arabic.html != german.html  # each language still reads its own catalog


def test_a_broken_template_stops_the_warm_start(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "email" / "delivered" / "body.txt").write_text("{% if %}\n")
    renderer = Renderer(templates, ROOT / "translations")
    with pytest.raises(TemplateSyntaxError) as raised:
        renderer.warm()
    assert raised.value.name == "email/delivered/body.txt"
