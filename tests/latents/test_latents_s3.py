"""The latent cache with everything on S3 (moto's standalone server on 127.0.0.1): tubelet shards read from
one bucket, the tokenizer from another (an s3:// reference), latent shards, manifest and stats written to a
third; read back with boto3, checksums and counts as locally; a rerun encodes and writes nothing."""

from __future__ import annotations

import hashlib
import io
import json

import boto3
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from workflows.latents.params import CacheOptions
from workflows.latents.pipeline import cache_latents

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(sample_shards, tiny_tokenizer):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in ("prepared", "models", "latents"):
        client.create_bucket(Bucket=bucket)
    manifest = json.loads((sample_shards / "manifest.json").read_text())
    for rel in ["manifest.json", *(s["path"] for s in manifest["shards"] if s["media_type"] == "image")]:
        client.upload_file(str(sample_shards / rel), "prepared", f"shards/{rel}")
    for name in ("model.safetensors", "config.json"):
        client.upload_file(str(tiny_tokenizer / name), "models", f"tiny/{name}")
    yield endpoint, client
    server.stop()


def test_s3_in_s3_tokenizer_s3_out(local_ray, s3, sample_shards):
    endpoint, client = s3
    options = CacheOptions(media_types=("image",), precision="fp32")
    summary = cache_latents("s3://prepared/shards", "s3://models/tiny", "s3://latents/v1", options,
                            s3_endpoint_url=endpoint)  # fmt: skip
    tubelets = json.loads((sample_shards / "manifest.json").read_text())
    images = [s for s in tubelets["shards"] if s["media_type"] == "image"]
    assert summary["units_run"] == len(images) and summary["latents_run"] == sum(s["rows"] for s in images)

    def get(key: str) -> bytes:
        return client.get_object(Bucket="latents", Key=f"v1/{key}")["Body"].read()

    manifest = json.loads(get("manifest.json"))
    assert manifest["tubelets"]["root"] == "s3://prepared/shards"
    assert manifest["tokenizer"]["source"] == "s3://models/tiny"
    assert json.loads(get("latent_stats.json")) == summary["stats"]
    for shard in manifest["shards"]:
        data = get(shard["path"])
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == shard["rows"] and table.column_names[:2] == ["sample_id", "latent"]
    modified = client.head_object(Bucket="latents", Key="v1/manifest.json")["LastModified"]

    again = cache_latents("s3://prepared/shards", "s3://models/tiny", "s3://latents/v1", options,
                          s3_endpoint_url=endpoint)  # fmt: skip
    assert again["units_run"] == 0 and again["written"] is False
    assert client.head_object(Bucket="latents", Key="v1/manifest.json")["LastModified"] == modified
