"""Producing a sequence in a thread of its own, ahead of the code that consumes it.

For a sequential producer (the twin's generator: day t needs day t - 1 and one random
stream) whose consumer does as much work again (scores, interpolation, files): NumPy
releases the GIL in its array operations, FFTs and BLAS calls, so the two share two cores.
The items and their order are those of the sequence itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items``, produced by a background thread up to ``depth`` items ahead.

    An exception of the producer is raised here, at the item it failed on. Closing the
    iterator early (the consumer's own error, a kill's KeyboardInterrupt) stops the
    producer after its current item; it is joined before this returns.
    """
    if depth < 1:
        raise ValueError(f"read_ahead: depth must be at least 1, not {depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((True, _END))
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, raised there)
            offer((False, exc))

    worker = threading.Thread(target=produce, name="read_ahead", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = ready.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
