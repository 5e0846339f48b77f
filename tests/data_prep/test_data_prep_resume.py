"""Crash safety: SIGKILL the CLI (and its Ray workers) mid-run, rerun it, and get the uninterrupted output."""

import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from data_prep import build_sample_corpus, load_manifest, run
from tests.data_prep.bad_media import write_mp4
from tests.helpers import kill_process_tree

PREP = dict(frames=4, size=32, fps=8.0, max_clips=2, images_per_unit=2, videos_per_unit=1)


def _corpus(root, sample):
    """Enough work that a kill lands mid-run: 40 distinct photos-with-noise, 6 real videos."""
    os.makedirs(root / "img")
    os.makedirs(root / "video")
    rng = np.random.default_rng(0)
    photos = sorted(glob.glob(os.path.join(sample, "img", "*", "*", "*.png")))
    for k in range(40):
        with Image.open(photos[k % len(photos)]) as im:
            arr = np.asarray(im.convert("RGB").resize((320, 240)), dtype=np.int16)
        arr = np.clip(arr + rng.integers(-8, 8, arr.shape), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / "img" / f"p{k:02d}.png")
    for k in range(6):
        write_mp4(root / "video" / f"v{k}.mp4", frames=24 + 4 * k, fps=24, w=96, h=64)
    return str(root)


def _cli(corpus, out):
    args = [sys.executable, "-m", "data_prep", "run", "--input", corpus, "--output", out]
    for k, v in PREP.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    # Own process group: killing it takes Ray's local processes (GCS, raylet, workers) down too.
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)


def _sample_ids(out):
    ids = []
    for s in load_manifest(out)["shards"]:
        ids += pq.read_table(os.path.join(out, s["path"]), columns=["sample_id"]).column(0).to_pylist()
    return sorted(ids)


def test_kill_9_then_rerun_equals_an_uninterrupted_run(ray_session, tmp_path):
    sample = build_sample_corpus(str(tmp_path / "sample"))["path"]
    corpus = _corpus(tmp_path / "corpus", sample)
    killed = str(tmp_path / "killed")
    proc = _cli(corpus, killed)
    deadline = time.monotonic() + 120
    while not glob.glob(os.path.join(killed, "units", "*.json")):
        assert proc.poll() is None, "the run ended before any unit committed"
        assert time.monotonic() < deadline, "no unit committed in 120 s"
        time.sleep(0.05)
    kill_process_tree(proc)  # like a node crash: the CLI and every process below it, at once
    committed = len(glob.glob(os.path.join(killed, "units", "*.json")))
    assert not os.path.exists(os.path.join(killed, "manifest.json")), "the kill came too late: run had finished"

    rerun = _cli(corpus, killed)
    assert rerun.wait(timeout=300) == 0
    totals = json.loads(rerun.stdout.read().decode().strip().splitlines()[-1])
    manifest = load_manifest(killed)
    assert manifest["units_run"] == manifest["units"] - committed > 0  # the committed units were skipped

    reference = str(tmp_path / "reference")
    assert run(corpus, reference, **PREP) == totals
    assert _sample_ids(killed) == _sample_ids(reference)
    shas = [(s["path"], s["sha256"]) for s in load_manifest(reference)["shards"]]
    assert [(s["path"], s["sha256"]) for s in manifest["shards"]] == shas
    assert totals["inputs_seen"] == totals["inputs_used"] == 46
