"""The record every benchmark's JSON starts with (bench/harness.environment)."""

from __future__ import annotations

from bench.harness import environment
from workflows.runtime.precision import cpu_has_native_bf16, resolve_precision


def test_the_record_says_whether_the_cpu_computes_bf16_natively():
    record = environment(["bench/harness.py"])
    assert set(record) == {"date", "git_commit", "hardware", "python"}
    hardware = record["hardware"]
    assert hardware["native_bf16"] is cpu_has_native_bf16()
    # What lets a reader tell which precision 'auto' trained a CPU benchmark in on this machine.
    assert resolve_precision("auto", use_gpu=False) == ("bf16" if hardware["native_bf16"] else "fp32")
    assert hardware["cores"] >= 1 and hardware["memory_gib"] > 0 and hardware["cpu"]
