"""The threat model names the tests that prove each defence: every one of them must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_threat_model_cites_exists() -> None:
    text = (ROOT / "docs" / "threat-model.md").read_text()
    cited = set(re.findall(r"`(test_\w+\.py)::(test_\w+)`", text))
    missing = [
        f"{name}::{test}"
        for name, test in sorted(cited)
        if f"def {test}(" not in (ROOT / "tests" / name).read_text()
    ]

    assert len(cited) > 30
    assert missing == []
