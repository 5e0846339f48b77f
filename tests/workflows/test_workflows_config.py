"""Unit tests of the sweep/config layer: validation happens at the edge, with one clear line."""

from __future__ import annotations

import math

import pytest

from workflows.config import ConfigError, GenerationConfig, TrainConfig, deep_merge
from workflows.training.deepspeed_config import deepspeed_config
from workflows.training.optim import warmup_cosine
from workflows.sweeps.sweep_file import load_sweep, parse_sweep

GOOD = {
    "sweep": "s",
    "experiment": "e",
    "base": {"model": {"variant": "N-N/8"}, "train": {"steps": 20}},
    "runs": [{"name": "a", "model": {"channels": 4}}, {"name": "b", "train": {"zero_stage": 3}}],
}


def test_runs_are_base_plus_overrides():
    sweep = parse_sweep(GOOD, "good.yaml")
    a, b = sweep.configs
    assert (a.name, a.model.channels, a.train.steps, a.train.zero_stage) == ("a", 4, 20, 2)
    assert (b.model.channels, b.train.zero_stage) == (8, 3)


def test_overrides_apply_to_every_run():
    sweep = parse_sweep(GOOD, "good.yaml", {"data": {"shards": "/abs/shards"}})
    assert {c.data.shards for c in sweep.configs} == {"/abs/shards"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["base"].update(modle={}), "unknown key 'modle'"),
        (lambda d: d["base"]["train"].update(steps="ten"), "train.steps: expected int"),
        (lambda d: d["base"]["train"].update(zero_stage=4), "train.zero_stage must be 0, 1, 2, 3 or 'auto'"),
        (lambda d: d["base"].setdefault("data", {}).update(eval_unit="scene"),
         "data.eval_unit must be 'source', 'folder' or 'sample'"),
        (lambda d: d["runs"].append({"name": "a"}), "duplicate run name 'a'"),
        (lambda d: d.update(runs=[]), "'runs' is empty"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d["runs"][0].pop("name"), "each run needs a 'name'"),
    ],
)
def test_bad_sweeps_fail_with_one_line(mutate, message):
    import copy

    raw = copy.deepcopy(GOOD)
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_sweep(raw, "bad.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("sweep: s\nruns:\n  - {name: a\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_sweep(path)


def test_missing_sweep_file():
    with pytest.raises(ConfigError, match="sweep file not found"):
        load_sweep("/nonexistent/sweep.yaml")


def test_deep_merge_keeps_siblings():
    assert deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}}


def test_deepspeed_config_matches_run_and_world():
    config = TrainConfig.from_dict({"train": {"micro_batch_size": 4, "grad_accum": 2, "num_workers": 2, "zero_stage": 3,
                                              "precision": "bf16"}})
    ds = deepspeed_config(config, world_size=2)
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["train_batch_size"] == 4 * 2 * 2
    assert ds["train_micro_batch_size_per_gpu"] == 4 and ds["gradient_accumulation_steps"] == 2
    assert ds["bf16"]["enabled"] is True and ds["gradient_clipping"] == 1.0  # bf16 on CPU too
    fp32 = TrainConfig.from_dict({"train": {"precision": "fp32", "num_workers": 2}})
    assert deepspeed_config(fp32, world_size=2)["bf16"]["enabled"] is False
    with pytest.raises(ConfigError, match="num_workers=2 but Ray started 3 workers"):
        deepspeed_config(config, world_size=3)


def test_auto_precision_is_bf16_where_it_runs_natively_and_resolved_once(monkeypatch):
    """auto is resolved when the config is built, so the params and the engine see the precision that runs."""
    import workflows.runtime.precision as precision

    for native, cpu_expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        assert TrainConfig.from_dict({}).train.precision == cpu_expected
        assert TrainConfig.from_dict({"train": {"use_gpu": True}}).train.precision == "bf16"
        assert GenerationConfig.from_dict({}).precision == cpu_expected
        for asked in ("bf16", "fp32"):
            assert TrainConfig.from_dict({"train": {"precision": asked}}).train.precision == asked
            assert GenerationConfig.from_dict({"precision": asked}).precision == asked
    with pytest.raises(ConfigError, match="train.precision must be 'bf16', 'fp32' or 'auto'"):
        TrainConfig.from_dict({"train": {"precision": "fp16"}}).validate()


def test_lr_schedule_warms_up_then_decays_to_zero():
    values = [warmup_cosine(s, 5, 50) for s in range(50)]
    assert values[0] == pytest.approx(0.2) and values[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[4:], values[5:]))
    assert warmup_cosine(50, 5, 50) == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(warmup_cosine(5 + 45 // 2, 5, 50), 0.5, rel_tol=0.1)


def test_peak_lr_follows_batch_scaling_rule():
    config = TrainConfig.from_dict({"optim": {"base_lr": 1e-4}, "train": {"micro_batch_size": 64, "num_workers": 4}})
    assert config.peak_lr == pytest.approx(1e-4)
    # a global batch other than 256: 8 x 3 x 2 = 48 samples -> 1e-4 x 48 / 256
    small = TrainConfig.from_dict({"optim": {"base_lr": 1e-4}, "train": {"micro_batch_size": 8, "grad_accum": 3,
                                                                          "num_workers": 2}})
    assert small.train.global_batch_size == 48 and small.peak_lr == pytest.approx(1.875e-5)


def test_freeze_defaults_to_the_encoder_at_stage_2_and_to_nothing_at_stage_1():
    assert TrainConfig.from_dict({"train": {"stage": 2, "init_from": "/export"}}).train.freeze == "encoder"
    assert TrainConfig.from_dict({"train": {"init_from": "/export"}}).train.freeze == "none"
    assert TrainConfig.from_dict({"train": {"init_from": "/export", "freeze": "encoder"}}).train.freeze == "encoder"
    with pytest.raises(ConfigError, match="train.freeze 'encoder' needs train.init_from"):
        TrainConfig.from_dict({"train": {"freeze": "encoder"}})
    with pytest.raises(ConfigError, match="train.freeze must be 'encoder' or 'none'"):
        TrainConfig.from_dict({"train": {"init_from": "/export", "freeze": "decoder"}})
