"""The tiny e_generation study end to end, as a user runs it: `workflows/scale_sweep.py --config
workflows/configs/e_generation_tiny.yaml` on the sample corpus at 64x64 (its own local Ray, SQLite MLflow),
with gFID from a small Inception-shaped TorchScript network made here (as weights.inception names one).

Then, read back from MLflow: the parent holds findings.md with its generation section, the combined
reconstruction + generation plot and a verdict tag; under every tokenizer run there is a FINISHED generator
run with the samples grid, the weight-free distance with its interval, and gFID. A rerun of the unfinished
sweep skips every finished tokenizer and generator and redoes only a generator that went missing, on the
latents already cached.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.feature_networks import TinyInception
from tests.helpers import REPO, run_cli, run_sweep
from workflows.tracking import MlflowClient, find_children, find_parent

pytestmark = pytest.mark.integration

CONFIG = REPO / "workflows" / "configs" / "e_generation_tiny.yaml"


@pytest.fixture(scope="module")
def shards_64(sample_corpus, tmp_path_factory):
    """The sample corpus at the study's resolution (64x64), as `make demo` prepares it."""
    out = tmp_path_factory.mktemp("shards64") / "shards"
    proc = run_cli(sys.executable, "-m", "data_prep", "run", "--input", str(sample_corpus), "--output", str(out),
                   "--frames", "8", "--size", "64", "--fps", "8")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# Five Ray Train runs (two tokenizers, their generators, one generator redone), each mostly start-up on 2 cores.
@pytest.mark.timeout(1500)
def test_tiny_e_generation_sweep(shards_64, tmp_path, ray_tmp):
    inception = tmp_path / "inception.pt"
    torch.manual_seed(0)
    torch.jit.script(TinyInception()).save(str(inception))
    study = yaml.safe_load(CONFIG.read_text())
    study["base"]["data"]["shards"] = str(shards_64)
    study["base"]["weights"] = {"inception": str(inception)}  # rFID and, through the probe, gFID
    # The study's designs, two of its three E, each run a few dozen steps with a checkpoint midway: this checks the
    # pipeline end to end (each run's fixed cost dominates its time on 2 cores), not the study's verdict, which
    # `make demo ARGS=--generation` measures at full length.
    study["base"]["train"].update(steps=40, log_every=20, checkpoint_every=20)
    study["generation"].update(steps=60, log_every=20, checkpoint_every=30)
    study["axes"]["zip"]["model.channels"] = [4, 64]  # the ends of the study's E range
    config = tmp_path / "e_generation_tiny.yaml"
    config.write_text(yaml.safe_dump(study))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ("--latents", str(tmp_path / "latents"))

    start = time.monotonic()
    proc = run_sweep(config, uri, tmp_path / "ray", ray_tmp, *args, timeout=1200)
    wall = time.monotonic() - start
    print(f"tiny e_generation sweep: {wall:.0f} s")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "finding e_generation:" in proc.stdout

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(study["experiment"]).experiment_id
    (parent,) = client.search_runs([experiment_id], "tags.role = 'sweep'")
    assert parent.info.status == "FINISHED"
    verdict = parent.data.tags["finding.e_generation"]
    assert verdict in ("holds", "does not hold", "inconclusive", "not enough data")
    reports = Path(client.download_artifacts(parent.info.run_id, "", str(_folder(tmp_path / "parent"))))
    findings = (reports / "findings.md").read_text()
    assert f"## e_generation: {verdict}" in findings and "SWD" in findings
    assert (reports / "plots" / "recon_gen_vs_E.png").stat().st_size > 10_000
    rows = list(csv.DictReader(io.StringIO((reports / "summary.csv").read_text())))
    assert [r["gen_status"] for r in rows] == ["finished"] * 2

    tokenizers = find_children(client, experiment_id, parent.info.run_id)
    assert sorted(tokenizers) == ["c4", "c64"]
    generators = {}
    for name, tokenizer in tokenizers.items():
        (generator,) = find_children(client, experiment_id, tokenizer.info.run_id).values()
        assert generator.info.status == "FINISHED" and generator.info.run_name == "generator"
        metrics = generator.data.metrics
        assert metrics["gen_samples"] == 64
        assert metrics["gen_swd_ci_low"] <= metrics["gen_swd"] <= metrics["gen_swd_ci_high"]
        assert metrics["gen_fid"] >= 0
        assert generator.data.params["E"] == tokenizer.data.params["E"]
        samples = Path(client.download_artifacts(generator.info.run_id, "samples", str(_folder(tmp_path / name))))
        assert (samples / "final.png").is_file()
        generators[name] = generator.info.run_id

    # An interrupted sweep whose c64 generator went missing: the rerun redoes that probe alone.
    client.update_run(parent.info.run_id, status="FAILED")
    client.delete_run(generators["c64"])
    proc = run_sweep(config, uri, tmp_path / "ray", ray_tmp, *args)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert find_parent(client, experiment_id, study["sweep"]) is None  # the same parent, finished again
    assert proc.stdout.count("already finished in run") == 3  # two tokenizers and one generator skipped
    assert "[c64] generation probe: training" in proc.stdout
    tokenizer = find_children(client, experiment_id, parent.info.run_id)["c64"]
    (again,) = find_children(client, experiment_id, tokenizer.info.run_id).values()
    assert again.info.run_id != generators["c64"] and again.info.status == "FINISHED"
