"""Helpers shared by tests: paths, running the venv's commands, free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# A line that Ray forwards to the driver's stderr from one of its workers or actors: "(Name pid=N) ...", after an
# optional ANSI colour code. Ray Train's actors may still be logging from an earlier test's run.
RAY_FORWARDED_LINE = re.compile(r"^(?:\x1b\[[0-9;]*m)?\([^)]*pid=\d+[^)]*\)")


def own_stderr_lines(err: str) -> list[str]:
    """The non-empty lines of an in-process CLI call's stderr, less those Ray forwarded from the workers of the
    test session's Ray (a CLI in a fresh process, as users run it, has none: it fails before Ray starts)."""
    return [line for line in err.splitlines() if line.strip() and not RAY_FORWARDED_LINE.match(line)]


def run_cli(*args: str, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path = REPO):
    """Runs a command with the venv's executables first on PATH; returns the CompletedProcess."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayHead:
    """A Ray head node on 127.0.0.1 with token auth, started with `ray start --block` for one test.

    The token is the test's own (what `ray get-auth-token --generate` makes for ~/.ray/auth_token), so the
    test neither reads nor changes the user's token. `env` is what the ray CLI and drivers need to join.
    The head runs in its own process session and `stop` ends that process tree alone: `ray stop` would end
    every Ray on the machine, a developer's own cluster or demo included.
    """

    def __init__(self, folder: Path, num_cpus: int, timeout: float = 180):
        token_file = folder / "auth_token"
        token_file.write_text(secrets.token_hex(32))
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
        proc = run_cli("ray", "get-auth-token", env=self.env)
        assert proc.returncode == 0 and proc.stdout.strip() == token_file.read_text(), proc.stderr
        gcs_port, dash_port = free_port(), free_port()
        self.gcs_address = f"127.0.0.1:{gcs_port}"
        self.dashboard = f"http://127.0.0.1:{dash_port}"
        log = folder / "ray-head.log"
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                 "--port", str(gcs_port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash_port),
                 "--num-cpus", str(num_cpus),
                 "--dashboard-agent-listen-port", str(free_port()),  # not the default 52365: other Rays may run
                 "--disable-usage-stats"],
                env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **self.env},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,  # jobs' `python` is the venv's
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not (self.answers() and self.dashboard_answers()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the Ray head did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)

    def answers(self) -> bool:
        try:
            return run_cli("ray", "status", "--address", self.gcs_address, env=self.env, timeout=60).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def dashboard_answers(self) -> bool:
        """Whether the dashboard's HTTP server (the job API) is up: it starts after the GCS, so a job
        submitted as soon as `ray status` answers could find nothing listening."""
        try:
            urllib.request.urlopen(f"{self.dashboard}/api/version", timeout=10).close()
        except urllib.error.HTTPError:  # it answered (e.g. 401 without the token): it is up
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        kill_process_tree(self.process)
        # `ray stop` would also remove the note of the latest cluster, which `ray.init()` without an address
        # (a tool outside this project) would otherwise try to join.
        latest = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if latest.is_file() and latest.read_text().strip().endswith(":" + self.gcs_address.rsplit(":", 1)[1]):
            latest.unlink()


def kill_process_tree(process: subprocess.Popen) -> None:
    """SIGKILLs a process started in its own session, its session's group and every process below it (Ray puts
    its workers in groups of their own), as a node crash would: nothing gets to clean up. Returns when they are
    gone."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for proc in tree:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)
    psutil.wait_procs(tree, timeout=10)


def registered_checkpoint(storage: Path) -> tuple[str, int]:
    """(folder name, step) of the latest checkpoint Ray Train has registered under `storage` (its controller's
    snapshot), or ("", 0): tests that kill a worker or a node wait for it, so the run has something to resume
    from."""
    for snapshot in storage.glob("*/checkpoint_manager_snapshot.json"):
        try:
            latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
        except ValueError:  # caught mid-write
            return "", 0
        return latest.get("checkpoint_dir_name", ""), int(latest.get("metrics", {}).get("step", 0))
    return "", 0


def registered_step(storage: Path) -> int:
    """The step of the latest checkpoint Ray Train has registered under `storage`, or 0."""
    return registered_checkpoint(storage)[1]


def kill_a_worker_after_checkpoint(storage: Path, killed: list[int], timeout: float = 300,
                                   owner: Callable[[], str | None] | None = None) -> None:  # fmt: skip
    """Waits until Ray Train has registered a checkpoint under `storage` (with `owner`: one of the MLflow run
    `owner()` returns, once it returns one), then SIGKILLs one Ray Train worker process of this test's Ray (a
    child of this process: other Ray sessions may share the machine), started after this call (not a worker an
    earlier test's Ray left exiting); appends its pid and the registered step to `killed`."""
    started = time.time()
    deadline = time.monotonic() + timeout

    def registered() -> bool:
        folder, step = registered_checkpoint(storage)
        run_id = owner() if owner is not None else ""
        return step > 0 and run_id is not None and folder.startswith(run_id)

    while time.monotonic() < deadline and not registered():
        time.sleep(0.05)
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.create_time() >= started and any("RayTrainWorker" in part for part in proc.cmdline()):
                step = registered_step(storage)
                os.kill(proc.pid, signal.SIGKILL)
                killed.extend([proc.pid, step])
                return
        except psutil.NoSuchProcess:
            continue


@contextlib.contextmanager
def mlflow_server(folder: Path, store: str | None = None, timeout: float = 120) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 for one test; yields its URL.

    By default a fresh SQLite store and artifact folder in `folder`; `store` serves an existing store instead
    (its artifacts where its experiments say). The server runs in its own session, ended with its children.
    """
    port = free_port()
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", store or f"sqlite:///{folder / 'server.db'}",
               "--host", "127.0.0.1", "--port", str(port)]
    if store is None:
        command += ["--artifacts-destination", str(folder / "artifacts")]
    log = folder / "mlflow-server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mlflow server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------ sweeps through the CLI

SWEEP_SCRIPT = REPO / "workflows" / "scale_sweep.py"


def ray_pids(root: str) -> list[int]:
    """Processes whose command line or environment names `root`: the local Ray a CLI started under
    RAY_TMPDIR=root."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if root.encode() in cmdline or f"RAY_TMPDIR={root}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def kill_ray_processes(root: str) -> list[int]:
    pids = ray_pids(root)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def sweep_env(ray_root: str) -> dict[str, str]:
    """The environment of a sweep CLI with its own local Ray under `ray_root` and the venv's tools first."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    return {**env, "RAY_TMPDIR": ray_root, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "DS_ACCELERATOR": "cpu"}


def run_sweep(config: Path, uri: str, storage: Path, ray_root: str, *extra: str, timeout: float = 900):
    """workflows/scale_sweep.py in a subprocess, to the end: the CompletedProcess with its output."""
    return subprocess.run(
        [sys.executable, str(SWEEP_SCRIPT), "--config", str(config), "--tracking-uri", uri, "--storage", str(storage),
         *extra], capture_output=True, text=True, timeout=timeout, env=sweep_env(ray_root), cwd=REPO,
    )  # fmt: skip


def actor_classes_started(ray_root: str) -> Counter[str]:
    """How many actors of each class the local Ray sessions under `ray_root` (a RAY_TMPDIR) started: Ray marks
    each actor's worker logs (.out and .err, one process per actor) with `:actor_name:<class>` when it is created."""
    actors: set[tuple[str, str]] = set()
    for log in Path(ray_root).rglob("worker-*"):
        if log.suffix in (".out", ".err"):
            actors.update((str(log.with_suffix("")), name)
                          for name in re.findall(r":actor_name:(\w+)", log.read_text(errors="replace")))  # fmt: skip
    return Counter(name for _, name in actors)
