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
    __slots__ = ("done", "failure", "item", "result", "wake")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.failure: BaseException | None = None
        self.done = False
        # Held until this caller is answered or made leader: released once, by the one waking it.
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommit(Generic[Item, Result]):
    """Runs `commit` over the items waiting, at most `max_batch` at a time, one batch at a time.

    `commit` answers each item with its result or the exception that item alone raised; an
    exception out of `commit` itself is every item's answer (the database went away). Each
    waiting caller is woken once, by name: when its answer is in, or when it is to lead.
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
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Callers whose items no commit has taken yet."""
        with self._lock:
            return len(self._waiting)

    def submit(self, item: Item) -> Result:
        slot: _Slot[Item, Result] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            follow, self._leading = self._leading, True
        if follow:
            slot.wake.acquire()  # answered, or handed the lead
        if not slot.done:
            self._lead(slot)
        if slot.failure is not None:
            raise slot.failure
        return slot.result  # type: ignore[return-value]

    def _lead(self, own: _Slot[Item, Result]) -> None:
        """Commit batch after batch until `own` is answered, then hand the lead on (or drop it)."""
        while True:
            with self._lock:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            try:
                answers = self._commit([slot.item for slot in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"{len(answers)} answers for a batch of {len(batch)}")
            except BaseException as failure:  # every caller in the batch hears it
                answers = [failure] * len(batch)
            for slot, answer in zip(batch, answers, strict=True):
                if isinstance(answer, BaseException):
                    slot.failure = answer
                else:
                    slot.result = answer
                slot.done = True
                if slot is not own:
                    slot.wake.release()
            if own.done:
                with self._lock:
                    if self._waiting:
                        self._waiting[0].wake.release()  # the oldest waiting caller leads next
                    else:
                        self._leading = False
                return
