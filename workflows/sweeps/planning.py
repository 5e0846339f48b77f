"""Planning a sweep: every config checked against its shards (or, for a dry run of a sweep whose shards are
elsewhere, against the sweep's declared input), and the plan printed with each config's compute, its
generation probe's included (workflows/sweeps/compute.py), and the estimated wall time."""

from __future__ import annotations

import dataclasses
from typing import Any

from workflows.config import ConfigError, TrainConfig
from workflows.reports.tables import rows_to_markdown
from workflows.sweeps.compute import Hardware, format_duration, probe_flops, training_flops
from workflows.sweeps.sweep_file import DEP_PREFIX, Sweep
from workflows.training.plan import RunPlan, plan_for_input, plan_run, resolve_model_config


def _stage1_twin(config: TrainConfig) -> TrainConfig:
    """A stage-2 run that starts from another run of the sweep (`init_from: "@NAME"`, whose export does not
    exist yet) is planned as its stage-1 twin: the same variant, which the stage-1 run exports."""
    return dataclasses.replace(
        config, train=dataclasses.replace(config.train, stage=1, init_from="", freeze="none"),
        optim=dataclasses.replace(config.optim, gan_weight=0.0),
    )


def _depends_on_sweep_run(config: TrainConfig) -> bool:
    return config.train.init_from.startswith(DEP_PREFIX)


def plan_from_input(config: TrainConfig, frames: int, size: int) -> RunPlan:
    """A plan from the sweep's declared `input` when the shards are not reachable from here (dry runs of
    paper-scale sweeps on a laptop): the model's numbers, no data rows."""
    model_from = _stage1_twin(config) if _depends_on_sweep_run(config) else config
    try:
        return plan_for_input(config, resolve_model_config(model_from), frames, size)
    except ValueError as err:
        raise ConfigError(f"{config.name}: {err}") from None


def _plan(config: TrainConfig) -> RunPlan:
    """`plan_run`, with a stage-2 run of the sweep (`@NAME`) planned as its stage-1 twin; the runner fills in
    the export's location when that run has finished."""
    if not _depends_on_sweep_run(config):
        return plan_run(config)
    return dataclasses.replace(plan_run(_stage1_twin(config)), config=config)


def plan_sweep(sweep: Sweep, dry_run: bool) -> list[RunPlan]:
    """Plans every config against its shards; a dry run may fall back on the sweep's `input`."""
    plans = []
    for config in sweep.configs:
        frames = sweep.input.get("frames", 1) if config.data.media_type == "video" else 1
        try:
            plan = _plan(config)
        except (OSError, ValueError) as err:
            if not (dry_run and sweep.input.get("size") and "manifest" in str(err)):
                raise
            plan = plan_from_input(config, frames, sweep.input["size"])
        else:
            size = sweep.input.get("size")
            if size and (size, frames) != (plan.resolution, plan.frames):
                raise ConfigError(
                    f"{sweep.source}: {config.name}: input is {frames}x{size}x{size} "
                    f"but {config.data.shards} holds {plan.frames}x{plan.resolution}x{plan.resolution} tubelets"
                )
        plans.append(plan)
    return plans


def plan_rows(sweep: Sweep, plans: list[RunPlan]) -> list[dict[str, Any]]:
    rows = [
        {
            "config": p.config.name,
            "variant": p.config.model.variant,
            "input": f"{p.frames}x{p.resolution}x{p.resolution}",
            "params_M": round(p.stats.params / 1e6, 3),
            "GMACs/sample": round(p.stats.gmacs, 4),
            "L": p.stats.tokens,
            "c": p.stats.channels,
            "E": p.stats.E,
            "steps": p.config.train.steps,
            "batch": p.config.train.global_batch_size,
            "train_FLOPs": float(f"{training_flops(p):.3g}"),
        }
        for p in plans
    ]
    if sweep.probed:  # every row gets the column; a config without a probe costs none
        for row, plan in zip(rows, plans):
            probe = sweep.generation_for(plan.config)
            row["probe_FLOPs"] = float(f"{sum(probe_flops(plan, probe)):.3g}") if probe else 0.0
    return rows


def compute_lines(sweep: Sweep, plans: list[RunPlan], hardware: Hardware | None) -> list[str]:
    """The totals (tokenizers, then the generation probes' training and sampling) and, given the hardware,
    the wall time they take, each with how it was counted."""
    tokenizers = sum(training_flops(p) for p in plans)
    probes = [probe_flops(p, sweep.generation_for(p.config)) for p in plans if sweep.generation_for(p.config)]
    probe_train, probe_sampling = sum(t for t, _ in probes), sum(s for _, s in probes)
    total = tokenizers + probe_train + probe_sampling
    lines = [f"Estimated total compute: {total:.4g} FLOPs ({total / 1e15:.4g} PFLOPs)",
             f"  tokenizer training {tokenizers:.4g} (6 x MACs x steps x global batch)"]  # fmt: skip
    if probes:
        lines += [f"  generation probes: DiT training {probe_train:.4g} (6 x DiT MACs x steps x global batch), "
                  f"sampling {probe_sampling:.4g} (2 x DiT MACs x sample_steps x calls per step (heun 2, euler 1) "
                  "x samples x 2 with guidance, counted whenever cfg_scale != 1)"]  # fmt: skip
    if hardware is None:
        lines.append("  (--gpu-peak TFLOPS, with --gpus and --mfu, turns this into an estimated wall time)")
    else:
        lines.append(f"Estimated wall time: {format_duration(hardware.seconds(total))} on {hardware.describe()}; "
                     "not counted: evaluation, data loading, latent caching, start-up and checkpoints")  # fmt: skip
    return lines


def format_plan(sweep: Sweep, plans: list[RunPlan], hardware: Hardware | None = None) -> str:
    es = [p.stats.E for p in plans]
    text = (
        f"Sweep '{sweep.name}' ({sweep.study or 'no study'}): {len(plans)} configs, E from {min(es)} to {max(es)} "
        f"({max(es) / min(es):.3g}x)\n{rows_to_markdown(plan_rows(sweep, plans))}"
    )
    unread = sorted({p.config.data.shards for p in plans if not p.train_rows})
    if unread:  # a dry run that fell back on the sweep's `input`: say the data were not checked
        text += (f"Shards not read (not found from here): {', '.join(unread)}; planned from the sweep's input, "
                 "so the data are checked only when the sweep runs\n")
    text += "\n".join(compute_lines(sweep, plans, hardware)) + "\n"
    if sweep.probed:
        g = sweep.generation_for(sweep.configs[0])
        text += (f"Generation probe after each config: {g.model} on its {g.media_type} latents, {g.steps} steps at "
                 f"batch {g.global_batch_size}, then {g.samples} samples ({g.sampler}, {g.sample_steps} steps) scored "
                 f"by SWD{', gFID' if g.weights.inception else ''}{', gFVD' if g.weights.i3d else ''}\n")
    return text
