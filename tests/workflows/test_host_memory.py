"""The allocator setting of training processes: it takes effect in a fresh process (glibc here), and a large
temporary allocated again and again then reuses heap pages instead of faulting in fresh ones."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

PROBE = """
import resource, sys, torch
from workflows.runtime.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
x = torch.rand(16_000_000)  # 64 MB: above glibc's largest mmap threshold
for _ in range(3):
    (x * 2).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    (x * 2).sum()  # a fresh 64 MB temporary each time
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.strip().splitlines()[-1])


def test_large_temporaries_reuse_the_heap_instead_of_faulting_in_fresh_pages():
    default, kept = page_faults("default"), page_faults("keep")
    assert default > 20 * 10_000  # each 64 MB temporary faults in ~15,600 fresh 4 KiB pages
    assert kept < default / 4  # measured here: about a fifth as many
