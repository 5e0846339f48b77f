"""Sweep files: a YAML `base` config plus a list of `runs`, each a partial override of the base.

    sweep: smoke                 # the sweep's name: the MLflow parent run
    experiment: vitok-smoke      # the MLflow experiment
    base: {model: {variant: N-N/8}, data: {shards: work/shards}, train: {steps: 40}}
    runs:
      - {name: c4, model: {channels: 4}}
      - {name: c16, model: {channels: 16}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workflows.config import ConfigError, TrainConfig, deep_merge

SWEEP_KEYS = {"sweep", "experiment", "base", "runs"}


@dataclass
class Sweep:
    name: str
    experiment: str
    configs: list[TrainConfig]
    source: str


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> Sweep:
    """Reads and validates a sweep file; `overrides` (nested dict) is applied to every run."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_sweep(raw, str(path), overrides)


def parse_sweep(raw: Any, source: str, overrides: dict[str, Any] | None = None) -> Sweep:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with keys {sorted(SWEEP_KEYS)}")
    unknown = sorted(set(raw) - SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (known: {', '.join(sorted(SWEEP_KEYS))})")
    for key, kind in (("sweep", str), ("experiment", str), ("runs", list)):
        if not isinstance(raw.get(key), kind):
            raise ConfigError(f"{source}: '{key}' must be a {kind.__name__}")
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"{source}: 'base' must be a mapping")
    if not raw["runs"]:
        raise ConfigError(f"{source}: 'runs' is empty")
    configs, seen = [], set()
    for index, run in enumerate(raw["runs"]):
        where = f"{source}: runs[{index}]"
        if not isinstance(run, dict) or not isinstance(run.get("name"), str):
            raise ConfigError(f"{where}: each run needs a 'name'")
        if run["name"] in seen:
            raise ConfigError(f"{where}: duplicate run name '{run['name']}'")
        seen.add(run["name"])
        merged = deep_merge(deep_merge(base, run), overrides or {})
        configs.append(TrainConfig.from_dict(merged, where=where))
    return Sweep(name=raw["sweep"], experiment=raw["experiment"], configs=configs, source=source)
