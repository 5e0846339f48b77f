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
                       ("e_sweep", "encoder_scaling", "decoder_scaling", "loss_tradeoff", "video_e_sweep",
                        "e_generation")}


def test_a_generation_block_takes_each_configs_media_type_and_weights_unless_it_sets_them():
    raw = sweep_with(runs=[{"name": "img", "weights": {"inception": "/w/inception.pt"}},
                           {"name": "vid", "data": {"media_type": "video"}}],
                     generation={"model": "DiT-T/2", "steps": 30})
    sweep = parse_sweep(raw, "g.yaml")
    image, video = (sweep.generation_for(c) for c in sweep.configs)
    assert (image.model, image.steps, image.media_type, image.weights.inception) == ("DiT-T/2", 30, "image",
                                                                                     "/w/inception.pt")
    assert (video.media_type, video.weights.inception) == ("video", "")
    raw["generation"] = {"media_type": "image", "weights": {"inception": "/other.pt"}}
    sweep = parse_sweep(raw, "g.yaml")
    assert {sweep.generation_for(c).media_type for c in sweep.configs} == {"image"}
    assert {sweep.generation_for(c).weights.inception for c in sweep.configs} == {"/other.pt"}
    assert parse_sweep(sweep_with(runs=[{"name": "a"}]), "g.yaml").generation_for(sweep.configs[0]) is None


@pytest.mark.parametrize("extra, message", [
    ({"generation": {"stepz": 3}}, "g.yaml: generation"),
    ({"generation": {"steps": 0}}, "steps"),
    ({"generation": {"model": "UNet"}}, "model"),
    ({"generation": [1, 2]}, "generation must be a mapping"),
    ({"study": "e_generation"}, "needs a 'generation:' block"),
])
def test_bad_generation_blocks_fail_before_any_work_with_one_line(extra, message):
    with pytest.raises(ConfigError) as err:
        parse_sweep(sweep_with(runs=[{"name": "a"}], **extra), "g.yaml")
    assert message in str(err.value) and str(err.value).startswith("g.yaml") and "\n" not in str(err.value)


def tiny_plans(stem):
    from workflows.sweeps.planning import plan_from_input

    sweep = load_sweep(CONFIGS / f"{stem}.yaml")
    plans = []
    for config in sweep.configs:
        frames = sweep.input["frames"] if config.data.media_type == "video" else 1
        plans.append(plan_from_input(config, frames, sweep.input["size"]))
    return plans


@pytest.mark.parametrize("stem", ["e_sweep_tiny", "encoder_scaling_tiny", "decoder_scaling_tiny", "video_e_sweep_tiny"])
def test_tiny_designs_give_every_token_a_pixel_head_its_width_carries(stem):
    """A token's pixels (q x p x p x 3 values) stay within 1.5x the decoder width: no starved pixel head."""
    for plan in tiny_plans(stem):
        assert plan.model_config.patch_dim <= 1.5 * plan.model_config.decoder_width, plan.name
        assert plan.config.train.eval_samples >= 96  # every held-out image crop (and clip) is evaluated


def test_tiny_e_sweep_has_equal_e_pairs_across_patch_sizes():
    plans = tiny_plans("e_sweep_tiny")
    es_by_patch = {}
    for plan in plans:
        es_by_patch.setdefault(plan.stats.patch, set()).add(plan.stats.E)
    # five values of E per patch size: R² of a line through three points has one degree of freedom
    assert len(es_by_patch) >= 2 and all(len(es) >= 5 for es in es_by_patch.values())
    assert len({frozenset(es) for es in es_by_patch.values()}) == 1  # every E is reached by every p
    es = next(iter(es_by_patch.values()))
    assert max(es) / min(es) >= 8
    assert len(plans) <= 10  # the demo's time budget (under 15 min on 2 cores)


@pytest.mark.parametrize("stem, side", [("encoder_scaling_tiny", "encoder"), ("decoder_scaling_tiny", "decoder")])
def test_tiny_size_studies_vary_one_side_with_seed_replicates(stem, side):
    plans = tiny_plans(stem)
    other = "decoder" if side == "encoder" else "encoder"
    assert len({getattr(p.stats, f"{other}_params") for p in plans}) == 1 and len({p.stats.E for p in plans}) == 1
    sizes = {}
    for plan in plans:
        sizes.setdefault(getattr(plan.stats, f"{side}_params"), set()).add(plan.config.train.seed)
    assert len(sizes) >= 3 and all(len(seeds) >= 2 for seeds in sizes.values())
    assert max(sizes) / min(sizes) >= 8  # a span like the paper's S -> L


def test_tiny_video_sweep_reaches_each_e_with_every_tubelet_and_has_image_runs():
    plans = tiny_plans("video_e_sweep_tiny")
    video = [p for p in plans if p.config.data.media_type == "video"]
    es_by_q = {}
    for plan in video:
        es_by_q.setdefault(plan.stats.tubelet, set()).add(plan.stats.E)
    assert set(es_by_q) == {1, 2, 4} and all(len(es) >= 3 for es in es_by_q.values())
    assert len({frozenset(es) for es in es_by_q.values()}) == 1
    assert len({p.stats.E for p in plans if p.config.data.media_type == "image"}) >= 3


def test_seeds_expand_every_config_into_named_replicates():
    raw = sweep_with(seeds=[0, 1, 2], runs=[{"name": "a", "model": {"channels": 4}}],
                     axes={"grid": {"model.channels": [16]}})
    sweep = parse_sweep(raw, "f.yaml")
    assert [c.name for c in sweep.configs] == ["a-s0", "a-s1", "a-s2", "c16-s0", "c16-s1", "c16-s2"]
    assert [c.train.seed for c in sweep.configs] == [0, 1, 2] * 2
    assert {c.model.channels for c in sweep.configs[:3]} == {4}


def test_seeded_stage_two_runs_start_from_the_same_seed():
    raw = sweep_with(seeds=[3, 7], runs=[{"name": "s1"}, {"name": "s2", "train": {"stage": 2, "init_from": "@s1"}}])
    sweep = parse_sweep(raw, "f.yaml")
    assert sweep.dependencies() == {"s2-s3": "s1-s3", "s2-s7": "s1-s7"}


@pytest.mark.parametrize("seeds", [[], [0, 0], [-1], [1.5], ["0"], 3, [True]])
def test_bad_seeds_are_one_line_naming_seeds(seeds):
    with pytest.raises(ConfigError, match=r"^f\.yaml: seeds must be") as err:
        parse_sweep(sweep_with(seeds=seeds, runs=[{"name": "a"}]), "f.yaml")
    assert "\n" not in str(err.value)


def test_a_typo_under_base_is_blamed_on_base():
    raw = sweep_with(runs=[{"name": "a"}])
    raw["base"]["model"]["varaint"] = "N-N/8"
    with pytest.raises(ConfigError, match=r"^f\.yaml: base\.model: unknown key 'varaint'"):
        parse_sweep(raw, "f.yaml")


def test_a_missing_experiment_is_called_missing():
    raw = sweep_with(runs=[{"name": "a"}])
    del raw["experiment"]
    with pytest.raises(ConfigError, match=r"^f\.yaml: 'experiment' is missing$"):
        parse_sweep(raw, "f.yaml")
    with pytest.raises(ConfigError, match=r"'experiment' must be a str"):
        parse_sweep({**raw, "experiment": 3}, "f.yaml")
