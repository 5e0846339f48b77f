"""run_server.sh for real: a tracking server with artifacts proxied to S3 (a local moto server stands in for
S3, SQLite for PostgreSQL), bound to loopback, logging from a client that has no S3 credentials.

The server alone takes ~25 s to start on a 2-core machine, which would triple the time of tests/infra, so
this test runs only when integration tests are asked for by name:  pytest tests/infra -m integration
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.infra.manifests import INFRA

pytestmark = pytest.mark.integration
SCRIPT = INFRA / "mlflow" / "run_server.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_server_proxies_artifacts_to_s3_and_binds_loopback(tmp_path: Path, request):
    if "integration" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow (~30 s): run with  pytest tests/infra -m integration")
    bin_dir = Path(sys.executable).parent
    moto = shutil.which("moto_server", path=str(bin_dir)) or shutil.which("moto_server")
    if moto is None:
        pytest.skip("moto_server not installed (test extra: moto[server])")
    import boto3

    s3_port, mlflow_port = _free_port(), _free_port()
    s3_url = f"http://127.0.0.1:{s3_port}"
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    s3_proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(s3_port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
    server = None
    try:
        _wait(s3_url, s3_proc)
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket="vitok-mlflow")
        server = subprocess.Popen(
            ["bash", str(SCRIPT), "--port", str(mlflow_port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**env, **creds, "MLFLOW_S3_ENDPOINT_URL": s3_url,
                 "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                 "MLFLOW_ARTIFACTS_DESTINATION": "s3://vitok-mlflow/mlartifacts"})
        uri = f"http://127.0.0.1:{mlflow_port}"
        _wait(f"{uri}/health", server)

        client_env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "MLFLOW_S3"))}
        code = (
            "import mlflow, pathlib, sys\n"
            "p = pathlib.Path(sys.argv[1]); p.write_text('hello')\n"
            "with mlflow.start_run() as run:\n"
            "    mlflow.log_metric('psnr', 20.0); mlflow.log_artifact(str(p))\n"
            "print(run.info.run_id, run.info.artifact_uri)\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "note.txt")], capture_output=True,
                             text=True, timeout=120, env={**client_env, "MLFLOW_TRACKING_URI": uri})
        assert out.returncode == 0, out.stderr[-2000:]
        run_id, artifact_uri = out.stdout.split()[-2:]
        assert artifact_uri.startswith("mlflow-artifacts:"), "artifacts must go through the server"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="vitok-mlflow").get("Contents", [])]
        assert any(k.startswith("mlartifacts/") and k.endswith(f"{run_id}/artifacts/note.txt") for k in keys), keys

        # loopback only: the port is not open on another local address, and foreign Host headers get 403
        request = urllib.request.Request(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1",
                                         headers={"Host": "evil.example.com"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 403
        other = socket.gethostbyname(socket.gethostname())
        if not other.startswith("127."):
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((other, mlflow_port)) != 0, "server reachable beyond loopback"
    finally:
        if server is not None:
            _stop(server)
        _stop(s3_proc)
