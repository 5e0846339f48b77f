"""Batch inference over Ray Data: a dataset of latent units mapped by tokenizer actors (`map_batches` with a
class), each loading the tokenizer once and then encoding and committing one unit per call.

GPU clusters get one actor per GPU (`num_gpus` per actor, default 1). CPU-only clusters get one actor per
usable core, each running torch on its share of the cores, so the cores are used once each and never
oversubscribed. As in data prep, progress is Ray Data's bars in a terminal and a plain log line every
PROGRESS_SECONDS elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import numpy as np
import ray
import torch

from data_prep.ray_session import connect_ray, usable_cpus
from data_prep.s3 import S3Settings
from data_prep.storage import open_store
from workflows.latents.commit import run_unit
from workflows.latents.encode import LatentEncoder, load_model
from workflows.latents.params import LatentParams
from workflows.latents.units import LatentUnit

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 10.0


def cluster_gpus(verbose: bool = False) -> int:
    """GPUs the actors could use: the cluster's when this process has joined one or runs as a submitted job,
    else this machine's (so a run that finds nothing to do never has to start Ray to know)."""
    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        connect_ray(verbose)
        return int(ray.cluster_resources().get("GPU", 0))
    return torch.cuda.device_count()


def encode_units(
    output_root: str,
    tubelets_root: str,
    units: list[LatentUnit],
    files: dict[str, bytes],
    params: LatentParams,
    settings: S3Settings,
    batch_size: int,
    concurrency: int,
    gpus_per_actor: float,
    verbose: bool = False,
) -> None:
    connect_ray(verbose)  # a no-op when a workflow has already connected
    interactive = sys.stderr.isatty()
    ray.data.DataContext.get_current().enable_progress_bars = interactive
    if gpus_per_actor:
        actors = concurrency or max(1, int(ray.cluster_resources().get("GPU", 0) / gpus_per_actor))
    else:
        actors = concurrency or usable_cpus()
    actors = max(1, min(actors, len(units)))
    threads = 1 if gpus_per_actor else max(1, usable_cpus() // actors)
    ds = ray.data.from_items([{"unit": json.dumps(u.to_row())} for u in units], override_num_blocks=len(units))
    results = ds.map_batches(
        TokenizerActor,
        fn_constructor_kwargs={
            # In a dict, so Ray hands the actor the reference rather than resolving it: the actor fetches
            # the weights from the object store once, when it starts.
            "tokenizer": {"files": ray.put(files)},
            "output_root": output_root,
            "tubelets_root": tubelets_root,
            "params": params,
            "settings": settings,
            "batch_size": batch_size,
            "threads": threads,
            "use_gpu": bool(gpus_per_actor),
        },
        batch_size=1,  # one unit per call: a unit is the grain of work and of commit
        num_cpus=threads,
        num_gpus=gpus_per_actor,
        compute=ray.data.ActorPoolStrategy(size=actors),
    )
    done: set[str] = set()
    latents = 0
    start = last = time.monotonic()
    for row in results.iter_rows():
        done.add(row["unit_id"])
        latents += int(row["latents"])
        now = time.monotonic()
        if not interactive and (now - last >= PROGRESS_SECONDS or len(done) == len(units)):
            last = now
            log.info("progress: %d/%d shards, %d latents, %.1f latents/s", len(done), len(units), latents,
                     latents / max(now - start, 1e-9))  # fmt: skip
    missing = [u.unit_id for u in units if u.unit_id not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} units did not report back: {missing[:3]}")


class TokenizerActor:
    """Ray Data actor: loads the tokenizer once, then encodes and commits one unit per call."""

    def __init__(self, tokenizer: dict, output_root: str, tubelets_root: str, params: LatentParams,
                 settings: S3Settings, batch_size: int, threads: int, use_gpu: bool):  # fmt: skip
        device = torch.device("cuda" if use_gpu else "cpu")  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU
        if not use_gpu:
            torch.set_num_threads(threads)
        model = load_model(ray.get(tokenizer["files"]), device)
        self.encoder = LatentEncoder(model, params.precision, batch_size, device)
        self.output = open_store(output_root, settings)
        self.tubelets = open_store(tubelets_root, settings)
        self.params = params

    def __call__(self, batch: dict) -> dict:
        ids, latents = [], []
        for raw in batch["unit"]:
            unit = LatentUnit.from_row(json.loads(raw))
            record = run_unit(self.output, self.tubelets, unit, self.encoder, self.params)
            ids.append(unit.unit_id)
            latents.append(record["shard"]["rows"])
        return {"unit_id": np.array(ids, dtype=object), "latents": np.array(latents)}
