"""Planning one generator run: the latent cache, the tokenizer that made it, its MLflow run, the held-out reals
and the DiT, checked once before any Ray or MLflow write. Each problem is one GenerationError line.

The plan is what the driver and every worker read; the tokenizer's files travel beside it (they can be large),
as `plan_generation`'s second result.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.shard_manifest import read_shard_manifest
from data_prep.storage import open_store
from vitok.generation import DiTConfig, DiTStats, LatentStats, dit_stats
from vitok.generation.swd import MIN_RESOLUTION
from workflows.config import GenerationConfig
from workflows.generation.errors import GenerationError
from workflows.latents.errors import LatentsError
from workflows.latents.latent_manifest import read_latent_manifest
from workflows.latents.manifest import STATS
from workflows.latents.tokenizer import Tokenizer, load_tokenizer
from workflows.tracking import run_by_id, tracking_client
from workflows.training.plan import RunPlan

# Params of the tokenizer's own run copied onto the generator run (as `tokenizer.<key>`), so that one run's
# params answer "which tokenizer, how big, trained how long" beside the generator's own.
TOKENIZER_RUN_PARAMS = ("E", "input", "params", "encoder_params", "decoder_params", "gmacs", "train.stage",
                        "train.steps")  # fmt: skip


@dataclass(frozen=True)
class GenerationPlan:
    config: GenerationConfig
    latents: str  # the latent cache's root: an absolute folder or s3://bucket/prefix
    latent_shards: tuple[str, ...]  # URIs of its shards of config.media_type that hold train latents
    latent_dtype: str  # storage dtype of the cache (float16, bfloat16 or float32)
    latent_shape: tuple[int, int, int, int]  # (T', H', W', c) of one latent
    stats: LatentStats  # latent_stats.json
    dit_config: DiTConfig  # the variant, with c and the number of classes of the latents
    dit_stats: DiTStats  # on the latent grid: params, GMACs, tokens
    train_rows: int  # train latents of config.media_type
    shards: str  # the tubelet shards whose val split holds the held-out reals
    pixels: tuple[int, int, int]  # (T, H, W) of those tubelets, which the tokenizer decodes latents back to
    samples: int  # N: generated and real samples scored, min(config.samples, the val tubelets)
    tokenizer: dict[str, Any]  # the latent manifest's description: reference, variant, p, q, weights_sha256
    tokenizer_run: dict[str, Any]  # run_id, name and TOKENIZER_RUN_PARAMS of its MLflow run; {} without one
    parent_run_id: str | None  # the generator run's parent (the tokenizer's run, usually); None: top level
    experiment_id: str | None  # the parent's experiment (a child lives beside its parent); None: the caller's

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def conditional(self) -> bool:
        return self.dit_config.num_classes > 0

    @property
    def cfg_applied(self) -> float:
        """The guidance scale sampling uses: the configured one, or 1 (none) for unconditional latents."""
        return self.config.cfg_scale if self.conditional else 1.0

    @property
    def latent_bytes(self) -> int:
        """Bytes of one latent as the workers hold it (float32)."""
        return math.prod(self.latent_shape) * 4

    @property
    def train_streams(self) -> bool:
        """Whether the train latents are too many to read once up front (then they stream beside the workers)."""
        return self.train_rows * self.latent_bytes > self.config.cache_max_bytes

    @property
    def feature_networks(self) -> dict[str, str]:
        """Metric name -> configured TorchScript network: gFID (per frame) with Inception, gFVD (video) with I3D."""
        weights, nets = self.config.weights, {}
        if weights.inception:
            nets["gen_fid"] = weights.inception
        if weights.i3d and self.pixels[0] > 1:
            nets["gen_fvd"] = weights.i3d
        return nets

    def params(self) -> dict[str, Any]:
        """The generator run's MLflow params: its config, the DiT, the latents and the tokenizer's numbers."""
        frames, height, width, channels = self.latent_shape
        tokens = frames * height * width
        c = self.config
        return {
            **c.flat(),
            "generator": self.dit_config.name,
            "dit_params": self.dit_stats.params,
            "dit_gmacs": self.dit_stats.gmacs,
            "dit_tokens": self.dit_stats.tokens,
            "E": tokens * channels,
            "L": tokens,
            "c": channels,
            "p": self.tokenizer["patch_size"],
            "q": self.tokenizer["tubelet_size"],
            "latent_grid": f"{frames}x{height}x{width}",
            "input": "x".join(map(str, self.pixels)),
            "tokenizer": self.tokenizer_run.get("name") or self.tokenizer["reference"],
            "tokenizer.variant": self.tokenizer["variant"],
            "tokenizer.weights_sha256": self.tokenizer["weights_sha256"],
            **({"tokenizer.run_id": self.tokenizer_run["run_id"]} if self.tokenizer_run else {}),
            **{f"tokenizer.{k}": v for k, v in self.tokenizer_run.get("params", {}).items()},
            "latents": self.latents,
            "latent_dtype": self.latent_dtype,
            "train_latents": self.train_rows,
            "conditional": self.conditional,
            "num_classes": self.dit_config.num_classes,
            "cfg_applied": self.cfg_applied,
            "world_size": c.num_workers,
            "global_batch_size": c.global_batch_size,
            "gfid": "on" if "gen_fid" in self.feature_networks else "off",
            "gfvd": "on" if "gen_fvd" in self.feature_networks else "off",
        }


def plan_generation(
    config: GenerationConfig,
    latents: str,
    tracking_uri: str,
    tokenizer_run: str | None = None,
    tokenizer: str | None = None,
    parent_run: str | None = None,
    shards: str | None = None,
    tokenizer_plan: RunPlan | None = None,
) -> tuple[GenerationPlan, dict[str, bytes]]:
    """(the plan, the tokenizer's files) for training `config` on the latent cache at `latents`.

    The tokenizer is named either by its MLflow run (`tokenizer_run`: its `model/` export; the run becomes the
    parent) or by a reference as workflows/cache_latents.py takes one (`tokenizer`: folder, s3://, runs:/,
    models:/), with `parent_run` as the parent (None: a top-level run). Either way it must be the tokenizer
    whose weights made the latents. `shards` (default: the tubelet shards the cache was made from) supplies
    the held-out reals. `tokenizer_plan`, the plan the tokenizer run was trained from (a sweep's probe has it),
    supplies the tokenizer's name and numbers; without it they are read back from its run's params.
    Raises GenerationError, one line, for anything that would fail later.
    """
    if bool(tokenizer_run) == bool(tokenizer):
        raise GenerationError("name the tokenizer once: by its MLflow run (tokenizer run id) or by a reference")
    store = open_store(_absolute(latents), s3.S3Settings())
    try:
        manifest = read_latent_manifest(store)
    except LatentsError as err:
        raise GenerationError(f"latents {err}") from None
    stats = _latent_stats(store)
    media = config.media_type
    if media not in manifest.latent_shapes:
        have = ", ".join(manifest.latent_shapes)
        raise GenerationError(f"latents {store.root}: no {media} latents (it has {have}); set media_type")
    shape = manifest.latent_shapes[media]
    shards_of_media = manifest.shards_of(media, "train")
    train_rows = sum(s.train_rows for s in shards_of_media)
    if train_rows < config.global_batch_size:
        raise GenerationError(f"latents {store.root}: {train_rows} {media} train latents, fewer than one batch "
                              f"({config.micro_batch_size} x {config.num_workers} workers)")  # fmt: skip
    if stats.channels != shape[-1]:
        raise GenerationError(f"latents {store.root}: {STATS} has {stats.channels} channels, the latents {shape[-1]}")
    num_classes = len(manifest.label_names or ())
    dit_config, size = _dit(config, shape, num_classes, store.root)

    tok, parent_run_id, run_info = _tokenizer(tracking_uri, tokenizer_run, tokenizer, parent_run, tokenizer_plan)
    made_by = manifest.tokenizer
    if tok.weights_sha256 != made_by["weights_sha256"]:
        raise GenerationError(f"tokenizer {tok.reference}: not the tokenizer that made the latents in {store.root} "
                              f"(those were encoded by {made_by['reference']})")  # fmt: skip
    experiment_id = None
    if parent_run_id is not None:
        experiment_id = _run(tracking_uri, parent_run_id, "parent run").info.experiment_id

    shards_root = _absolute(shards or manifest.tubelets.root)
    pixels, val_rows = _reference(shards_root, manifest.tubelets.tubelet_shape(media), media)
    if val_rows < 2:
        raise GenerationError(f"shards {shards_root}: {val_rows} {media} val tubelets; the metrics need at least 2 "
                              "held-out reals")  # fmt: skip
    for key, location in (("inception", config.weights.inception), ("i3d", config.weights.i3d)):
        if location and "://" not in location and not Path(location).is_file():
            raise GenerationError(f"weights.{key} {location}: no such file")
    plan = GenerationPlan(
        config=config, latents=store.root, latent_shards=tuple(store.uri(s.path) for s in shards_of_media),
        latent_dtype=manifest.dtype, latent_shape=shape, stats=stats, dit_config=dit_config, dit_stats=size,
        train_rows=train_rows, shards=shards_root, pixels=pixels, samples=min(config.samples, val_rows),
        tokenizer={**made_by, "reference": tok.reference}, tokenizer_run=run_info, parent_run_id=parent_run_id,
        experiment_id=experiment_id,
    )  # fmt: skip
    return plan, tok.files


def _absolute(location: str) -> str:
    return location.rstrip("/") if s3.is_s3(location) else os.path.abspath(location)


def _read_json(store, name: str, missing: str) -> dict:
    if not store.exists(name):
        raise GenerationError(missing)
    try:
        return json.loads(store.read_bytes(name))
    except (OSError, ValueError) as err:
        raise GenerationError(f"{store.uri(name)}: unreadable ({err})") from None


def _latent_stats(store) -> LatentStats:
    data = _read_json(store, STATS, f"latents {store.root}: no {STATS}, so the latents cannot be normalised "
                      "(rerun workflows/cache_latents.py into this output to write it)")  # fmt: skip
    try:
        return LatentStats.from_dict(data)
    except ValueError as err:  # e.g. a cache without train latents has no statistics
        raise GenerationError(f"{store.uri(STATS)}: {err}") from None


def _dit(config: GenerationConfig, shape: tuple, num_classes: int, root: str) -> tuple[DiTConfig, DiTStats]:
    try:
        dit_config = DiTConfig.from_name(config.model, channels=shape[-1], num_classes=num_classes)
        return dit_config, dit_stats(dit_config, shape[:3])
    except ValueError as err:
        raise GenerationError(f"generation.model {config.model}: {err}; latents {root} are "
                              f"{'x'.join(map(str, shape))} ({config.media_type})") from None  # fmt: skip


def _run(tracking_uri: str, run_id: str, role: str):
    """The run `run_id` in the store at `tracking_uri`, opened only here: a command rejected before any lookup
    leaves no store behind (opening a SQLite store creates its file)."""
    try:
        return run_by_id(tracking_client(tracking_uri), run_id)
    except LookupError as err:
        raise GenerationError(f"{role} {run_id}: {err}") from None


def _tokenizer(tracking_uri: str, tokenizer_run: str | None, reference: str | None, parent_run: str | None,
               plan: RunPlan | None) -> tuple[Tokenizer, str | None, dict[str, Any]]:
    """(the tokenizer, the parent run id, what its own run says: run_id, name, params; {} without a run)."""
    if tokenizer_run:
        _run(tracking_uri, tokenizer_run, "tokenizer run")
        reference = f"runs:/{tokenizer_run}/model"
        parent_run = parent_run or tokenizer_run
    try:
        tok = load_tokenizer(reference, tracking_uri)
    except LatentsError as err:
        raise GenerationError(str(err)) from None
    run_id = tokenizer_run or tok.registry.get("run_id")
    if not run_id:
        return tok, parent_run, {}
    if plan is not None:
        params = plan.params()
        return tok, parent_run, {"run_id": run_id, "name": plan.name,
                                 "params": {k: params[k] for k in TOKENIZER_RUN_PARAMS}}  # fmt: skip
    run = _run(tracking_uri, run_id, "tokenizer run")
    params = {k: run.data.params[k] for k in TOKENIZER_RUN_PARAMS if k in run.data.params}
    return tok, parent_run, {"run_id": run_id, "name": run.info.run_name, "params": params}


def _reference(shards: str, expected: tuple[int, int, int], media: str) -> tuple[tuple[int, int, int], int]:
    """((T, H, W) of the tubelets, their val rows) of `media` in the shards, which must be shaped as the ones
    the latents were made from (the samples are decoded to that shape)."""
    try:
        manifest = read_shard_manifest(shards)
    except DataPrepError as err:
        raise GenerationError(f"shards {err}") from None
    pixels = manifest.tubelet_shape(media)
    if pixels != expected:
        raise GenerationError(f"shards {shards}: {media} tubelets are {'x'.join(map(str, pixels))}, the latents were "
                              f"made from {'x'.join(map(str, expected))} ones")  # fmt: skip
    if pixels[1] < MIN_RESOLUTION:
        raise GenerationError(f"shards {shards}: {pixels[1]}x{pixels[2]} frames are below the {MIN_RESOLUTION}x"
                              f"{MIN_RESOLUTION} the sliced Wasserstein distance needs")  # fmt: skip
    val_rows = manifest.rows(media, "val")
    return pixels, val_rows
