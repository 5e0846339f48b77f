"""What the benchmarks share: the record of where and when a benchmark ran, and a child process pinned to
given cores, measured for its peak memory and for how much of those cores other processes used meanwhile."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def environment(watched: list[str]) -> dict:
    """Date, commit (`-dirty` when any of the `watched` paths has uncommitted changes), CPU, cores the process
    may use, memory and Python: every benchmark's JSON starts with these."""
    git = lambda *args: subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()  # noqa: E731
    dirty = bool(git("status", "--porcelain", "--", *watched))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD") + ("-dirty" if dirty else ""),
        "hardware": {"cpu": cpu or platform.processor(), "cores": len(os.sched_getaffinity(0)),
                     "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},  # fmt: skip
        "python": platform.python_version(),
    }


def measure_child(script: str, args: list[str], cores: list[int]) -> dict:
    """Runs `script _child CORES ARGS...` pinned to `cores` (the script's own `_child` mode, which prints one
    JSON line); returns that result plus the process tree's peak RSS (`peak_rss_mb`) and the share of the
    cores' time that processes outside the tree used meanwhile (`foreign_cpu_share`: other work on a shared
    machine; figures taken under load are low)."""
    cmd = [sys.executable, script, "_child", json.dumps(cores), *args]
    busy_before, start = _busy_seconds(cores), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
    root = psutil.Process(proc.pid)
    peak, cpu = 0, {}
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        peak = max(peak, sum(_rss(p) for p in tree))
        for p in tree:
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        time.sleep(0.1)
    proc.wait()
    wall, busy = time.monotonic() - start, _busy_seconds(cores) - busy_before
    out = proc.stdout.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(peak / 2**20, 1)
    result["foreign_cpu_share"] = round(max(0.0, busy - sum(cpu.values())) / (wall * len(cores)), 3)
    return result


def _busy_seconds(cores: list[int]) -> float:
    per_cpu = psutil.cpu_times(percpu=True)
    return sum(per_cpu[c].user + per_cpu[c].system + per_cpu[c].nice for c in cores)


def _rss(p: psutil.Process) -> int:
    try:
        return p.memory_info().rss
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0
