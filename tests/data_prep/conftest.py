"""Fake AWS credentials for the loopback S3 server, set at collection, before any Ray worker starts.

Ray workers inherit the environment of the process that starts Ray, so credentials set later would not
reach them. The values are moto's test values: nothing here can reach real AWS (tests only talk to
127.0.0.1, and the endpoint is always given explicitly).
"""

import os

import pytest
import ray

for key, value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def ray_session():
    """One 2-CPU Ray for every in-process test here (starting Ray costs seconds; tests share it)."""
    if ray.is_initialized():  # a session-wide fixture elsewhere owns it: share it, leave it running
        yield
        return
    ray.init(address="local", num_cpus=2, include_dashboard=False)  # never a cluster another process left
    yield
    ray.shutdown()
