"""The runs page in a real browser: a sweep's parent and its children, made by the workflows' own tracking
calls, are what a user sees on the page the demo prints (MLflow's "Model training" runs table)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.browser.dashboard_check import browser_missing, check_dashboard
from workflows.tracking import CONFIG_ROLE, ROLE_TAG, open_parent, open_run, prepare_tracking

pytestmark = pytest.mark.integration


def test_runs_page_shows_the_sweep_and_its_children(tmp_path):
    missing = browser_missing()
    if missing:
        pytest.skip(f"dashboard check needs a browser: {missing}")
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "vitok-scaling")
    client = MlflowClient(uri)
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    parent, _ = open_parent(client, experiment_id, "e-sweep-tiny", {"study": "e_sweep"}, {"git_commit": "test"})
    children = ["N-N-8_c4", "N-N-8_c16", "N-N-16_c64"]
    for name in children:
        run_id, _ = open_run(client, experiment_id, name, {"E": 256}, {ROLE_TAG: CONFIG_ROLE}, parent)
        client.log_metric(run_id, "eval_psnr", 24.0)
        client.set_terminated(run_id, "FINISHED")
    client.set_terminated(parent, "FINISHED")

    shot = tmp_path / "runs.png"
    expected, seen = check_dashboard(uri, "vitok-scaling", "e-sweep-tiny", shot)
    assert expected == {"e-sweep-tiny", *children}
    assert seen == expected, f"missing on the page: {expected - seen} (screenshot {shot})"
    assert shot.stat().st_size > 10_000
