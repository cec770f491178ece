"""Templates translate exactly as Jinja's newstyle gettext does, through the shorter path."""

from __future__ import annotations

from pathlib import Path

from notifier.rendering import Renderer

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = (
    '{{ _("Hello %(name)s,", name=name) }}|{{ _("Subtotal") }}|{{ _("100%% sure") }}|'
    "{% trans count=days, n=days %}Links in our emails work for {{ n }} day after the email was "
    "sent.{% pluralize %}Links in our emails work for {{ n }} days after the email was sent."
    "{% endtrans %}"
)


def test_html_escapes_the_values_not_the_translation() -> None:
    env = Renderer(ROOT / "templates", ROOT / "translations").environment("de")
    html = env.from_string("{% autoescape true %}" + TEMPLATE + "{% endautoescape %}")

    out = html.render(name="<b>Ann & Bo</b>", days=2)

    assert out == (
        "Guten Tag &lt;b&gt;Ann &amp; Bo&lt;/b&gt;,|Zwischensumme|100% sure|"
        "Die Links in unseren E-Mails sind nach dem Versand 2 Tage lang gültig."
    )


def test_text_keeps_values_as_they_are_and_picks_the_plural() -> None:
    env = Renderer(ROOT / "templates", ROOT / "translations").environment("de")

    out = env.from_string(TEMPLATE).render(name="<b>Ann & Bo</b>", days=1)

    assert out == (
        "Guten Tag <b>Ann & Bo</b>,|Zwischensumme|100% sure|"
        "Die Links in unseren E-Mails sind nach dem Versand 1 Tag lang gültig."
    )
