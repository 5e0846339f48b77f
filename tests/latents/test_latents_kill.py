"""Crash safety: SIGKILL `python -m workflows.cache_latents` (and its Ray workers) mid-run, rerun it, and get
byte for byte the output of an uninterrupted run: the same manifest, stats and latent shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import BIN, REPO, kill_process_tree
from vitok import ViTok

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slower_tokenizer(tmp_path_factory):
    """S-N/8: a paper-width encoder, so each shard takes a visible fraction of a second and the kill lands
    while most units are still to do."""
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("tokenizer") / "s-n-8-c4"
    ViTok.from_name("S-N/8", channels=4).save_pretrained(folder)
    return folder


def _cli(shards, tokenizer, out) -> subprocess.Popen:
    args = [sys.executable, "-m", "workflows.cache_latents", "--shards", str(shards), "--tokenizer", str(tokenizer),
            "--output", str(out), "--concurrency", "2"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # Own process group: killing it takes Ray's local processes (GCS, raylet, workers) down too.
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env,
                            start_new_session=True)  # fmt: skip


def test_kill_9_then_rerun_equals_an_uninterrupted_run(sample_shards, slower_tokenizer, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    proc = _cli(sample_shards, slower_tokenizer, reference)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]

    proc = _cli(sample_shards, slower_tokenizer, killed)
    deadline = time.monotonic() + 300
    while not (killed / "units").is_dir() or not any(n.endswith(".json") for n in os.listdir(killed / "units")):
        assert proc.poll() is None, "the run ended before any unit committed"
        assert time.monotonic() < deadline, "no unit committed in 300 s"
        time.sleep(0.05)
    kill_process_tree(proc)  # like a node crash: the CLI and every process below it, at once
    committed = len([n for n in os.listdir(killed / "units") if n.endswith(".json")])
    assert not (killed / "manifest.json").exists(), "the kill came too late: the run had finished"

    rerun = _cli(sample_shards, slower_tokenizer, killed)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    manifest = json.loads((reference / "manifest.json").read_text())
    assert 0 < summary["units_run"] == manifest["units"] - committed  # the committed units were skipped
    for name in ("manifest.json", "latent_stats.json"):
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
    for shard in manifest["shards"]:
        assert (killed / shard["path"]).read_bytes() == (reference / shard["path"]).read_bytes(), shard["path"]
