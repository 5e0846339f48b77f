"""Fixtures of the integration tests that run CLIs with their own local Ray."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from tests.helpers import kill_ray_processes


@pytest.fixture
def ray_tmp():
    """A private Ray temp root (short: Ray's socket paths must stay under 108 bytes), so the test's local
    Ray is not confused with other Ray instances on the machine and its leftovers can be found by path."""
    root = tempfile.mkdtemp(prefix="rs", dir="/tmp")
    yield root
    kill_ray_processes(root)
    shutil.rmtree(root, ignore_errors=True)
