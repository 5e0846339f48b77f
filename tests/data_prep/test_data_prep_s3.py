"""S3 end to end against a real S3-compatible HTTP server (moto's standalone server) on 127.0.0.1:
corpus read from one bucket, shards + manifest + quarantine written to another, read back by Ray Data."""

import hashlib
import io
import json
import os

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from data_prep import DataPrepError, build_sample_corpus, load_manifest, read_tubelets, run

PREP = dict(frames=4, size=32, fps=8.0, max_clips=2, images_per_unit=3, videos_per_unit=2)
# Paths under the sample corpus's img/ and video/ (split and source folders), uploaded flat.
IMAGES = ("train/astronaut/astronaut_00.jpg", "train/camera/camera_00.jpg", "val/coins/coins_01.png",
          "train/horse/horse_01.png", "train/logo/logo_00.png")
VIDEOS = ("train/astronaut/astronaut_pan_right.mp4", "train/hubble/hubble_zoom_in.mp4")


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in ("corpus", "prepared"):
        client.create_bucket(Bucket=bucket)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def s3_corpus(s3_server, tmp_path_factory):
    _, client = s3_server
    full = build_sample_corpus(str(tmp_path_factory.mktemp("full")))
    for sub, names in (("img", IMAGES), ("video", VIDEOS)):
        for n in names:
            client.upload_file(os.path.join(full["path"], sub, n), "corpus", f"raw/{sub}/{os.path.basename(n)}")
    client.put_object(Bucket="corpus", Key="raw/img/notes.jpg", Body=b"not a JPEG")
    client.put_object(Bucket="corpus", Key="raw/img/empty.png", Body=b"")
    client.put_object(Bucket="corpus", Key="raw/notes/readme.txt", Body=b"ignored")
    client.put_object(Bucket="corpus", Key="other/img/x.jpg", Body=b"outside the prefix")
    return "s3://corpus/raw"


def test_s3_end_to_end(ray_session, s3_server, s3_corpus):
    endpoint, client = s3_server
    out = "s3://prepared/shards/v1"
    totals = run(s3_corpus, out, **PREP, s3_endpoint_url=endpoint)
    assert totals["inputs_seen"] == len(IMAGES) + len(VIDEOS) + 2
    assert totals["inputs_used"] == len(IMAGES) + len(VIDEOS) and totals["inputs_quarantined"] == 2

    keys = {o["Key"] for o in client.list_objects_v2(Bucket="prepared")["Contents"]}
    assert {"shards/v1/manifest.json", "shards/v1/quarantine.parquet", "shards/v1/params.json"} <= keys
    manifest = load_manifest(out, s3_endpoint_url=endpoint)
    assert manifest["totals"] == totals and manifest["files_ignored"] == 1
    for shard in manifest["shards"]:
        assert f"shards/v1/{shard['path']}" in keys
        body = client.get_object(Bucket="prepared", Key=f"shards/v1/{shard['path']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == shard["sha256"]
    body = client.get_object(Bucket="prepared", Key="shards/v1/quarantine.parquet")["Body"].read()
    quarantine = pq.read_table(io.BytesIO(body)).to_pylist()
    assert sorted(q["uri"] for q in quarantine) == ["s3://corpus/raw/img/empty.png", "s3://corpus/raw/img/notes.jpg"]
    assert {q["stage"] for q in quarantine} == {"sniff"}

    rows = []
    for media_type in ("image", "video"):
        for split in ("train", "val"):
            try:
                rows += read_tubelets(out, media_type, split, s3_endpoint_url=endpoint).take_all()
            except DataPrepError as e:  # a split may have no rows in so few files
                assert f"no {media_type} shards with {split} rows" in str(e)
    assert len(rows) == totals["tubelets"]
    assert all(r["source_uri"].startswith("s3://corpus/raw/") for r in rows)
    for r in rows:
        t = 1 if r["media_type"] == "image" else 4
        assert r["pixels"].shape == (t, 32, 32, 3) and r["pixels"].dtype == np.uint8 and r["pixels"].std() > 0

    # Rerun: nothing to do. Incremental with one new object: only it is processed.
    assert run(s3_corpus, out, **PREP, s3_endpoint_url=endpoint) == totals
    assert load_manifest(out, s3_endpoint_url=endpoint)["units_run"] == 0
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (50, 70, 3), np.uint8)).save(buf, format="PNG")
    client.put_object(Bucket="corpus", Key="raw/img/zz_new.png", Body=buf.getvalue())
    grown = run(s3_corpus, out, **PREP, s3_endpoint_url=endpoint, incremental=True)
    after = load_manifest(out, s3_endpoint_url=endpoint)
    assert after["inputs_run"] == 1 and grown["inputs_used"] == totals["inputs_used"] + 1
    assert [s for s in after["shards"] if s in manifest["shards"]] == manifest["shards"]  # old shards untouched
    assert json.loads(client.get_object(Bucket="prepared", Key="shards/v1/manifest.json")["Body"].read()) == after
