"""Group commit: requests that arrive while a commit is under way share the next one.

A commit costs a disk flush (and, on SQLite, the one writer's turn); under a burst most of a
webhook's time went to waiting for those. Each caller still returns only after the commit that
holds its own row, so an answer never runs ahead of the disk (invariant 1). There is no thread
of its own and no timer: the first caller to find no commit in progress leads, takes everyone
waiting, commits them together and wakes them; alone, a caller leads its own batch at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Slot(Generic[Item, Result]):
    __slots__ = ("done", "failure", "item", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.failure: BaseException | None = None
        self.done = False


class GroupCommit(Generic[Item, Result]):
    """Runs `commit` over the items waiting, at most `max_batch` at a time, one batch at a time.

    `commit` answers each item with its result or the exception that item alone raised; an
    exception out of `commit` itself is every item's answer (the database went away).
    """

    def __init__(
        self,
        commit: Callable[[list[Item]], Sequence[Result | BaseException]],
        *,
        max_batch: int = 64,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit = commit
        self._max_batch = max_batch
        self._waiting: list[_Slot[Item, Result]] = []
        self._leading = False
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        """Callers whose items no commit has taken yet."""
        with self._changed:
            return len(self._waiting)

    def submit(self, item: Item) -> Result:
        slot: _Slot[Item, Result] = _Slot(item)
        with self._changed:
            self._waiting.append(slot)
            while not slot.done:
                if self._leading:
                    self._changed.wait()
                else:
                    self._lead()
        if slot.failure is not None:
            raise slot.failure
        return slot.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit the oldest waiting batch, with the lock released while the commit runs."""
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        self._leading = True
        self._changed.release()
        try:
            answers: Sequence[Result | BaseException] = self._commit([s.item for s in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for a batch of {len(batch)}")
        except BaseException as failure:
            answers = [failure] * len(batch)
        finally:
            self._changed.acquire()
            self._leading = False
        for slot, answer in zip(batch, answers, strict=True):
            if isinstance(answer, BaseException):
                slot.failure = answer
            else:
                slot.result = answer
            slot.done = True
        self._changed.notify_all()
