"""S3 access the AWS way: one boto3 client per process, `standard` retries, credentials from the default chain.

Nothing here reads or logs a credential. The endpoint (for S3-compatible stores) and region come from the
explicit settings when given, else from boto3's own configuration (AWS_ENDPOINT_URL, AWS_REGION, profiles),
which boto3 resolves itself, so a worker process configured like the driver reaches the same store.
"""

from __future__ import annotations

import dataclasses
import functools

from data_prep.errors import DataPrepError
from vitok.s3_endpoint import pyarrow_s3_options, resolve_endpoint

MAX_ATTEMPTS = 8  # with the "standard" retry mode; boto3's default is the older "legacy" mode


@dataclasses.dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None  # None: boto3 resolves it (AWS_ENDPOINT_URL, config files), else AWS
    region: str | None = None  # None: boto3 resolves it (AWS_REGION / AWS_DEFAULT_REGION, config files)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/a/b -> ("bucket", "a/b"); the key part has no leading or trailing slash."""
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise DataPrepError(f"{uri}: no bucket in the S3 URI (expected s3://bucket/prefix)")
    return bucket, key.strip("/")


@functools.lru_cache(maxsize=8)
def client(settings: S3Settings):
    """A boto3 S3 client per settings and process (clients are thread-safe; sessions are not shared)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=resolve_endpoint(settings.endpoint_url),
        region_name=settings.region,
        # A fresh dict: botocore rewrites the retries dict it is given.
        config=Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}, max_pool_connections=32),
    )


def pyarrow_filesystem(settings: S3Settings):
    """A pyarrow S3FileSystem on the same endpoint (for Ray Data readers); credentials from the default chain."""
    from pyarrow import fs

    return fs.S3FileSystem(
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=MAX_ATTEMPTS),
        **pyarrow_s3_options(settings.endpoint_url, settings.region),
    )
