"""Growth: each step against a growing database, timed in turns with the same step against a
twin kept at the first size, so the ratio compares two moments of the same box.

Timed one after the other, minutes apart, the sizes' medians also measured how fast the box was
at each moment (its speed drifts by a fifth within a minute); in turns, each try at the large
size has a try at the small one beside it, and the median of their quotients is the growth.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import _common as common

STEPS = ("claim", "plan", "search #number", "search email", "order page")
REPEATS = {"claim": 30, "plan": 20, "search #number": 10, "search email": 5, "order page": 10}


@dataclass
class Paired:
    """One step at two sizes: the median time of each, and the median of their quotients."""

    large: float
    small: float
    ratio: float


class Database:
    """The steps against one benchmark database, its app and its cloned rows."""

    def __init__(self, url: str, instance: Any) -> None:
        from notifier.console.accounts import Viewer

        self.app = common.make_app(url, instance)
        self.svc = self.app.extensions["notifier"]
        self.seed = common.prepare(self.app)
        self.client = self.app.test_client()
        self.viewer = Viewer(0, "bench@bench.example", True, frozenset())
        self.present = 1  # rows of orders, each with its message
        self.posted = 0

    def grow(self, size: int) -> None:
        common.fill(
            self.svc.engine,
            self.seed,
            size - self.present,
            due=False,
            now=self.svc.clock.now(),
            start=self.present,
        )
        self.present = size

    def add_due(self, label: int) -> None:
        """200 due messages; each claim is rolled back, so every try sees the same ones."""
        common.fill(
            self.svc.engine, self.seed, 200, due=True, now=self.svc.clock.now(), start=label
        )
        self.present += 200

    def steps(self, size: int) -> dict[str, Callable[[], None]]:
        from notifier import outbox
        from notifier.console import records

        svc, viewer = self.svc, self.viewer
        probe = size // 2

        def claim() -> None:
            with svc.sessions() as session:
                session.begin()
                claims = outbox.claim_due(
                    session, worker="bench", now=svc.clock.now(),
                    lease=timedelta(minutes=2), limit=50,
                )  # fmt: skip
                assert len(claims) == 50
                session.rollback()

        def plan() -> None:  # a new order's webhook, its planning and its commit
            self.posted += 1
            self.present += 1
            body, headers = common.signed(common.example_order(10**9 + self.posted))
            response = self.client.post("/webhooks/shopify", data=body, headers=headers)
            assert response.status_code < 300, response.get_data(as_text=True)

        def search_number() -> None:
            with svc.sessions() as session:
                assert records.search(session, viewer, f"#S{probe}")

        def search_email() -> None:
            with svc.sessions() as session:
                assert records.search(session, viewer, f"buyer{probe}@example.org")

        def order_page() -> None:
            with svc.sessions() as session:
                order = records.visible_order(session, viewer, probe + 1)
                assert order is not None
                records.timeline(session, order)
                records.flags(order, svc.clock.now())

        return dict(zip(STEPS, (claim, plan, search_number, search_email, order_page), strict=True))


def paired(large: Callable[[], None], small: Callable[[], None], repeat: int) -> Paired:
    """Both timed in turns, `repeat` times each (after one untimed try of each); which goes
    first alternates, so neither always runs on caches the other just warmed."""
    large()
    small()
    large_times: list[float] = []
    small_times: list[float] = []
    turns = [(large, large_times), (small, small_times)]
    for _ in range(repeat):
        for action, times in turns:
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
        turns.reverse()
    return Paired(
        statistics.median(large_times),
        statistics.median(small_times),
        statistics.median(a / b for a, b in zip(large_times, small_times, strict=True)),
    )
