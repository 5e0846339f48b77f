"""bench/training/demo_time.py's parts that run in seconds: the demo study's configs it times the floor of, and the
phases it reads back from a demo's MLflow store (a real SQLite store here). The whole bench runs the demo, about
20 minutes on 2 cores: it is run by hand (docs/performance.md), not in CI."""

from __future__ import annotations

import time

import psutil

from bench.training import demo_time
from workflows.sweeps.sweep_file import load_sweep
from workflows.tracking import create_run, log_metrics, prepare_tracking, tracking_client


def test_the_floor_covers_the_demo_study_at_a_concrete_precision(tmp_path):
    configs = demo_time.study_configs(tmp_path / "shards")
    study = load_sweep(demo_time.E_SWEEP).configs
    assert [c.name for c in configs] == [c.name for c in study] and len(configs) == 10
    assert {c.train.precision for c in configs} <= {"bf16", "fp32"}  # 'auto' resolved, as the trainer does
    assert {c.data.shards for c in configs} == {str(tmp_path / "shards")}
    assert [(c.model.variant, c.model.channels, c.train.steps, c.train.global_batch_size) for c in configs] == [
        (c.model.variant, c.model.channels, c.train.steps, c.train.global_batch_size) for c in study]


def test_phases_are_summed_over_the_training_runs_only(tmp_path):
    experiment = "vitok-scaling"
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", experiment)
    client = tracking_client(uri)
    create_run(client, experiment_id, "e-sweep-tiny")  # the sweep's parent: no phases
    for name, steps in (("T-T-4_c1", 200.0), ("T-T-8_c4", 50.0)):
        log_metrics(client, create_run(client, experiment_id, name),
                    {"phase_start_s": 20.0, "phase_steps_s": steps, "phase_shutdown_s": 1.5})
    phases = demo_time.demo_phases(tmp_path, experiment)
    assert phases["configs"] == 2 and set(phases["per_config"]) == {"T-T-4_c1", "T-T-8_c4"}
    assert phases["totals"]["phase_steps_s"] == 250.0 and phases["totals"]["phase_start_s"] == 40.0
    assert phases["totals"]["phase_shutdown_s"] == 3.0 and phases["totals"]["phase_setup_s"] == 0.0


def test_a_demo_past_its_timeout_is_stopped_with_its_children(tmp_path):
    # A stand-in checkout whose `workflows.demo` starts a child (as the demo starts its local Ray) and hangs.
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "__init__.py").write_text("")
    (tmp_path / "workflows" / "demo.py").write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "print('[c1] finished in 0m01s: PSNR 20.0, SSIM 0.5', flush=True)\n"
        "time.sleep(120)\n")
    run = demo_time.run_demo(tmp_path, timeout_s=5)
    assert run["timed_out"] and run["exit_code"] is None and run["wall_s"] < 60
    assert run["finished_lines"] == ["[c1] finished in 0m01s: PSNR 20.0, SSIM 0.5"] and run["printed_s"] is None
    child = int((tmp_path / "demo.log").read_text().split()[0])
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the demo's child outlived the timeout"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
