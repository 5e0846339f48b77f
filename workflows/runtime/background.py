"""One call started in a daemon thread, its result or exception delivered through a Future.

For the seconds-long openings a worker overlaps with building its engine (the MLflow store, the train split's
first batch). A daemon thread: a worker that fails meanwhile exits without waiting for it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

T = TypeVar("T")


def in_background(call: Callable[[], T], name: str) -> Future[T]:
    """Starts `call()` in a daemon thread named `name`; `.result()` returns its value or raises its exception."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as err:  # noqa: BLE001 - handed to whoever asks for the result, and raised there
            future.set_exception(err)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
