"""Artifact addresses read back from a real SQLite MLflow store: a file at the top level, a nested file and
a folder each have one; a missing one is a LookupError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.tracking import run_artifact_uri, tracking_client


def test_run_artifact_uri_finds_files_and_folders_and_refuses_a_missing_one(tmp_path):
    client = tracking_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("artifacts", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    for path in ("findings.md", "plots/e/psnr.txt", "model/config.json"):
        client.log_text(run_id, path, path)
    for path in ("findings.md", "plots/e/psnr.txt"):
        assert Path(run_artifact_uri(client, run_id, path)).read_text() == path
    assert Path(run_artifact_uri(client, run_id, "model")).is_dir()
    with pytest.raises(LookupError, match="no artifact 'summary.md'"):
        run_artifact_uri(client, run_id, "summary.md")
