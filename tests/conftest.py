"""Shared fixtures: a real sample corpus and its tubelet shards, built once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import ray

from data_prep.ray_session import local_ray_env
from tests.helpers import run_cli
from workflows.training.jit_build import use_the_environments_ninja

# DeepSpeed chooses its accelerator at import; these machines have no GPU.
os.environ.setdefault("DS_ACCELERATOR", "cpu")
# The tests' own DeepSpeed processes (and the Ray clusters they start) load its CPU op with the venv's ninja, as
# the trainer's workers do, whatever PATH pytest was started with: two ninjas rebuild the op in turn.
use_the_environments_ninja()


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    proc = run_cli(sys.executable, "-m", "data_prep", "sample-corpus", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def sample_shards(tmp_path_factory, sample_corpus) -> Path:
    """The sample corpus as 32x32 tubelet shards (images 1 frame, videos 4 frames): small and quick."""
    out = tmp_path_factory.mktemp("shards") / "shards"
    proc = run_cli(
        sys.executable, "-m", "data_prep", "run", "--input", str(sample_corpus), "--output", str(out),
        "--frames", "4", "--size", "32", "--fps", "8",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def local_ray():
    """A fresh local Ray in this process with 4 logical CPUs: 2 training workers plus room for Ray Data.

    An earlier module may have left its own (smaller) session running, so that one is shut down first.
    """
    ray.shutdown()
    with pytest.MonkeyPatch.context() as env:  # the environment connect_ray gives a local Ray's driver
        for name, value in local_ray_env().items():
            env.setenv(name, value)
        ray.init(address="local", num_cpus=4, include_dashboard=False)
        yield
        ray.shutdown()
