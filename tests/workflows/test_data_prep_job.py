"""The scheduled data-prep entry point, run twice as a scheduler would, with new inputs in between."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from PIL import Image

from tests.helpers import run_cli

JOB = "workflows/data_prep_job.py"


def write_images(folder, names, seed):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8)).save(folder / n)


def job(corpus, out, *extra):
    proc = run_cli(sys.executable, JOB, "--input", str(corpus), "--output", str(out), "--size", "16",
                   "--images-per-unit", "2", "--incremental", *extra, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_second_run_processes_only_the_new_inputs(tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    write_images(corpus / "day1", ["a.png", "b.png", "c.png"], seed=1)
    (corpus / "day1" / "broken.jpg").write_text("not an image")  # quarantined, and the job still exits 0
    first = job(corpus, out)
    assert first["this_run"]["inputs"] == 4 and first["output"]["inputs_quarantined"] == 1
    assert first["output"]["quarantined_by_reason"] == {"sniff/UnrecognizedContent": 1}
    assert first["this_run"]["tubelets_per_s"] > 0 and first["output"]["shard_bytes"] > 0
    manifest1 = json.loads((out / "manifest.json").read_text())
    records = {n: os.stat(out / "units" / n).st_mtime_ns for n in os.listdir(out / "units")}

    write_images(corpus / "day2", ["d.png", "e.png"], seed=2)
    second = job(corpus, out)
    assert second["this_run"]["inputs"] == 2 and second["this_run"]["tubelets"] == 2
    assert second["output"]["inputs_seen"] == 6 and second["output"]["inputs_used"] == 5
    manifest2 = json.loads((out / "manifest.json").read_text())
    assert all(s in manifest2["shards"] for s in manifest1["shards"])  # existing shards untouched
    assert records == {n: os.stat(out / "units" / n).st_mtime_ns for n in records}
    new_units = set(manifest2["unit_ids"]) - set(manifest1["unit_ids"])
    for uid in new_units:
        inputs = json.loads((out / "units" / f"{uid}.json").read_text())["inputs"]
        assert all("/day2/" in uri for uri in inputs)


def test_job_that_cannot_run_exits_non_zero(tmp_path):
    proc = run_cli(sys.executable, JOB, "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no such folder" in proc.stderr and "Traceback" not in proc.stderr
