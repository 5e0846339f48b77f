"""Bad input to the sweep entry point fails at once, with one clear line, before any work starts."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import run_cli

SWEEP = "workflows/scale_sweep.py"


def one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def write(tmp_path, text: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return str(path)


def test_malformed_yaml(tmp_path):
    line = one_line_error(run_cli(sys.executable, SWEEP, "--config", write(tmp_path, "sweep: [unclosed\n")))
    assert "sweep.yaml: not valid YAML at line" in line


def test_unknown_variant(tmp_path, sample_shards):
    config = write(tmp_path, "sweep: s\nexperiment: e\nruns:\n  - {name: a, model: {variant: X-B/16}}\n")
    line = one_line_error(run_cli(sys.executable, SWEEP, "--config", config, "--shards", str(sample_shards)))
    assert "run 'a'" in line and "X-B/16" in line


def test_patch_that_does_not_divide_the_shards(tmp_path, sample_shards):
    config = write(tmp_path, "sweep: s\nexperiment: e\nruns:\n  - {name: a, model: {variant: N-N/12}}\n")
    line = one_line_error(run_cli(sys.executable, SWEEP, "--config", config, "--shards", str(sample_shards)))
    assert "12" in line and "32" in line


def test_missing_shards(tmp_path):
    config = write(tmp_path, "sweep: s\nexperiment: e\nruns:\n  - {name: a}\n")
    line = one_line_error(run_cli(sys.executable, SWEEP, "--config", config, "--shards", str(tmp_path / "nope")))
    assert "nope" in line


@pytest.mark.parametrize("args", [["--config", "/does/not/exist.yaml"]])
def test_missing_sweep_file(args):
    assert "sweep file not found" in one_line_error(run_cli(sys.executable, SWEEP, *args))
