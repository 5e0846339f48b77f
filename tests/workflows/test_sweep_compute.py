"""The sweep plan's compute: the generation probes' DiT training and sampling in the totals, the wall-time
estimate from --gpus/--gpu-peak/--mfu, the warm-up default of short runs, and `--verbose` on every entry script."""

from __future__ import annotations

import importlib

import pytest

from tests.helpers import REPO
from vitok.generation import DiTConfig, dit_stats
from workflows import scale_sweep
from workflows.config import TrainConfig
from workflows.sweeps.compute import Hardware, probe_flops, training_flops
from workflows.sweeps.planning import plan_sweep
from workflows.sweeps.sweep_file import load_sweep

E_GENERATION = REPO / "workflows" / "configs" / "e_generation_tiny.yaml"


@pytest.fixture
def planned(tmp_path, monkeypatch):
    """The tiny e_generation study planned from its declared input (its shards are not here)."""
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep(str(E_GENERATION))
    return sweep, plan_sweep(sweep, dry_run=True)


def test_probe_flops_count_the_dit_training_and_sampling(planned):
    sweep, plans = planned
    for plan in plans:
        probe = sweep.generation_for(plan.config)
        p = plan.stats.patch
        grid = (plan.frames, plan.resolution // p, plan.resolution // p)
        macs = dit_stats(DiTConfig.from_name(probe.model, channels=plan.stats.channels), grid).gmacs * 1e9
        train, sampling = probe_flops(plan, probe)
        assert train == pytest.approx(3 * 2 * macs * probe.steps * probe.global_batch_size)
        calls = probe.sample_steps * (2 if probe.sampler == "heun" else 1)
        guidance = 2 if probe.cfg_scale != 1 else 1
        assert sampling == pytest.approx(2 * macs * calls * probe.samples * guidance)
        assert train > 0 and sampling > 0


def test_dry_run_prints_the_totals_and_the_wall_time(planned, capsys):
    sweep, plans = planned
    total = sum(training_flops(p) + sum(probe_flops(p, sweep.generation_for(p.config))) for p in plans)
    code = scale_sweep.main(["--config", str(E_GENERATION), "--dry-run", "--gpus", "8", "--gpu-peak", "989",
                             "--mfu", "0.3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert f"Estimated total compute: {total:.4g} FLOPs" in out
    assert "generation probes: DiT training" in out and "probe_FLOPs" in out
    seconds = Hardware(8, 989.0, 0.3).seconds(total)
    assert seconds == pytest.approx(total / (8 * 989e12 * 0.3))
    assert "Estimated wall time:" in out and "8 GPU(s) x 989 TFLOP/s peak x MFU 0.3" in out
    assert "Shards not read (not found from here): work/shards" in out  # the dry run says what it did not check


def test_dry_run_without_hardware_says_how_to_get_a_wall_time(planned, capsys):
    assert scale_sweep.main(["--config", str(E_GENERATION), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Estimated wall time" not in out and "--gpu-peak TFLOPS" in out


@pytest.mark.parametrize("steps, warmup", [(1, 0), (10, 5), (19, 9), (20, 10), (400, 10)])
def test_an_unset_warmup_scales_with_short_runs(steps, warmup):
    assert TrainConfig.from_dict({"train": {"steps": steps}}).optim.warmup_steps == warmup


def test_a_set_warmup_is_kept_and_the_shipped_configs_set_theirs():
    assert TrainConfig.from_dict({"train": {"steps": 10}, "optim": {"warmup_steps": 3}}).optim.warmup_steps == 3
    for path in sorted((REPO / "workflows" / "configs").glob("*.yaml")):
        assert "warmup_steps" in path.read_text(), f"{path.name} would now take the scaled default"


@pytest.mark.parametrize("script", ["data_prep_job", "train", "scale_sweep", "demo", "cache_latents",
                                    "train_generator"])  # fmt: skip
def test_every_entry_script_takes_verbose(script, capsys):
    module = importlib.import_module(f"workflows.{script}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0 and "--verbose" in capsys.readouterr().out
