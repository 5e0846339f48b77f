"""Batch inference over the kit's Ray Data fan-out (data_prep/exactly_once/fan_out.py): tokenizer actors,
each loading the tokenizer once and then encoding and committing one latent unit per call.

GPU clusters get one actor per GPU (`num_gpus` per actor, default 1). CPU-only clusters get one actor per
usable core, each running torch on its share of the cores, so the cores are used once each and never
oversubscribed.
"""

from __future__ import annotations

import os

import ray
import torch

from data_prep.exactly_once.fan_out import Progress, UnitWorker, fan_out
from data_prep.ray_session import connect_ray, usable_cpus
from data_prep.s3 import S3Settings
from data_prep.storage import open_store
from workflows.latents.commit import commit_latent_unit
from vitok import ViTok
from workflows.latents.encode import LatentEncoder
from workflows.latents.params import LatentParams
from workflows.latents.units import LatentUnit

PROGRESS = Progress(noun="shards", counts=("latents",))


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
    connect_ray(verbose)  # before counting the cluster's GPUs and CPUs; a no-op when already connected
    if gpus_per_actor:
        actors = concurrency or max(1, int(ray.cluster_resources().get("GPU", 0) / gpus_per_actor))
    else:
        actors = concurrency or usable_cpus()
    actors = max(1, min(actors, len(units)))
    threads = 1 if gpus_per_actor else max(1, usable_cpus() // actors)
    kwargs = {
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
    }
    fan_out([u.to_row() for u in units], TokenizerActor, kwargs, PROGRESS, actors=actors, num_cpus=threads,
            num_gpus=gpus_per_actor, verbose=verbose)  # fmt: skip


class TokenizerActor(UnitWorker):
    """Ray Data actor: loads the tokenizer once, then encodes and commits one unit per call."""

    def __init__(self, tokenizer: dict, output_root: str, tubelets_root: str, params: LatentParams,
                 settings: S3Settings, batch_size: int, threads: int, use_gpu: bool):  # fmt: skip
        device = torch.device("cuda" if use_gpu else "cpu")  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU
        if not use_gpu:
            torch.set_num_threads(threads)
        model = ViTok.from_files(ray.get(tokenizer["files"]), device)
        self.encoder = LatentEncoder(model, params.precision, batch_size, device)
        self.output = open_store(output_root, settings)
        self.tubelets = open_store(tubelets_root, settings)
        self.params = params

    def run(self, row: dict) -> dict[str, int]:
        record = commit_latent_unit(self.output, self.tubelets, LatentUnit.from_row(row), self.encoder, self.params)
        return {"latents": record["shard"]["rows"]}
