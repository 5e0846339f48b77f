"""The four kinds of tokenizer reference, each against a real service on 127.0.0.1: a folder; s3:// on moto's
S3 server; runs:/<id>/model and models:/<name>/<version> | models:/<name>@<alias> on a real `mlflow server`
(SQLite backend, artifacts proxied by the server). The registry side is the code a sweep runs
(tracking.sweep_exports, register_exports, set_alias_to_best, and `scale_sweep.py --register-only`);
unknown models, versions, aliases and runs fail with one line.
Ends with the cache itself taking its tokenizer from the registry by alias, as the README's command does."""

from __future__ import annotations

import hashlib
import json

import boto3
import numpy as np
import pytest
import torch
import yaml
from moto.server import ThreadedMotoServer

from tests.helpers import mlflow_server as mlflow_server_at
from vitok import ViTok
from workflows import scale_sweep
from workflows.cache_latents import main as cache_latents_cli
from workflows.latents.errors import LatentsError
from workflows.latents.tokenizer import load_tokenizer
from workflows.tracking import (
    MlflowClient, register_exports, registered_model_name, set_alias_to_best, sweep_exports,
)  # fmt: skip

pytestmark = pytest.mark.integration
SWEEP = "refs-test"
MODEL = registered_model_name(SWEEP)


def sha256(folder) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Two exported tokenizers with different weights (and so different sha256)."""
    root = tmp_path_factory.mktemp("exports")
    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        folders.append(ViTok.from_name("N-N/8", channels=4).save_pretrained(root / f"seed{seed}"))
    return folders


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with mlflow_server_at(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="module")
def registered(mlflow_server, exports):
    """Two finished config runs of a sweep, as the trainer leaves them (tags, params, eval metrics, `model/`),
    one unfinished, registered as a sweep registers them."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("refs")
    runs = []
    for k, (folder, psnr, rfid) in enumerate(zip([*exports, exports[0]], (21.5, 23.0, 30.0), (40.0, 55.0, 1.0))):
        run_id = client.create_run(experiment, run_name=f"c{k}", tags={"sweep": SWEEP, "role": "config"}).info.run_id
        client.log_param(run_id, "E", 64)
        client.log_param(run_id, "model.variant", "N-N/8")
        client.log_artifacts(run_id, str(folder), "model")
        client.log_metric(run_id, "eval_psnr", psnr)
        client.log_metric(run_id, "eval_rfid", rfid)
        client.log_metric(run_id, "loss", 0.1)
        if k < 2:
            client.set_terminated(run_id)  # the third stays RUNNING: not a finished export
        runs.append(run_id)
    versions = register_exports(client, SWEEP, sweep_exports(client, experiment, SWEEP))
    return client, runs[:2], versions


def test_registration_tags_versions_and_is_idempotent(registered):
    client, runs, versions = registered
    assert [v.run_id for v in versions] == runs and [int(v.version) for v in versions] == [1, 2]
    tags = client.get_model_version(MODEL, "2").tags
    assert tags == {"sweep": SWEEP, "config": "c1", "variant": "N-N/8", "E": "64", "eval_psnr": "23.0",
                    "eval_rfid": "55.0"}  # fmt: skip
    again = register_exports(client, SWEEP, [(r, {"config": "x", "E": "64"}) for r in runs])
    assert [v.version for v in again] == [v.version for v in versions]
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2


def test_alias_goes_to_the_best_version_by_the_metric(registered):
    client, _, _ = registered
    assert set_alias_to_best(client, MODEL, "best", "eval_psnr").version == "2"  # higher PSNR is better
    assert set_alias_to_best(client, MODEL, "best-rfid", "eval_rfid").version == "1"  # lower rFID is better
    with pytest.raises(LookupError, match="no version is tagged with the metric eval_ssim"):
        set_alias_to_best(client, MODEL, "best-ssim", "eval_ssim")


def test_the_sweep_command_registers_and_moves_an_alias_without_training(registered, mlflow_server, sample_shards,
                                                                         tmp_path, capsys):  # fmt: skip
    client, _, _ = registered
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "sweep": SWEEP, "experiment": "refs", "runs": [{"name": "c0"}],
        "base": {"model": {"variant": "N-N/8", "channels": 4}, "data": {"shards": str(sample_shards)}},
    }))  # fmt: skip
    argv = ["--config", str(config), "--tracking-uri", mlflow_server, "--register-only", "--alias", "low-rfid"]
    assert scale_sweep.main([*argv, "--best-by", "eval_rfid"]) == 0
    assert client.get_model_version_by_alias(MODEL, "low-rfid").version == "1"
    printed = capsys.readouterr().out
    assert f"registry: 2 tokenizers are versions of {MODEL}" in printed  # registered once: still 2 versions
    assert f"{MODEL}@low-rfid -> version 1 (config c0, eval_rfid 40)" in printed
    with pytest.raises(SystemExit) as exit_info:  # not an eval metric: refused before the registry is read
        scale_sweep.main([*argv, "--best-by", "eval_fvd"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "argument --best-by: invalid choice: 'eval_fvd'" in err
    assert len(client.search_runs([client.get_experiment_by_name("refs").experiment_id])) == 3  # nothing trained


def test_models_and_runs_references_load_the_registered_weights(registered, exports, mlflow_server):
    client, runs, _ = registered
    set_alias_to_best(client, MODEL, "best", "eval_psnr")
    cases = {
        f"models:/{MODEL}/1": exports[0],
        f"models:/{MODEL}@best": exports[1],
        f"runs:/{runs[0]}/model": exports[0],
    }
    for reference, folder in cases.items():
        tok = load_tokenizer(reference, tracking_uri=mlflow_server)
        assert tok.weights_sha256 == sha256(folder), reference
        assert tok.source.startswith("mlflow-artifacts:/")  # fetched through the server, not from its disk
        x = torch.rand(2, 1, 32, 32, 3) * 2 - 1
        loaded = ViTok.from_files(tok.files)
        with torch.inference_mode():
            expected = ViTok.from_pretrained(folder).encode(x, sample=False)
            torch.testing.assert_close(loaded.encode(x, sample=False), expected)
    assert load_tokenizer(f"models:/{MODEL}@best", tracking_uri=mlflow_server).registry == {
        "name": MODEL, "version": "2", "run_id": runs[1], "alias": "best"}  # fmt: skip


@pytest.mark.parametrize("reference, message", [
    ("models:/no-such-model/1", "no registered model named 'no-such-model'"),
    (f"models:/{MODEL}@worst", f"registered model '{MODEL}' has no alias 'worst' (its aliases: best"),
    (f"models:/{MODEL}/9", f"registered model '{MODEL}' has no version 9 (its versions: 1, 2)"),
    ("runs:/0123456789abcdef0123456789abcdef/model", "no run with id 0123456789abcdef0123456789abcdef"),
    ("models:/only-a-name", "expected runs:/<run_id>/<path>, models:/<name>/<version> or models:/<name>@<alias>"),
])  # fmt: skip
def test_unknown_registry_references_fail_with_one_line(registered, mlflow_server, reference, message):
    set_alias_to_best(registered[0], MODEL, "best", "eval_psnr")
    with pytest.raises(LatentsError) as err:
        load_tokenizer(reference, tracking_uri=mlflow_server)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"tokenizer {reference}: ")


def test_folder_reference(exports):
    tok = load_tokenizer(str(exports[0]))
    assert tok.weights_sha256 == sha256(exports[0]) and tok.source == str(exports[0]) and tok.registry == {}
    with pytest.raises(LatentsError, match="no such folder"):
        load_tokenizer(str(exports[0] / "missing"))
    with pytest.raises(LatentsError, match="not a tokenizer export \\(model.safetensors is missing"):
        load_tokenizer(str(exports[0].parent))


def test_s3_reference(exports):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="tokenizers")
        for name in ("model.safetensors", "config.json"):
            s3.upload_file(str(exports[1] / name), "tokenizers", f"vitok/seed2/{name}")
        tok = load_tokenizer("s3://tokenizers/vitok/seed2", s3_endpoint_url=endpoint)
        assert tok.weights_sha256 == sha256(exports[1]) and tok.source == "s3://tokenizers/vitok/seed2"
        with pytest.raises(LatentsError, match="tokenizer s3://tokenizers/vitok/none: nothing at that URI"):
            load_tokenizer("s3://tokenizers/vitok/none", s3_endpoint_url=endpoint)
    finally:
        server.stop()


def test_cache_with_the_registrys_best_tokenizer(local_ray, registered, exports, mlflow_server, sample_shards,
                                                 tmp_path, capsys):  # fmt: skip
    set_alias_to_best(registered[0], MODEL, "best", "eval_psnr")
    out = tmp_path / "latents"
    code = cache_latents_cli(["--shards", str(sample_shards), "--tokenizer", f"models:/{MODEL}@best", "--output",
                              str(out), "--tracking-uri", mlflow_server, "--media-type", "image"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"]["weights_sha256"] == sha256(exports[1])
    assert manifest["tokenizer"]["registry"]["version"] == "2"
    summary = json.loads(printed.strip().splitlines()[-1])
    assert summary["totals"]["latents"] == manifest["totals"]["latents"] > 0
    assert "scale_factor" in printed and f"latents in {out}:" in printed
    assert np.isfinite(summary["stats"]["scale_factor"])

    code = cache_latents_cli(["--shards", str(sample_shards), "--tokenizer", f"models:/{MODEL}@nope",
                              "--output", str(tmp_path / "other"), "--tracking-uri", mlflow_server])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has no alias 'nope'" in err[0]
