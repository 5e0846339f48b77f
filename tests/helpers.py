"""Helpers shared by tests: paths, running the venv's commands, free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_cli(*args: str, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path = REPO):
    """Runs a command with the venv's executables first on PATH; returns the CompletedProcess."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
