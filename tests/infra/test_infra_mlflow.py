"""infra/mlflow: run_server.sh builds the right `mlflow server` command (checked with --dry-run, no server
started), refuses unsafe set-ups, and the k8s Deployment lets in the host names the Ray jobs use."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from tests.infra.manifests import INFRA, MLFLOW_URI, load_docs

SCRIPT = INFRA / "mlflow" / "run_server.sh"
BASE_ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          env={**BASE_ENV, **env})


GOOD = {"MLFLOW_BACKEND_STORE_URI": "postgresql://mlflow@db.internal:5432/mlflow",
        "MLFLOW_ARTIFACTS_DESTINATION": "s3://vitok-mlflow/mlartifacts"}


def test_script_is_executable_and_parses():
    assert os.access(SCRIPT, os.X_OK)
    assert subprocess.run(["bash", "-n", str(SCRIPT)], timeout=30).returncode == 0


def test_default_binds_loopback_with_postgres_and_s3():
    proc = _run("--dry-run", **GOOD)
    assert proc.returncode == 0, proc.stderr
    argv = shlex.split(proc.stdout)
    assert argv[:2] == ["mlflow", "server"]
    argv_wo_flag = [a for a in argv[2:] if a != "--serve-artifacts"]
    opts = dict(zip(argv_wo_flag[::2], argv_wo_flag[1::2]))
    assert opts["--host"] == "127.0.0.1" and opts["--port"] == "5000"
    assert opts["--backend-store-uri"] == GOOD["MLFLOW_BACKEND_STORE_URI"]
    assert opts["--artifacts-destination"] == GOOD["MLFLOW_ARTIFACTS_DESTINATION"]
    assert "--serve-artifacts" in argv, "artifacts must be proxied so clients need no S3 credentials"
    assert "--allowed-hosts" not in opts


def test_every_option_it_passes_exists_in_this_mlflow():
    """The flags the script emits, checked against the installed `mlflow server` command (no server start)."""
    from mlflow.cli import server

    proc = _run("--dry-run", "--host", "0.0.0.0", "--allowed-hosts", "mlflow:5000", **GOOD)
    assert proc.returncode == 0, proc.stderr
    flags = {a for a in shlex.split(proc.stdout) if a.startswith("--")}
    known = {opt for param in server.params for opt in param.opts + param.secondary_opts}
    assert flags <= known, f"unknown to mlflow server: {flags - known}"
    help_text = CliRunner().invoke(server, ["--help"]).output
    assert "--allowed-hosts" in help_text


@pytest.mark.parametrize("args,env,needle", [
    ((), {}, "no backend store"),
    ((), {"MLFLOW_BACKEND_STORE_URI": GOOD["MLFLOW_BACKEND_STORE_URI"]}, "no artifact destination"),
    ((), {**GOOD, "MLFLOW_BACKEND_STORE_URI": "postgresql://mlflow:hunter2@db/mlflow"}, "embeds a password"),
    ((), {**GOOD, "MLFLOW_BACKEND_STORE_URI": "./mlruns"}, "not a SQL URI"),
    (("--host", "0.0.0.0"), GOOD, "--allowed-hosts"),
    (("--port", "http"), GOOD, "not a number"),
    (("--bogus",), GOOD, "unknown option"),
])
def test_refuses_unsafe_or_incomplete_setups(args, env, needle):
    proc = _run(*args, "--dry-run", **env)
    assert proc.returncode == 2 and needle in proc.stderr, (proc.returncode, proc.stderr)
    assert "hunter2" not in proc.stderr


def test_k8s_deployment_configures_the_script_and_admits_the_jobs_host():
    from mlflow.server.security_utils import is_allowed_host_header

    docs = {d["kind"]: d for d in load_docs(INFRA / "mlflow" / "k8s.yaml")}
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    values = {k: e["value"] for k, e in env.items() if "value" in e}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-db"
    assert values["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert values["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    # the same variables, given to the script, produce a valid command
    proc = _run("--dry-run", **{k: v for k, v in values.items() if k.startswith("MLFLOW_")})
    assert proc.returncode == 0, proc.stderr
    allowed = values["MLFLOW_ALLOWED_HOSTS"].split(",")
    jobs_host = MLFLOW_URI.split("//", 1)[1]
    for host in (jobs_host, "mlflow:5000", "localhost:5000", "127.0.0.1:5000"):
        assert is_allowed_host_header(allowed, host), f"{host} would get 403"
    assert not is_allowed_host_header(allowed, "evil.example.com")
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/health"


def test_mlflow_image_runs_the_script():
    text = (INFRA / "docker" / "mlflow.Dockerfile").read_text()
    assert "infra/mlflow/run_server.sh" in text and "psycopg2" in text and "boto3" in text
    docs = yaml.safe_load_all((INFRA / "mlflow" / "k8s.yaml").read_text())
    assert any(d["kind"] == "Deployment" for d in docs)
