"""Every entry point rejects bad input as users run it (a fresh process, the real CLI): exit 2, one line on
stderr naming the input and the reason, no traceback, within seconds, and nothing left in the working folder
(no mlflow.db, no mlruns/, no output folder).

"Within seconds" is measured as the command's CPU time (its imports, mostly), not wall time: the test machine's
2 cores are shared, and under load the same imports take several times as long by the clock. The limit is
relative to what importing torch, Ray and MLflow costs on this machine (measured once, in a fresh process), since
CI machines differ several-fold in speed. A started Ray or a loop of retries would cost many times that.
"""

from __future__ import annotations

import functools
import resource
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port, run_cli
from workflows.tracking import prepare_tracking

SWEEP, DEMO = str(REPO / "workflows" / "scale_sweep.py"), str(REPO / "workflows" / "demo.py")
TRAIN, CACHE = str(REPO / "workflows" / "train.py"), str(REPO / "workflows" / "cache_latents.py")
GENERATOR = str(REPO / "workflows" / "train_generator.py")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@functools.cache
def fast_cpu_s() -> float:
    """CPU seconds a rejection may take: three times the imports' cost here, plus 5 s for the command's own checks."""
    start = children_cpu_s()
    proc = run_cli(sys.executable, "-c", "import torch, ray, mlflow", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return 3 * (children_cpu_s() - start) + 5


@pytest.fixture
def cwd(tmp_path) -> Path:
    """An empty working folder holding one file, `afile`, that no output can be created under."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    (folder / "afile").write_text("a file, not a folder")
    return folder


def rejected(cwd: Path, *args: str) -> str:
    """Runs the command in `cwd` and returns its one stderr line, after checking everything else."""
    before = sorted(p.name for p in cwd.iterdir())
    start = children_cpu_s()
    proc = run_cli(sys.executable, *args, cwd=cwd, timeout=300, env={"PYTHONPATH": str(REPO)})
    seconds = children_cpu_s() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert sorted(p.name for p in cwd.iterdir()) == before, "a rejected command left files behind"
    assert seconds < fast_cpu_s(), f"took {seconds:.1f} s of CPU (limit {fast_cpu_s():.1f} s): {lines[0]}"
    return lines[0]


def dead_server() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def sweep_file(cwd: Path) -> str:
    path = cwd.parent / "sweep.yaml"  # beside the working folder, so it is not counted as left behind
    path.write_text("sweep: s\nexperiment: e\nruns:\n  - {name: a}\n")
    return str(path)


def test_sample_corpus_into_an_unwritable_output(cwd):
    line = rejected(cwd, "-m", "data_prep", "sample-corpus", "--output", "afile/corpus")
    assert "sample-corpus --output afile/corpus: not writable" in line and "afile is a file" in line


@pytest.mark.parametrize("args, message", [
    (["--dry-run", "--shards", "nope"], "--shards nope: no such folder"),
    (["--best-by", "eval_foo"], "argument --best-by: invalid choice: 'eval_foo'"),
    (["--max-concurrent", "-1"], "argument --max-concurrent: must be >= 0, got -1"),
    (["--dry-run", "--mfu", "2"], "argument --mfu: must be in (0, 1], got 2"),
    (["--register-only"], "no MLflow store at"),  # and it asks for no shards: work/shards is not there
])  # fmt: skip
def test_sweep_arguments(cwd, args, message):
    assert message in rejected(cwd, SWEEP, *args)


def test_sweep_register_only_against_a_dead_server(cwd):
    server = dead_server()
    assert f"--tracking-uri {server}: MLflow server not reachable" in rejected(
        cwd, SWEEP, "--register-only", "--tracking-uri", server)


@pytest.mark.parametrize("flag, value, message", [
    ("--storage", "afile/ckpt", "--storage afile/ckpt: not writable"),
    ("--tracking-uri", "sqlite:///afile/mlflow.db", "not writable"),
    ("--tracking-uri", "DEAD", "MLflow server not reachable"),
])  # fmt: skip
def test_sweep_outputs(cwd, sample_shards, flag, value, message):
    value = dead_server() if value == "DEAD" else value
    line = rejected(cwd, SWEEP, "--config", sweep_file(cwd), "--shards", str(sample_shards), flag, value)
    assert message in line and line.startswith(f"error: {flag} ")


def test_train_with_an_unwritable_storage(cwd, sample_shards):
    line = rejected(cwd, TRAIN, "--config", sweep_file(cwd), "--run", "a", "--shards", str(sample_shards),
                    "--storage", "afile/ckpt")  # fmt: skip
    assert "--storage afile/ckpt: not writable" in line


@pytest.mark.parametrize("args, message", [
    (["--generaton"], "unrecognized arguments: --generaton"),
    (["--max-concurrent", "-1"], "must be >= 0"),
    (["--best-by", "psnr"], "invalid choice: 'psnr'"),
    (["--max-concurrent", "x"], "expected an integer, got 'x'"),
    (["--storage", "afile/ckpt"], "--storage afile/ckpt: not writable"),
])  # fmt: skip
def test_demo_rejects_bad_options_before_building_the_corpus(cwd, args, message):
    line = rejected(cwd, DEMO, *args)  # and work/ (the corpus) was not created
    assert message in line and "scale_sweep.py" not in line  # names the command the user ran


def test_registry_lookup_without_a_store_creates_none(cwd, sample_shards):
    line = rejected(cwd, CACHE, "--shards", str(sample_shards), "--tokenizer", "models:/vitok-x/1", "--output", "out")
    assert "tokenizer models:/vitok-x/1:" in line and f"no MLflow store at {cwd / 'mlflow.db'}" in line


def test_unknown_registered_model(cwd, sample_shards):
    prepare_tracking(f"sqlite:///{cwd / 'mlflow.db'}", "e")  # a real store, without that model
    line = rejected(cwd, CACHE, "--shards", str(sample_shards), "--tokenizer", "models:/vitok-x/1", "--output", "out")
    assert "tokenizer models:/vitok-x/1: no registered model named 'vitok-x'" in line


def test_registry_lookup_against_a_dead_server(cwd, sample_shards):
    server = dead_server()
    line = rejected(cwd, CACHE, "--shards", str(sample_shards), "--tokenizer", "models:/vitok-x@best", "--output",
                    "out", "--tracking-uri", server)  # fmt: skip
    assert f"--tracking-uri {server}: MLflow server not reachable" in line


def test_generator_against_a_dead_server(cwd):
    server = dead_server()
    line = rejected(cwd, GENERATOR, "--latents", "lat", "--tokenizer-run", "0123", "--tracking-uri", server)
    assert f"--tracking-uri {server}: MLflow server not reachable" in line


def test_generator_without_latents_creates_no_store(cwd):
    line = rejected(cwd, GENERATOR, "--latents", "lat", "--tokenizer", "tok")  # a SQLite store is opened by no lookup
    assert f"latents {cwd / 'lat'}: no manifest.json" in line
