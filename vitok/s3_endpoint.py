"""Where S3 lives: the endpoint of an S3-compatible store and the region, resolved one way for the whole project.

`data_prep` (boto3 and pyarrow) and `vitok.checkpoint` (pyarrow) both read S3; they take the endpoint from
here so that an endpoint written with or without a scheme means the same thing everywhere. Pure Python: no
boto3 or pyarrow import, so `vitok` stays importable without them.
"""

from __future__ import annotations

import os

DEFAULT_SCHEME = "https"  # what AWS itself and boto3 use when an endpoint names no scheme


def resolve_endpoint(explicit: str | None = None) -> str | None:
    """The endpoint URL with its scheme: the explicit one, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
    (the variables boto3 reads), else None (AWS's own endpoints)."""
    endpoint = explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    scheme, host = endpoint_parts(endpoint)
    return f"{scheme}://{host}"


def endpoint_parts(endpoint: str) -> tuple[str, str]:
    """'http://127.0.0.1:9000/' -> ('http', '127.0.0.1:9000'); '127.0.0.1:9000' -> ('https', '127.0.0.1:9000')."""
    scheme, sep, host = endpoint.partition("://")
    if not sep:
        scheme, host = DEFAULT_SCHEME, endpoint
    host = host.strip("/")
    if not host or scheme not in ("http", "https"):
        raise ValueError(f"S3 endpoint {endpoint!r}: expected host[:port] or http(s)://host[:port]")
    return scheme, host


def resolve_region(explicit: str | None = None) -> str | None:
    return explicit or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def pyarrow_s3_options(endpoint_url: str | None = None, region: str | None = None) -> dict:
    """Keyword arguments for `pyarrow.fs.S3FileSystem` (endpoint_override, scheme, region) from the above."""
    options: dict = {}
    endpoint = resolve_endpoint(endpoint_url)
    if endpoint:
        scheme, host = endpoint_parts(endpoint)
        options.update(endpoint_override=host, scheme=scheme)
    region = resolve_region(region)
    if region:
        options["region"] = region
    return options
