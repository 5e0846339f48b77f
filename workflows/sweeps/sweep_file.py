"""Sweep files: a YAML `base` config plus named `runs` and/or `axes` that expand into named runs.

    sweep: e-sweep-tiny          # the sweep's name: the MLflow parent run, and the key a rerun resumes by
    experiment: vitok-scaling    # the MLflow experiment
    study: e_sweep               # optional: which paper study this is (e_sweep, encoder_scaling,
                                 #   decoder_scaling, loss_tradeoff, video_e_sweep); picks the findings
    input: {frames: 1, size: 64} # optional: the input the study is designed for; checked against the
                                 #   shards' manifest, and used by --dry-run when the shards are elsewhere
    base: {model: {variant: N-N/8}, data: {shards: work/shards}, train: {steps: 40}}
    axes:
      grid: {model.channels: [4, 16, 64]}              # every combination of the listed values
      zip: {model.variant: [N-N/16], model.channels: [64]}  # lists of equal length, taken together
    runs:                        # explicit runs (partial overrides of base), kept as before
      - {name: c8, model: {channels: 8}}

`grid` and `zip` combine as a product (each zip row with each grid point); a sweep with only `zip` is
its rows. `axes` may also be a list of such blocks: their runs are concatenated (e.g. a grid over c for
p = 8 plus a zip of matched-E points at p = 16). A run made from axes is named from its values (`N-N-8_c4`), stably, so a rerun finds it again.
`train.init_from: "@NAME"` points a stage-2 run at the export of run NAME of the same sweep; the sweep
runs NAME first.

    seeds: [0, 1, 2]             # optional: every config once per seed, as NAME-s0, NAME-s1, NAME-s2

`seeds` (distinct non-negative ints) repeats every config with `train.seed` set to each seed, so that the
report measures training noise: replicates share everything but name and seed, and their spread enters every
interval. A stage-2 replicate's `init_from: "@NAME"` points at NAME's replicate of the same seed.

    generation: {model: DiT-N/1, steps: 300, micro_batch_size: 16, samples: 64, cfg_scale: 1.5}

An optional `generation:` block (workflows.config.GenerationConfig) adds the generation probe: after each
tokenizer config finishes, its latents are cached, a DiT trains on them and its samples are scored, in a
generator run under the tokenizer's run. The block's `media_type` defaults to each config's
`data.media_type`, and its `weights` to the config's (so gFID / gFVD come with rFID / rFVD).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workflows.config import ConfigError, GenerationConfig, TrainConfig, deep_merge

SWEEP_KEYS = {"sweep", "experiment", "study", "input", "base", "runs", "axes", "generation", "seeds"}
STUDIES = ("e_sweep", "encoder_scaling", "decoder_scaling", "loss_tradeoff", "video_e_sweep", "e_generation")
AXIS_KINDS = {"grid", "zip"}
# Short labels for run names built from axis values; other keys use their last segment.
AXIS_LABELS = {
    "model.channels": "c",
    "model.variant": "",
    "optim.lpips_weight": "lpips",
    "optim.gan_weight": "gan",
    "train.stage": "stage",
    "data.media_type": "",
}
DEP_PREFIX = "@"  # train.init_from: "@run-name" -> that run's export
SEED_SUFFIX = "-s"  # `seeds:` names each replicate NAME-s<seed>


@dataclass
class Sweep:
    name: str
    experiment: str
    configs: list[TrainConfig]
    source: str
    study: str = ""
    input: dict[str, int] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)  # axis key -> values, for the report
    # Run name -> its generation probe: the `generation:` block with the run's media type and weights unless
    # the block sets them. Empty: the sweep has no probe.
    probes: dict[str, GenerationConfig] = field(default_factory=dict)

    @property
    def probed(self) -> bool:
        return bool(self.probes)

    def generation_for(self, config: TrainConfig) -> GenerationConfig | None:
        """The generation probe of run `config`; None when the sweep has no probe."""
        return self.probes.get(config.name)

    def dependencies(self) -> dict[str, str]:
        """Run name -> the run whose export it starts from (`train.init_from: "@NAME"`)."""
        return {
            c.name: c.train.init_from[len(DEP_PREFIX):]
            for c in self.configs
            if c.train.init_from.startswith(DEP_PREFIX)
        }


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


def _value_label(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "-", text)


def axis_run_name(point: dict[str, Any]) -> str:
    """A stable run name from axis values, in the order the axes are written: `N-N-8_c4`."""
    parts = []
    for key, value in point.items():
        label = AXIS_LABELS.get(key, key.rsplit(".", 1)[-1] + "=")
        parts.append(f"{label}{_value_label(value)}")
    return "_".join(parts)


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """{"model.channels": 4} -> {"model": {"channels": 4}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *heads, last = key.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


def expand_axes(axes: Any, source: str) -> list[dict[str, Any]]:
    """The points of `axes` as flat {key: value} dicts, grid in row-major order, each zip row with each."""
    if not isinstance(axes, dict) or not axes:
        raise ConfigError(f"{source}: axes must be a mapping with 'grid' and/or 'zip'")
    unknown = sorted(set(axes) - AXIS_KINDS)
    if unknown:
        raise ConfigError(f"{source}: axes: unknown key '{unknown[0]}' (known: grid, zip)")
    for kind in axes:
        block = axes[kind]
        if not isinstance(block, dict) or not block:
            raise ConfigError(f"{source}: axes.{kind} must be a non-empty mapping of key -> list of values")
        for key, values in block.items():
            if not isinstance(key, str) or key.count(".") != 1:
                raise ConfigError(f"{source}: axes.{kind}.{key} must be a 'section.key' name, e.g. model.channels")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: axes.{kind}.{key} must be a non-empty list")
    grid = axes.get("grid") or {}
    zipped = axes.get("zip") or {}
    overlap = sorted(set(grid) & set(zipped))
    if overlap:
        raise ConfigError(f"{source}: axes: '{overlap[0]}' is in both grid and zip")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise ConfigError(f"{source}: axes.zip lists must have equal lengths (got {sorted(lengths)})")
    zip_rows = [dict(zip(zipped, row)) for row in zip(*zipped.values())] if zipped else [{}]
    grid_points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] if grid else [{}]
    return [{**row, **point} for row in zip_rows for point in grid_points]


def _check_input(raw: Any, source: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - {"frames", "size"} or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in raw.values()
    ):
        raise ConfigError(f"{source}: input must be a mapping like {{frames: 1, size: 256}} of positive ints")
    return {"frames": int(raw.get("frames", 1)), **({"size": int(raw["size"])} if "size" in raw else {})}


def parse_sweep(raw: Any, source: str, overrides: dict[str, Any] | None = None) -> Sweep:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with keys {sorted(SWEEP_KEYS)}")
    unknown = sorted(set(raw) - SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (known: {', '.join(sorted(SWEEP_KEYS))})")
    for key in ("sweep", "experiment"):
        if key not in raw:
            raise ConfigError(f"{source}: '{key}' is missing")
        if not isinstance(raw[key], str):
            raise ConfigError(f"{source}: '{key}' must be a str")
    if "/" in raw["sweep"] or not raw["sweep"]:
        raise ConfigError(f"{source}: 'sweep' must be non-empty and contain no '/'")
    study = raw.get("study") or ""
    if study and study not in STUDIES:
        raise ConfigError(f"{source}: study '{study}' is not one of {', '.join(STUDIES)}")
    if "runs" in raw and not isinstance(raw["runs"], list):
        raise ConfigError(f"{source}: 'runs' must be a list")
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise ConfigError(f"{source}: 'base' must be a mapping")
    _check_keys(base, TrainConfig, f"{source}: base")
    runs = list(raw.get("runs") or [])
    if "runs" in raw and not runs and "axes" not in raw:
        raise ConfigError(f"{source}: 'runs' is empty")
    if not runs and "axes" not in raw:
        raise ConfigError(f"{source}: needs 'runs' or 'axes'")
    for index, run in enumerate(runs):
        if not isinstance(run, dict) or not isinstance(run.get("name"), str):
            raise ConfigError(f"{source}: runs[{index}]: each run needs a 'name'")

    axes: dict[str, list[Any]] = {}
    named: list[tuple[str, str, dict[str, Any]]] = [
        (f"{source}: runs[{i}]", run["name"], run) for i, run in enumerate(runs)
    ]
    if "axes" in raw:
        blocks = raw["axes"] if isinstance(raw["axes"], list) else [raw["axes"]]
        if not blocks:
            raise ConfigError(f"{source}: axes is an empty list")
        for i, block in enumerate(blocks):
            where = f"{source}" if len(blocks) == 1 and not isinstance(raw["axes"], list) else f"{source}: axes[{i}]"
            for point in expand_axes(block, where):
                name = axis_run_name(point)
                named.append((f"{source}: axes run '{name}'", name, {"name": name, **nested(point)}))
            for kind in block.values():
                for key, values in kind.items():
                    axes.setdefault(key, [])
                    axes[key] += [v for v in values if v not in axes[key]]

    seeds = _check_seeds(raw.get("seeds"), source)
    configs, seen = [], set()
    for where, name, run in named:
        if name in seen:
            raise ConfigError(f"{where}: duplicate run name '{name}'")
        seen.add(name)
        merged = deep_merge(deep_merge(base, run), overrides or {})
        for replicate in _replicates(merged, seeds):
            configs.append(TrainConfig.from_dict(replicate, where=where))
    sweep = Sweep(
        name=raw["sweep"], experiment=raw["experiment"], configs=configs, source=source, study=study,
        input=_check_input(raw.get("input"), source), axes=axes, probes=_probes(raw.get("generation"), configs, source),
    )
    if study == "e_generation" and not sweep.probed:
        raise ConfigError(f"{source}: study e_generation needs a 'generation:' block (the probe it judges)")
    names = {c.name for c in configs}
    for run, dep in sweep.dependencies().items():
        if dep not in names or dep == run:
            raise ConfigError(f"{source}: {run}: train.init_from '@{dep}' names no other run of this sweep")
    return sweep


def _check_seeds(raw: Any, source: str) -> list[int] | None:
    """The `seeds:` list (None when absent): distinct non-negative ints."""
    if raw is None:
        return None
    if (not isinstance(raw, list) or not raw or len(set(raw)) != len(raw)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)):
        raise ConfigError(f"{source}: seeds must be a non-empty list of distinct non-negative ints, e.g. [0, 1, 2]")
    return list(raw)


def _replicates(merged: dict[str, Any], seeds: list[int] | None) -> list[dict[str, Any]]:
    """One merged config per seed, named NAME-s<seed> with train.seed set (the config itself without `seeds`); a
    stage-2 replicate starts from its dependency's replicate of the same seed."""
    if seeds is None or not isinstance(merged.get("train", {}), dict):  # a bad `train` is from_dict's to name
        return [merged]
    out = []
    for seed in seeds:
        suffix = f"{SEED_SUFFIX}{seed}"
        train = {**merged.get("train", {}), "seed": seed}
        init_from = str(train.get("init_from", ""))
        if init_from.startswith(DEP_PREFIX):
            train["init_from"] = init_from + suffix
        out.append({**merged, "name": merged["name"] + suffix, "train": train})
    return out


def _check_keys(raw: dict[str, Any], cls: type, where: str) -> None:
    """Rejects a key of `raw` that `cls` (a config dataclass, recursively) does not have, naming `where`: a typo
    under `base:` is the base's, though it would first surface when a run merges it. Only keys: values are
    checked on each merged run, since a run may complete what the base leaves (a stage-2 init_from, say)."""
    fields = {f.name: f.type for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(fields))})")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            _check_keys(value, hints[key], f"{where}.{key}")


def _probes(block: Any, configs: list[TrainConfig], source: str) -> dict[str, GenerationConfig]:
    """Each run's generation probe from the `generation:` block (None: no probe), validated once here."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ConfigError(f"{source}: generation must be a mapping of generation settings, e.g. {{steps: 300}}")
    where = f"{source}: generation"
    GenerationConfig.from_dict(block, where=where)  # the block's own keys, named as written
    return {c.name: GenerationConfig.from_dict({"media_type": c.data.media_type,
                                                "weights": dataclasses.asdict(c.weights), **block}, where=where)
            for c in configs}  # fmt: skip
