"""What the console shows: by default a person's view (stage headers, progress, results), with `--verbose`
everything Ray, DeepSpeed and MLflow have to say. Every entry point calls `configure_console` first; it lives
in data_prep because `python -m data_prep` needs it too and data_prep never imports workflows.

Quiet mode works at four levels, each scoped to what it names: Ray keeps the workers' output in its log
files (`connect_ray(verbose=False)`); the chatty libraries' loggers are raised to WARNING and a few named
one-off notices to ERROR; MLflow's artifact progress bars are switched off by its own variable; and the
lines Ray writes straight to the process's stdout/stderr (its C++ core worker, the raylet's notices relayed
to the driver), which no logger controls, are dropped by a line filter on those file descriptors.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

import ray

# Loggers that report their internals at INFO on every run (Ray Train's controller, Ray Data's executor,
# MLflow's system-metrics sampler, DeepSpeed's engine).
CHATTY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "mlflow", "DeepSpeed", "deepspeed", "torch.distributed")

# Loggers whose WARNING is a notice, not a problem of this run: Ray's note that a local cluster enabled token
# authentication; Ray Data's note that its progress bars are off (we print our own progress), and its
# resource manager's "may hang" note, given while the actor pool's actors are still starting on a loaded
# machine (data prep's own progress lines show whether units are committed).
NOTICE_LOGGERS = ("ray._private.authentication.authentication_token_setup", "ray.data._internal.progress",
                  "ray.data._internal.execution.resource_manager")

# Lines written to the fds directly: the core worker's error that an actor pool's constructor arguments live
# in the object store (Ray Data's map_batches actors always do; harmless without actor restarts), and the
# raylet's note that a job started more Python workers than CPUs (Ray Data's and Ray Train's actors do).
NATIVE_NOISE = re.compile(r"has constructor arguments in the object store|PYTHON worker processes have been started")

_filters: list[FdLineFilter] = []


class FdLineFilter:
    """Routes file descriptor `fd` through a pipe and copies every line that `drop` does not match to where
    `fd` pointed before. `close` puts `fd` back and copies what is left (also at exit, via atexit, so a
    traceback printed at exit still comes through)."""

    def __init__(self, fd: int, drop: re.Pattern):
        self.fd, self.drop = fd, drop
        self.saved = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self.reader = threading.Thread(target=self._copy, args=(read_end,), name=f"console-filter-{fd}",
                                       daemon=True)
        self.reader.start()

    def _copy(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:  # bytes up to and including b"\n"; a last line without one at EOF
                if self.drop.search(line.decode("utf-8", "replace")):
                    continue
                try:
                    while line:
                        line = line[os.write(self.saved, line):]
                except OSError:  # the console went away (`| head` exited): keep draining so no writer blocks
                    continue

    def close(self) -> None:
        os.dup2(self.saved, self.fd)  # the pipe's last write end goes: the reader sees EOF after the rest
        self.reader.join(timeout=5)
        os.close(self.saved)


def filter_native_output() -> None:
    """Installs the line filter on stdout and stderr, once, in a driver before it connects to Ray. Not in a
    Ray worker (training loops call `configure_console` too), whose output goes to Ray's log files whole, nor
    under pytest, which captures the same fds itself."""
    if _filters or ray.is_initialized() or "PYTEST_CURRENT_TEST" in os.environ:
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        _filters.append(FdLineFilter(stream.fileno(), NATIVE_NOISE))
    atexit.register(_close_filters)


def _close_filters() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    while _filters:
        _filters.pop().close()


def quiet_third_party_warnings() -> None:
    """Filters the third-party warnings that repeat on every step or every run (not our own)."""
    # DeepSpeed's ZeRO calls torch.distributed's deprecated collectives on every step.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"deepspeed(\.|$)")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.distributed(\.|$)")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.distributed(\.|$)")
    # Ray's deprecation notes about its own APIs, and pydantic/setuptools notes from libraries' imports.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
    warnings.filterwarnings("ignore", message=r".*pkg_resources is deprecated.*")


def configure_console(verbose: bool) -> None:
    """The driver's console: our own lines at INFO; the libraries quiet (see the module's doc) unless
    `verbose`. Call it first, before the heavy imports and before Ray starts: the variables it sets are read
    by MLflow and Ray Data when they are imported, and reach Ray's worker processes too."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if verbose:
        return
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in NOTICE_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # MLflow and Ray Data set their loggers' levels when they are imported, which commands do after their checks,
    # so the levels are also given where those imports read them (the workers Ray starts inherit them too).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    # MLflow draws a tqdm bar for every artifact download (the report reads each run's per-sample values).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    quiet_third_party_warnings()
    filter_native_output()
