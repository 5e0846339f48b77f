"""Following a worker group's runs from the driver: one console line per logged step (config, step/total, loss,
samples/s, ETA), read from the running run's MLflow metrics, and each run's end as its MLflow run finishes.

Rank 0 already logs those metrics; reading them back from the driver works the same on a laptop and on a
cluster, and needs none of the workers' output on the console (which quiet mode keeps in Ray's logs).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from workflows.runtime.console import say
from workflows.tracking import MlflowClient, metric_history, run_by_id

POLL_SECONDS = 2.0


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def progress_line(name: str, step: int, total: int, loss: float, samples_per_s: float | None,
                  global_batch: int) -> str:
    line = f"[{name}] step {step}/{total}  loss {loss:.4g}"
    if samples_per_s:
        eta = (total - step) * global_batch / samples_per_s
        line += f"  {samples_per_s:.1f} samples/s  ETA {format_duration(eta)}"
    return line


@dataclass(frozen=True)
class Followed:
    """A run as its progress lines name it."""

    run_id: str
    name: str
    total_steps: int
    global_batch: int


class ProgressFollower:
    """A daemon thread that follows `runs` in turn while its `with` block lasts: it prints each newly logged
    `train_loss` step of the current run and, once that run is FINISHED (its workers have moved to the next),
    calls `finished(index)` and follows the next. The last run's end is the caller's: its fit returning (with
    Ray Train's shutdown) ends it."""

    def __init__(self, client: MlflowClient, runs: list[Followed], finished: Callable[[int], None]):
        self.client, self.runs, self.finished = client, runs, finished
        self.current = 0  # the index of the run being followed
        self.shown = 0  # the last step of it printed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"progress-{runs[0].name}", daemon=True)

    def __enter__(self) -> "ProgressFollower":
        history = metric_history(self.client, self.runs[0].run_id, "train_loss")
        self.shown = max((step for step, _ in history), default=0)  # a resumed run's lines were printed before
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS * 5)
        try:
            self.poll()  # the steps logged since the last poll
        except Exception:  # noqa: BLE001 - the caller reads the runs' ends from MLflow itself
            pass

    def poll(self) -> None:
        with self._lock:
            while True:
                run = self.runs[self.current]
                ended = run_by_id(self.client, run.run_id).info.status == "FINISHED"  # read before its last lines
                self._print_new(run)
                if not ended or self.current == len(self.runs) - 1:
                    return
                self.finished(self.current)
                self.current, self.shown = self.current + 1, 0

    def _print_new(self, run: Followed) -> None:
        new = [(step, loss) for step, loss in metric_history(self.client, run.run_id, "train_loss")
               if step > self.shown]  # fmt: skip
        if not new:
            return
        rates = dict(metric_history(self.client, run.run_id, "samples_per_s"))
        for step, loss in new:
            say(progress_line(run.name, step, run.total_steps, loss, rates.get(step), run.global_batch))
            self.shown = step

    def _follow(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a missed poll only delays a progress line
                continue


def fit_followed(trainer, client: MlflowClient, runs: list[Followed], finished: Callable[[int], None]):
    """`trainer.fit()` (a Ray Train trainer) with the progress of its `runs` followed from MLflow; `finished` is
    called for each run but the last as it ends (see ProgressFollower). Returns the fit's result, or the error
    it raised."""
    try:
        with ProgressFollower(client, runs, finished):
            return trainer.fit()
    except Exception as err:  # noqa: BLE001 - the caller reports it against the run that failed
        return err
