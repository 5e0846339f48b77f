"""Planning one training run: the config, the model it resolves to and what the data says, checked once.

The plan is made before any Ray, DeepSpeed or MLflow work; everything after it (the driver, the workers,
the sweep's table) reads the plan instead of resolving the config again. Planning never changes the
config it is given: a plan holds a new config where it has to make a location absolute.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from data_prep.shard_manifest import read_shard_manifest
from vitok import ModelStats, ViTokConfig, model_stats
from vitok.checkpoint import CONFIG_NAME, resolve_path
from vitok.config import check_input_shape
from workflows.config import ConfigError, TrainConfig, absolute_location
from workflows.training.deepspeed_config import deepspeed_config


@dataclass(frozen=True)
class RunPlan:
    """A validated config, the model it resolves to, and what the data and the model say about it."""

    config: TrainConfig
    model_config: ViTokConfig  # stage 1: from the variant; stage 2: the stage-1 export's own config
    frames: int
    resolution: int
    stats: ModelStats  # params, GMACs, tokens L, c, E, p, q
    train_rows: int
    val_rows: int  # 0: the shards have no held-out split, so the run records no eval metrics

    @property
    def name(self) -> str:
        return self.config.name

    def params(self) -> dict[str, Any]:
        """The run's MLflow params: the flattened config and the resolved model's numbers."""
        s, c = self.stats, self.config
        return {
            **c.flat(),
            "E": s.E,
            "L": s.tokens,
            "c": s.channels,
            "p": s.patch,
            "q": s.tubelet,
            "input": f"{self.frames}x{self.resolution}x{self.resolution}",
            "params": s.params,
            "encoder_params": s.encoder_params,
            "decoder_params": s.decoder_params,
            "gmacs": round(s.gmacs, 4),
            "world_size": c.train.num_workers,
            "zero_stage": c.train.zero_stage,
            "global_batch_size": c.train.global_batch_size,
            "peak_lr": c.peak_lr,
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "lpips": "on" if self.lpips_active else "off",
            "rfid": "on" if c.weights.inception else "off",
            "rfvd": "on" if c.weights.i3d and self.frames > 1 else "off",
        }

    @property
    def lpips_active(self) -> bool:
        """LPIPS is a training term only when it has a weight and its network's weights are configured."""
        return bool(self.config.weights.lpips) and self.config.optim.lpips_weight > 0

    def with_init_from(self, location: str) -> "RunPlan":
        """The same plan starting from `location` (a sweep fills in a stage-1 run's export once it exists)."""
        train = dataclasses.replace(self.config.train, init_from=location)
        return dataclasses.replace(self, config=dataclasses.replace(self.config, train=train))


def resolve_model_config(config: TrainConfig) -> ViTokConfig:
    """The model a config trains: its variant and channels, or the config.json of the export it starts from
    (`train.init_from`: the model is the export's, whatever the variant says)."""
    if config.train.init_from:
        try:
            exported = json.loads((resolve_path(config.train.init_from) / CONFIG_NAME).read_text())
            return ViTokConfig.from_dict(exported)
        except (OSError, ValueError, TypeError) as err:
            raise ConfigError(f"train.init_from {config.train.init_from}: no readable {CONFIG_NAME} ({err})") from None
    try:
        return ViTokConfig.from_name(config.model.variant, channels=config.model.channels)
    except ValueError as err:
        raise ConfigError(f"model.variant: {err}") from None


def plan_for_input(config: TrainConfig, model_config: ViTokConfig, frames: int, resolution: int,
                   train_rows: int = 0, val_rows: int = 0) -> RunPlan:
    """A plan for an input shape; checks that the model's tubelet divides it."""
    check_input_shape(model_config, frames, resolution, resolution)
    stats = model_stats(model_config, frames, resolution, resolution)
    return RunPlan(config, model_config, frames, resolution, stats, train_rows, val_rows)


def plan_run(config: TrainConfig, where: str = "") -> RunPlan:
    """Checks the variant, the shards, the input shape and the DeepSpeed config, with one-line errors
    naming `where` (e.g. the sweep file) and the run, before any work."""
    prefix = f"{where}: run '{config.name}'" if where else f"run '{config.name}'"
    try:
        return _plan(config)
    except ValueError as err:  # ConfigError, DataPrepError and vitok's errors are all ValueErrors
        raise ConfigError(f"{prefix}: {err}") from None


def _plan(config: TrainConfig) -> RunPlan:
    if config.train.init_from:  # workers run in another folder: the export's location must be absolute
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, init_from=absolute_location(config.train.init_from))
        )
    model_config = resolve_model_config(config)
    deepspeed_config(config, config.train.num_workers)
    manifest = read_shard_manifest(config.data.shards)
    train_rows = manifest.rows(config.data.media_type, "train")
    val_rows = manifest.rows(config.data.media_type, "val")
    if train_rows < config.train.micro_batch_size * config.train.num_workers:
        raise ConfigError(
            f"{config.data.shards} has {train_rows} {config.data.media_type} train tubelets, "
            f"fewer than one micro-batch per worker ({config.train.micro_batch_size} x {config.train.num_workers})"
        )
    frames, size, _ = manifest.tubelet_shape(config.data.media_type)
    resolution = config.data.crop or size
    if resolution > size:
        raise ConfigError(f"data.crop {resolution} is larger than the shards' size {size}")
    return plan_for_input(config, model_config, frames, resolution, train_rows, val_rows)
