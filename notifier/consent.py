"""Whether a shop may send a buyer its delivery survey, which the law treats as marketing email.

Order news is transactional and always allowed. A survey needs either the buyer's agreement to
marketing email, or a shop that relies on the existing-customer exception (`survey.consent =
existing_customer`) for a buyer whose country's law has one, and a buyer who never refused.
Every survey carries a one-click opt-out, which that exception requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPT_IN = "opt_in"  # the default: only buyers who agreed to marketing email
EXISTING_CUSTOMER = "existing_customer"
MODES = (OPT_IN, EXISTING_CUSTOMER)

# Where the law lets a seller email its own customers about a purchase without prior opt-in,
# provided every email offers an easy opt-out. Elsewhere (or with no country known) the buyer's
# agreement is needed. The shop's choice of mode is its own legal judgement; this table is the
# conservative floor under it.
EXISTING_CUSTOMER_COUNTRIES: dict[str, str] = {
    **{
        code: "ePrivacy Directive 2002/58/EC art. 13(2)"
        for code in [
            "AT",
            "BE",
            "BG",
            "HR",
            "CY",
            "CZ",
            "DK",
            "EE",
            "FI",
            "FR",
            "DE",
            "GR",
            "HU",
            "IE",
            "IT",
            "LV",
            "LT",
            "LU",
            "MT",
            "NL",
            "PL",
            "PT",
            "RO",
            "SK",
            "SI",
            "ES",
            "SE",
        ]
    },
    **{code: "EEA: ePrivacy Directive art. 13(2)" for code in ("IS", "LI", "NO")},
    "GB": "PECR 2003 reg. 22(3)",
    "CH": "UWG art. 3(1)(o)",
    "US": "CAN-SPAM Act (opt-out regime)",
    "CA": "CASL s. 10(10): existing business relationship, 2 years",
    "AU": "Spam Act 2003: inferred consent",
    "NZ": "Unsolicited Electronic Messages Act 2007: inferred consent",
    "SG": "Spam Control Act (opt-out regime)",
    "JP": "Act on Specified Electronic Mail art. 3(1)(iii): business relationship",
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def mode(settings: dict[str, Any]) -> str:
    found: str = settings.get("survey", {}).get("consent", OPT_IN)
    return found


def survey_verdict(
    settings: dict[str, Any], accepts_marketing: bool | None, country: str | None
) -> Verdict:
    """May this buyer get the survey, and the sentence that says why (kept with the message)."""
    if accepts_marketing is False:
        return Verdict(False, "the buyer refused marketing email, and a survey counts as such")
    if accepts_marketing:
        return Verdict(True, "the buyer agreed to marketing email")
    if mode(settings) == EXISTING_CUSTOMER:
        law = EXISTING_CUSTOMER_COUNTRIES.get((country or "").upper())
        if law:
            return Verdict(True, f"existing-customer exception in {country} ({law})")
        where = country or "an unknown country"
        return Verdict(
            False,
            f"the buyer never agreed to marketing email, and {where} has no existing-customer "
            "exception this service relies on",
        )
    return Verdict(
        False,
        "the buyer never agreed to marketing email (survey.consent=opt_in; a shop may choose "
        "existing_customer where the law allows)",
    )
