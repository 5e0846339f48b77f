"""Fanning work units out over Ray Data actors, with progress a person or a CI log can follow.

Each unit is one row and one block, handed to a pool of actors one unit per call (a unit is the grain of
work and of commit). In a terminal Ray Data draws its progress bars; elsewhere (CI, schedulers, `ray job`
logs) the bars are switched off and a plain line is logged every PROGRESS_SECONDS.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections import defaultdict

import numpy as np
import ray

from data_prep.ray_session import connect_ray

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Progress:
    """What the progress line counts: `noun` for units, then each of `counts` (the workers' result
    columns), with a rate of the first, e.g. "progress: 3/9 units, 40 inputs, 90 tubelets, 2.0 inputs/s"."""

    noun: str
    counts: tuple[str, ...]


class UnitWorker(ABC):
    """Base of the Ray Data actors: `run` commits one unit (its row) and returns its counts."""

    @abstractmethod
    def run(self, row: dict) -> dict[str, int]:
        """Commits the unit `row` describes (unless already committed) and returns its counts."""

    def __call__(self, batch: dict) -> dict:
        columns: dict[str, list] = defaultdict(list)
        for raw in batch["unit"]:
            row = json.loads(raw)
            counts = self.run(row)
            columns["unit_id"].append(row["unit_id"])
            for name, value in counts.items():
                columns[name].append(value)
        return {name: np.array(values, dtype=object if name == "unit_id" else None)
                for name, values in columns.items()}  # fmt: skip


def fan_out(
    rows: list[dict],
    worker: type[UnitWorker],
    worker_kwargs: dict,
    progress: Progress,
    *,
    actors: int,
    num_cpus: float,
    num_gpus: float = 0,
    verbose: bool = False,
) -> None:
    """Run `worker` over the unit `rows` (each with a "unit_id") on `actors` actors; RuntimeError when a
    unit does not report back."""
    connect_ray(verbose)  # a no-op when a workflow has already connected
    interactive = sys.stderr.isatty()
    ray.data.DataContext.get_current().enable_progress_bars = interactive
    ds = ray.data.from_items([{"unit": json.dumps(r)} for r in rows], override_num_blocks=len(rows))
    results = ds.map_batches(
        worker,
        fn_constructor_kwargs=worker_kwargs,
        batch_size=1,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(rows)))),
    )
    done: set[str] = set()
    totals = dict.fromkeys(progress.counts, 0)
    start = last = time.monotonic()
    for row in results.iter_rows():
        done.add(row["unit_id"])
        for name in progress.counts:
            totals[name] += int(row[name])
        now = time.monotonic()
        if not interactive and (now - last >= PROGRESS_SECONDS or len(done) == len(rows)):
            last = now
            counted = "".join(f", {totals[name]} {name}" for name in progress.counts)
            rate = totals[progress.counts[0]] / max(now - start, 1e-9)
            log.info("progress: %d/%d %s%s, %.1f %s/s", len(done), len(rows), progress.noun, counted, rate,
                     progress.counts[0])  # fmt: skip
    missing = [r["unit_id"] for r in rows if r["unit_id"] not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} units did not report back: {missing[:3]}")
