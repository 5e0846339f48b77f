"""Fanning work units out over Ray Data actors, with progress a person or a CI log can follow.

One actor per CPU, each decoding with single-threaded decoders (decode_video.py), so the node's cores are
used once each and never oversubscribed. In a terminal Ray Data draws its progress bars; elsewhere (CI,
schedulers, `ray job` logs) the bars are switched off and a plain line is logged every PROGRESS_SECONDS.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import numpy as np
import ray

from data_prep.commit import run_unit
from data_prep.params import PrepParams
from data_prep.ray_session import connect_ray, usable_cpus
from data_prep.s3 import S3Settings
from data_prep.storage import open_store
from data_prep.units import WorkUnit

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 10.0


def fan_out(output_root: str, input_root: str, units: list[WorkUnit], params: PrepParams, settings: S3Settings) -> None:
    connect_ray()  # a no-op when a workflow has already connected
    interactive = sys.stderr.isatty()
    ray.data.DataContext.get_current().enable_progress_bars = interactive
    cpus = usable_cpus()
    # Longest first (video units decode far more pixels than image units), so the run does not end with
    # one worker busy on a long unit while the others idle. One block per unit, so units spread over workers.
    ordered = sorted(units, key=lambda u: u.media_type != "video")
    ds = ray.data.from_items([{"unit": json.dumps(u.to_row())} for u in ordered], override_num_blocks=len(units))
    results = ds.map_batches(
        _UnitWorker,
        fn_constructor_kwargs={
            "output_root": output_root,
            "input_root": input_root,
            "params": params,
            "settings": settings,
        },
        batch_size=1,  # one unit per call: a unit is already the grain of work and of commit
        num_cpus=1,  # one core per worker: the decoders run single-threaded (decode_video.py)
        compute=ray.data.ActorPoolStrategy(size=max(1, min(cpus, len(units)))),
    )
    done: set[str] = set()
    inputs = tubelets = 0
    start = last = time.monotonic()
    for row in results.iter_rows():
        done.add(row["unit_id"])
        inputs += int(row["inputs"])
        tubelets += int(row["tubelets"])
        now = time.monotonic()
        if not interactive and (now - last >= PROGRESS_SECONDS or len(done) == len(units)):
            last = now
            log.info(
                "progress: %d/%d units, %d inputs, %d tubelets, %.1f inputs/s",
                len(done), len(units), inputs, tubelets, inputs / max(now - start, 1e-9),
            )  # fmt: skip
    missing = [u.unit_id for u in units if u.unit_id not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} units did not report back: {missing[:3]}")


class _UnitWorker:
    """Ray Data actor: processes and commits one unit per call and returns its id and counts."""

    def __init__(self, output_root: str, input_root: str, params: PrepParams, settings: S3Settings):
        self.store = open_store(output_root, settings)
        self.input_root = input_root
        self.params = params
        self.settings = settings

    def __call__(self, batch: dict) -> dict:
        ids, inputs, tubelets = [], [], []
        for raw in batch["unit"]:
            unit = WorkUnit.from_row(json.loads(raw))
            stats = run_unit(self.store, self.input_root, unit, self.params, self.settings)["stats"]
            ids.append(unit.unit_id)
            inputs.append(stats["inputs_seen"])
            tubelets.append(stats["tubelets"])
        return {"unit_id": np.array(ids, dtype=object), "inputs": np.array(inputs), "tubelets": np.array(tubelets)}
