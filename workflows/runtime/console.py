"""What the console shows: `say` prints our own lines; `configure_console` (data_prep.console, shared with
`python -m data_prep`) keeps the libraries quiet unless `--verbose`."""

from __future__ import annotations

import threading

from data_prep.console import configure_console

__all__ = ["configure_console", "say"]

_print_lock = threading.Lock()


def say(message: str) -> None:
    """One whole line on stdout, flushed, never interleaved with another thread's line."""
    with _print_lock:
        print(message, flush=True)
