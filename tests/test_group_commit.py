"""Group commit: callers that arrive during a commit share the next one, and each hears only
its own answer. Then the pending store built on it, on both databases: twins inside one batch,
and one spoiled delivery that must not take its neighbours down with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError

from notifier.group_commit import GroupCommit
from notifier.intake import PENDING_DETAIL, pending_row
from notifier.models import EventOutcome, InboundEvent, LedgerContent, Shop
from notifier.sources import Envelope

from .conftest import START, services


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.001)


class HeldCommit:
    """A commit function whose first batch waits until the test lets it go."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, batch: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(list(batch))
        if len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(10)
        return [item * 10 if item >= 0 else ValueError(f"item {item} refused") for item in batch]


def submit_all(group: GroupCommit[int, int], items: list[int]) -> dict[int, object]:
    answers: dict[int, object] = {}

    def one(item: int) -> None:
        try:
            answers[item] = group.submit(item)
        except Exception as failure:
            answers[item] = failure

    threads = [threading.Thread(target=one, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return answers if not threads else _joined(threads, answers)


def _joined(threads: list[threading.Thread], answers: dict[int, object]) -> dict[int, object]:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return answers


def test_a_lone_caller_commits_at_once_and_hears_its_answer() -> None:
    commit = HeldCommit()
    commit.release.set()
    group = GroupCommit(commit)
    assert group.submit(4) == 40
    assert commit.batches == [[4]]


def behind_a_held_commit(
    commit: HeldCommit, group: GroupCommit[int, int], items: range
) -> dict[int, object]:
    """Item 0 commits alone and is held; `items` queue behind it; then it is let go."""
    first = threading.Thread(target=group.submit, args=(0,))
    first.start()
    assert commit.started.wait(10)
    answers: dict[int, object] = {}
    others = [
        threading.Thread(target=lambda n=n: answers.__setitem__(n, group.submit(n))) for n in items
    ]
    for thread in others:
        thread.start()
    wait_until(lambda: group.waiting == len(items))
    commit.release.set()
    return _joined([first, *others], answers)


def test_callers_arriving_during_a_commit_share_the_next_one() -> None:
    commit = HeldCommit()
    waiting = behind_a_held_commit(commit, GroupCommit(commit), range(1, 9))
    assert commit.batches[0] == [0]
    assert len(commit.batches) == 2
    assert sorted(commit.batches[1]) == list(range(1, 9))
    assert waiting == {n: n * 10 for n in range(1, 9)}


def test_a_batch_is_never_larger_than_its_limit() -> None:
    commit = HeldCommit()
    answers = behind_a_held_commit(commit, GroupCommit(commit, max_batch=3), range(1, 8))
    assert [len(batch) for batch in commit.batches] == [1, 3, 3, 1]
    assert answers == {n: n * 10 for n in range(1, 8)}


def test_an_item_refused_alone_raises_for_its_caller_only() -> None:
    commit = HeldCommit()
    commit.release.set()
    group = GroupCommit(commit)
    answers = submit_all(group, [1, -2, 3])
    assert answers[1] == 10
    assert answers[3] == 30
    assert isinstance(answers[-2], ValueError)
    assert "item -2 refused" in str(answers[-2])


def test_a_commit_that_fails_fails_its_whole_batch_and_the_next_batch_goes_on() -> None:
    calls: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def commit(batch: list[int]) -> list[int]:
        calls.append(list(batch))
        if len(calls) == 1:
            started.set()
            assert release.wait(10)
            return [0]
        if len(calls) == 2:
            raise ConnectionError("the database went away")
        return [item for item in batch]

    group = GroupCommit(commit)
    first = threading.Thread(target=group.submit, args=(0,))
    first.start()
    assert started.wait(10)
    answers: dict[int, object] = {}
    doomed = [
        threading.Thread(target=lambda n=n: answers.__setitem__(n, _heard(group, n)))
        for n in (1, 2, 3)
    ]
    for thread in doomed:
        thread.start()
    wait_until(lambda: group.waiting == 3)
    release.set()
    _joined([first, *doomed], answers)
    assert all(isinstance(answers[n], ConnectionError) for n in (1, 2, 3))
    assert group.submit(7) == 7  # the group is not left stuck behind the failed batch


def test_a_commit_answering_the_wrong_number_of_items_fails_them_all() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda batch: [])
    with pytest.raises(RuntimeError, match="0 answers for a batch of 1"):
        group.submit(1)


def test_a_batch_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(lambda batch: batch, max_batch=0)


def _heard(group: GroupCommit[int, int], item: int) -> object:
    try:
        return group.submit(item)
    except ConnectionError as failure:
        return failure


# --- the pending store --------------------------------------------------------------------


def delivery(
    shop_id: int, delivery_id: str, body: bytes, event_id: str | None = None
) -> dict[str, Any]:
    envelope = Envelope(
        delivery_id=delivery_id,
        event_id=event_id,
        topic="orders/create",
        occurred_at=None,
        headers={"X-Shopify-Webhook-Id": delivery_id},
        verification="hmac-sha256 valid (secret 1 of 1)",
    )
    return pending_row(
        source="shopify",
        shop_id=shop_id,
        envelope=envelope,
        topic="orders/create",
        body=body,
        received_at=START,
    )


def stored_rows(app: Flask) -> list[tuple[str, EventOutcome]]:
    with services(app).engine.connect() as connection:
        return [
            (row.delivery_id, row.outcome)
            for row in connection.execute(
                sa.select(InboundEvent.delivery_id, InboundEvent.outcome).order_by(InboundEvent.id)
            )
        ]


def test_a_batch_stores_each_delivery_and_answers_a_twin_inside_it(
    app: Flask, shopify_shop: Shop
) -> None:
    store = services(app).pending
    answers = store.store_batch(
        [
            delivery(shopify_shop.id, "d-1", b'{"id": 1}'),
            delivery(shopify_shop.id, "d-2", b'{"id": 2}', event_id="e-2"),
            delivery(shopify_shop.id, "d-1", b'{"id": 1}'),  # Shopify retried d-1
            delivery(shopify_shop.id, "d-3", b'{"id": 2}', event_id="e-2"),  # same event again
        ]
    )
    first, second, again, same_event = answers
    assert not isinstance(first, BaseException)
    assert not isinstance(second, BaseException)
    assert not first.duplicate
    assert first.outcome is EventOutcome.PENDING
    assert first.detail == PENDING_DETAIL
    assert not isinstance(again, BaseException)
    assert again.duplicate
    assert again.event_id == first.event_id
    assert not isinstance(same_event, BaseException)
    assert same_event.duplicate
    assert same_event.event_id == second.event_id
    assert stored_rows(app) == [("d-1", EventOutcome.PENDING), ("d-2", EventOutcome.PENDING)]
    with services(app).engine.connect() as connection:
        kept = connection.scalar(sa.select(sa.func.count()).select_from(LedgerContent))
    assert kept == 2


def test_one_spoiled_delivery_does_not_refuse_its_neighbours(
    app: Flask, shopify_shop: Shop
) -> None:
    store = services(app).pending
    answers = store.store_batch(
        [
            delivery(shopify_shop.id, "d-1", b'{"id": 1}'),
            delivery(shopify_shop.id + 1000, "d-2", b'{"id": 2}'),  # names no shop
            delivery(shopify_shop.id, "d-3", b'{"id": 3}'),
        ]
    )
    assert isinstance(answers[1], IntegrityError)
    assert [type(answer).__name__ for answer in (answers[0], answers[2])] == ["Stored"] * 2
    assert stored_rows(app) == [("d-1", EventOutcome.PENDING), ("d-3", EventOutcome.PENDING)]
    with services(app).engine.connect() as connection:
        bodies = set(connection.scalars(sa.select(LedgerContent.content)))
    assert bodies == {b'{"id": 1}', b'{"id": 3}'}  # the refused body was not kept either


def test_a_lone_spoiled_delivery_raises_to_its_caller(app: Flask, shopify_shop: Shop) -> None:
    with pytest.raises(IntegrityError):
        services(app).pending.store_batch([delivery(shopify_shop.id + 1000, "d-9", b"{}")])
    assert stored_rows(app) == []
