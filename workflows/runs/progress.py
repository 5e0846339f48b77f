"""Following a run from the driver: one console line per logged step (config, step/total, loss,
samples/s, ETA), read from the run's MLflow metrics.

Rank 0 already logs those metrics; reading them back from the driver works the same on a laptop and on a
cluster, and needs none of the workers' output on the console (which quiet mode keeps in Ray's logs).
"""

from __future__ import annotations

import threading
import time

from workflows.runtime.console import say
from workflows.tracking import MlflowClient, end_run, log_metrics, metric_history

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


class ProgressFollower:
    """A daemon thread printing each newly logged `train_loss` step of `run_id` until `stop()`."""

    def __init__(self, client: MlflowClient, run_id: str, name: str, total_steps: int, global_batch: int):
        self.client, self.run_id, self.name = client, run_id, name
        self.total_steps, self.global_batch = total_steps, global_batch
        self.shown = 0  # the last step printed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"progress-{name}", daemon=True)

    def __enter__(self) -> "ProgressFollower":
        self.shown = max((step for step, _ in metric_history(self.client, self.run_id, "train_loss")), default=0)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS * 5)
        self.poll()  # the steps logged since the last poll

    def poll(self) -> None:
        new = [(step, loss) for step, loss in metric_history(self.client, self.run_id, "train_loss")
               if step > self.shown]  # fmt: skip
        if not new:
            return
        rates = dict(metric_history(self.client, self.run_id, "samples_per_s"))
        for step, loss in new:
            say(progress_line(self.name, step, self.total_steps, loss, rates.get(step), self.global_batch))
            self.shown = step

    def _follow(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a missed poll only delays a progress line
                continue


def fit_followed(trainer, client: MlflowClient, run_id: str, name: str, steps: int, global_batch: int):
    """`trainer.fit()` (a Ray Train trainer) with its progress lines followed from MLflow run `run_id`: the run is
    marked FAILED when the fit raises, and `wall_time_s` is logged when it returns. Returns (result, wall s)."""
    start = time.perf_counter()
    try:
        with ProgressFollower(client, run_id, name, steps, global_batch):
            result = trainer.fit()
    except Exception:
        end_run(client, run_id, failed=True)
        raise
    wall = time.perf_counter() - start
    log_metrics(client, run_id, {"wall_time_s": wall})
    return result, wall
