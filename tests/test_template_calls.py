"""The email environment's shortcuts (calls and dict lookups) give what Jinja's own way gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import (
    Environment,
    StrictUndefined,
    UndefinedError,
    pass_context,
    pass_environment,
    pass_eval_context,
)

from notifier.rendering import Renderer

ROOT = Path(__file__).resolve().parents[1]


@pass_context
def loop_value(context: Any) -> object:
    return context.get("doubled", "none")


@pass_eval_context
def escaping(context: Any) -> str:
    return f"autoescape={context.autoescape}"


@pass_environment
def environment_name(environment: Environment) -> str:
    return "env" if isinstance(environment, Environment) else "?"


class Greeter:
    @pass_context
    def __call__(self, context: Any, name: str) -> str:
        return f"{context.get('greeting')}, {name}"


class Thing:
    colour = "blue"

    def shout(self, word: str) -> str:
        return word.upper()


def stops() -> str:
    raise StopIteration


GLOBALS = {
    "loop_value": loop_value,
    "escaping": escaping,
    "environment_name": environment_name,
    "greeter": Greeter(),
    "thing": Thing(),
    "stops": stops,
    "length": len,
    "greeting": "Hej",
}
TEMPLATES = [
    "{{ order.number }} {{ order['number'] }}",
    "{{ order.items()|list|length }} {{ order.get('number') }} {{ order.keys()|list }}",
    "{{ shadow.items }} {{ shadow.get }}",  # keys named like dict methods: the method wins
    "{{ nested.inner.value }}",
    "{% for x in [1, 2] %}{% set doubled = x * 2 %}{{ loop_value() }} {% endfor %}",
    "{{ loop_value() }}",
    "{{ escaping() }}",
    "{{ environment_name() }}",
    "{{ greeter('Ana') }}",
    "{{ thing.colour }} {{ thing.shout('hi') }}",
    "{{ length('four') }}",
    "{{ stops() is undefined }}",
    "{{ _('Total') }} {{ ngettext('%(num)s item', '%(num)s items', 3) }}",
]
CONTEXT = {
    "order": {"number": "#1001", "currency": "EUR"},
    "shadow": {"items": "an item", "get": "a get"},
    "nested": {"inner": {"value": 7}},
}


def both(autoescape: bool) -> tuple[Environment, Environment]:
    ours = Renderer(ROOT / "templates", ROOT / "translations").environment("de")
    # autoescape is set per case below, on both
    jinjas = Environment(undefined=StrictUndefined, extensions=["jinja2.ext.i18n"])  # noqa: S701
    jinjas.globals.update(ours.globals)  # the same gettext, ngettext and _
    for env in (ours, jinjas):
        env.globals.update(GLOBALS)
        env.autoescape = autoescape
    return ours, jinjas


@pytest.mark.parametrize("autoescape", [False, True])
@pytest.mark.parametrize("source", TEMPLATES)
def test_same_output_as_jinjas_own_way(source: str, autoescape: bool) -> None:
    ours, jinjas = both(autoescape)
    expected = jinjas.from_string(source).render(CONTEXT)
    assert ours.from_string(source).render(CONTEXT) == expected


@pytest.mark.parametrize("source", ["{{ order.missing }}", "{{ order.number.missing }}"])
def test_a_missing_key_is_still_an_error(source: str) -> None:
    ours, jinjas = both(False)
    for env in (jinjas, ours):
        with pytest.raises(UndefinedError, match="missing"):
            env.from_string(source).render(CONTEXT)
