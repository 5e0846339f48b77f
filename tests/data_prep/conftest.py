"""Fake AWS credentials for the loopback S3 server, set at collection, before any Ray worker starts.

Ray workers inherit the environment of the process that starts Ray, so credentials set later would not
reach them. The values are moto's test values: nothing here can reach real AWS (tests only talk to
127.0.0.1, and the endpoint is always given explicitly).
"""

import os

for key, value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(key, value)
