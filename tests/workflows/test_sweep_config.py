"""Sweep files: axes (grid, zip, lists of blocks) expand into stably named runs; errors are one line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from workflows.config import ConfigError
from workflows.sweeps.sweep_file import axis_run_name, expand_axes, load_sweep, parse_sweep

CONFIGS = Path(__file__).resolve().parents[2] / "workflows" / "configs"
BASE = {"sweep": "s", "experiment": "e", "base": {"model": {"variant": "N-N/8"}, "train": {"steps": 20}}}


def sweep_with(**extra):
    return {**copy.deepcopy(BASE), **extra}


def test_grid_is_every_combination_in_row_major_order():
    points = expand_axes({"grid": {"model.variant": ["N-N/8", "N-N/16"], "model.channels": [4, 16]}}, "f")
    assert points == [
        {"model.variant": "N-N/8", "model.channels": 4}, {"model.variant": "N-N/8", "model.channels": 16},
        {"model.variant": "N-N/16", "model.channels": 4}, {"model.variant": "N-N/16", "model.channels": 16},
    ]


def test_zip_takes_lists_together_and_combines_with_grid():
    points = expand_axes({"zip": {"model.variant": ["N-N/8", "N-N/16"], "model.channels": [16, 64]},
                          "grid": {"train.seed": [0, 1]}}, "f")
    assert len(points) == 4
    assert points[0] == {"model.variant": "N-N/8", "model.channels": 16, "train.seed": 0}
    assert points[3] == {"model.variant": "N-N/16", "model.channels": 64, "train.seed": 1}


def test_run_names_are_stable_and_safe():
    assert axis_run_name({"model.variant": "N-N/8", "model.channels": 4}) == "N-N-8_c4"
    assert axis_run_name({"optim.lpips_weight": 0.5, "train.seed": 1}) == "lpips0.5_seed=1"
    sweep = parse_sweep(sweep_with(axes={"grid": {"model.channels": [4, 16]}}), "f.yaml")
    again = parse_sweep(sweep_with(axes={"grid": {"model.channels": [4, 16]}}), "f.yaml")
    assert [c.name for c in sweep.configs] == [c.name for c in again.configs] == ["c4", "c16"]
    assert [c.model.channels for c in sweep.configs] == [4, 16]
    assert all(c.train.steps == 20 for c in sweep.configs)


def test_runs_and_a_list_of_axis_blocks_concatenate():
    raw = sweep_with(
        runs=[{"name": "extra", "model": {"channels": 8}}],
        axes=[{"grid": {"model.channels": [4, 16]}}, {"zip": {"model.variant": ["N-N/16"], "model.channels": [64]}}],
    )
    sweep = parse_sweep(raw, "f.yaml")
    assert [c.name for c in sweep.configs] == ["extra", "c4", "c16", "N-N-16_c64"]
    assert sweep.axes == {"model.channels": [4, 16, 64], "model.variant": ["N-N/16"]}


def test_study_input_and_dependencies():
    raw = sweep_with(study="loss_tradeoff", input={"frames": 1, "size": 64}, runs=[
        {"name": "a"},
        {"name": "b", "optim": {"gan_weight": 0.05}, "train": {"stage": 2, "init_from": "@a"}},
    ])
    sweep = parse_sweep(raw, "f.yaml")
    assert (sweep.study, sweep.input) == ("loss_tradeoff", {"frames": 1, "size": 64})
    assert sweep.dependencies() == {"b": "a"}


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"axes": {"grid": {"model.channels": 4}}}, "axes.grid.model.channels must be a non-empty list"),
        ({"axes": {"zip": {"model.channels": [4, 8], "model.variant": ["N-N/8"]}}}, "equal lengths"),
        ({"axes": {"grid": {"channels": [4]}}}, "must be a 'section.key' name"),
        ({"axes": {"cross": {"model.channels": [4]}}}, "axes: unknown key 'cross'"),
        ({"axes": {"grid": {"model.chanels": [4]}}}, "unknown key 'chanels'"),
        ({"axes": {"grid": {"model.channels": [4, 4]}}}, "duplicate run name 'c4'"),
        ({"axes": {"grid": {"model.channels": [0]}}}, "model.channels must be >= 1"),
        ({"axes": {"grid": {"model.channels": [4]}, "zip": {"model.channels": [8]}}}, "in both grid and zip"),
        ({"study": "p_sweep", "runs": [{"name": "a"}]}, "study 'p_sweep' is not one of"),
        ({"input": {"size": "big"}, "runs": [{"name": "a"}]}, "input must be a mapping"),
        ({}, "needs 'runs' or 'axes'"),
        ({"runs": [{"name": "b", "train": {"stage": 2, "init_from": "@zz"}}]}, "names no other run"),
        ({"sweep": "a/b", "runs": [{"name": "a"}]}, "'sweep' must be non-empty and contain no '/'"),
    ],
)
def test_bad_axes_fail_with_one_line(extra, message):
    with pytest.raises(ConfigError) as err:
        parse_sweep(sweep_with(**extra), "bad.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("bad.yaml")
    assert "\n" not in str(err.value)


STUDY_FILES = sorted(CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("path", STUDY_FILES, ids=[p.stem for p in STUDY_FILES])
def test_every_bundled_sweep_file_is_valid(path):
    sweep = load_sweep(path)
    assert sweep.configs
    if "tiny" in path.stem or "paper" in path.stem:  # the study files (others: smoke, recipes)
        assert sweep.study and sweep.input.get("size")


def test_every_study_has_a_tiny_and_a_paper_version():
    studies = {}
    for path in STUDY_FILES:
        sweep = load_sweep(path)
        if sweep.study:
            studies.setdefault(sweep.study, set()).add("tiny" if "tiny" in path.stem else "paper")
    assert studies == {s: {"tiny", "paper"} for s in
                       ("e_sweep", "encoder_scaling", "decoder_scaling", "loss_tradeoff", "video_e_sweep")}


def test_tiny_e_sweep_spans_8x_in_e_and_varies_p_and_c():
    from workflows.sweeps.planning import plan_from_input

    sweep = load_sweep(CONFIGS / "e_sweep_tiny.yaml")
    plans = [plan_from_input(c, 1, 64) for c in sweep.configs]
    es = [p.stats["E"] for p in plans]
    assert max(es) / min(es) >= 8
    assert len({p.stats["patch"] for p in plans}) >= 2 and len({p.stats["channels"] for p in plans}) >= 3
    assert len(plans) <= 5  # the demo's time budget
