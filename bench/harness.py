"""What the benchmarks share: the record of where and when a benchmark ran; a child process pinned to given
cores, measured for its peak memory and for how much of those cores other processes used meanwhile; and the CPU
time of this process's tree by kind of process (`TreeCpu`: which of Ray's processes a run's cores went to)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from workflows.runtime.precision import cpu_has_native_bf16

REPO = Path(__file__).resolve().parents[1]


def environment(watched: list[str]) -> dict:
    """Date, commit (`-dirty` when any of the `watched` paths has uncommitted changes), CPU and whether it computes
    bf16 natively (CPUs of one model name come with and without it, and it decides the precision 'auto' trains in),
    cores the process may use, memory and Python: every benchmark's JSON starts with these."""
    git = lambda *args: subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()  # noqa: E731
    dirty = bool(git("status", "--porcelain", "--", *watched))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD") + ("-dirty" if dirty else ""),
        "hardware": {"cpu": cpu or platform.processor(), "native_bf16": cpu_has_native_bf16(),
                     "cores": len(os.sched_getaffinity(0)),
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


class TreeCpu:
    """CPU seconds that this process and its descendants use while the `with` block runs, by kind of process:
    a Ray worker by its process title (`ray::TrainController.run` -> "TrainController"; a pooled worker that
    never took a task stays "IDLE"), this process as "driver", and the rest of the tree (Ray's GCS, raylet,
    agents and monitors, which a local Ray starts as children of the driver) as "ray system".

    Sampled every `interval` seconds: a process that exits between two samples loses its last interval's CPU,
    and one that lives shorter than an interval is missed, so the figures are lower bounds."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.kind: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-cpu", daemon=True)

    def __enter__(self) -> "TreeCpu":
        self._sample()
        self.base = dict(self.last)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for pid, cpu in self.last.items():
            kind = self.kind[pid]
            totals[kind] = totals.get(kind, 0.0) + cpu - self.base.get(pid, 0.0)
        return {kind: round(seconds, 2) for kind, seconds in sorted(totals.items(), key=lambda kv: -kv[1])}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        root = psutil.Process()
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for p in tree:
            try:
                times, title = p.cpu_times(), (p.cmdline() or [""])[0]
            except psutil.Error:
                continue
            self.last[p.pid] = times.user + times.system
            if p.pid == root.pid:
                self.kind[p.pid] = "driver"
            elif title.startswith("ray::"):
                kind = title[len("ray::"):].split(".")[0].split(" ")[0]
                if kind != "IDLE" or p.pid not in self.kind:  # keep what a pooled worker became
                    self.kind[p.pid] = kind
            else:
                self.kind.setdefault(p.pid, "ray system")
