"""The pipeline end to end on a small copy of the real sample corpus plus real broken inputs, on one Ray."""

import hashlib
import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import DataPrepError, build_sample_corpus, load_manifest, read_tubelets, run
from tests.data_prep.bad_media import BAD, DISGUISED, add_bad_media

FRAMES, SIZE = 4, 32
PREP = dict(frames=FRAMES, size=SIZE, fps=8.0, max_clips=2, images_per_unit=4, videos_per_unit=2)
# Paths under the sample corpus's img/ and video/ (split and source folders); copied flat, so the small
# corpus is split by hash like any corpus without split folders.
KEPT_IMAGES = ("train/astronaut/astronaut_00.jpg", "train/camera/camera_00.jpg", "val/coins/coins_01.png",
               "train/horse/horse_01.png", "train/ihc/ihc_03.png", "train/logo/logo_00.png", "train/moon/moon_00.jpg")
KEPT_VIDEOS = ("train/astronaut/astronaut_pan_right.mp4", "val/chelsea/chelsea_pan_down.mp4",
               "val/coins/coins_zoom_out.mp4", "train/hubble/hubble_zoom_in.mp4")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    full = build_sample_corpus(str(tmp_path_factory.mktemp("full")))
    root = tmp_path_factory.mktemp("corpus")
    for sub, names in (("img", KEPT_IMAGES), ("video", KEPT_VIDEOS)):
        os.makedirs(root / sub)
        for n in names:
            shutil.copy(os.path.join(full["path"], sub, n), root / sub / os.path.basename(n))
    add_bad_media(root, root / "video/astronaut_pan_right.mp4", root / "img/astronaut_00.jpg")
    (root / "README.txt").write_text("not media: ignored, not counted\n")
    return str(root)


@pytest.fixture(scope="module")
def prepared(ray_session, corpus, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out"))
    totals = run(corpus, out, **PREP)
    return out, totals


def test_accounting_closes_and_bad_inputs_are_quarantined(prepared, corpus):
    out, totals = prepared
    good = len(KEPT_IMAGES) + len(KEPT_VIDEOS) + len(DISGUISED)
    assert len(BAD) >= 10
    assert totals["inputs_seen"] == good + len(BAD) == totals["inputs_used"] + totals["inputs_quarantined"]
    assert totals["inputs_quarantined"] == len(BAD)
    assert totals["tubelets"] == totals["train_tubelets"] + totals["val_tubelets"]
    q = pq.read_table(os.path.join(out, "quarantine.parquet")).to_pylist()
    by_name = {os.path.relpath(r["uri"], corpus): r for r in q}
    assert set(by_name) == set(BAD)
    for name, (stage, error_type) in BAD.items():
        assert (by_name[name]["stage"], by_name[name]["error_type"]) == (stage, error_type), by_name[name]
        assert by_name[name]["message"]
    manifest = load_manifest(out)
    assert manifest["totals"] == totals and manifest["files_ignored"] == 1
    reasons = {f"{stage}/{error_type}" for stage, error_type in BAD.values()}
    assert set(manifest["quarantined_by_reason"]) == reasons
    assert sum(manifest["quarantined_by_reason"].values()) == len(BAD)
    records = [json.load(open(os.path.join(out, "units", n))) for n in os.listdir(os.path.join(out, "units"))]
    # Units whose inputs were all bad commit a record with no shard: they are done, and stay done.
    no_shard = [r for r in records if r["shard"] is None]
    assert no_shard and all(r["stats"]["inputs_used"] == 0 for r in no_shard)
    assert len(records) == manifest["units"] == len(manifest["shards"]) + len(no_shard)


def test_media_type_comes_from_the_content(prepared, corpus):
    out, _ = prepared
    rows = read_tubelets(out, "image", "train").drop_columns(["pixels"]).take_all()
    rows += read_tubelets(out, "image", "val").drop_columns(["pixels"]).take_all()
    by_name = {os.path.relpath(r["source_uri"], corpus): r for r in rows}
    for name, media_type in DISGUISED.items():
        assert by_name[name]["media_type"] == media_type


def test_shards_have_the_schema_shapes_and_checksums(prepared):
    out, totals = prepared
    manifest = load_manifest(out)
    assert sum(s["rows"] for s in manifest["shards"]) == totals["tubelets"]
    for shard in manifest["shards"]:
        data = open(os.path.join(out, shard["path"]), "rb").read()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        assert shard["path"].startswith({"image": "images/", "video": "videos/"}[shard["media_type"]])
    for media_type, t in (("image", 1), ("video", FRAMES)):
        rows = read_tubelets(out, media_type, "train").take_all()
        assert rows and all(r["split"] == "train" and r["media_type"] == media_type for r in rows)
        for r in rows:
            assert r["pixels"].shape == (t, SIZE, SIZE, 3) and r["pixels"].dtype == np.uint8
            assert r["pixels"].std() > 0  # real picture content, not a blank
            assert r["orig_height"] > 0 and r["orig_width"] > 0
        if media_type == "video":
            assert {r["frame_stride"] for r in rows} <= {2, 3, 4}  # 12/24/30 fps sources at 8 fps
            assert all(0 < r["fps"] <= 8.0 for r in rows)
    columns = pq.read_schema(os.path.join(out, manifest["shards"][0]["path"])).names
    assert columns == ["sample_id", "pixels", "source_uri", "clip_index", "start_frame", "frame_stride", "fps",
                       "orig_height", "orig_width", "split", "media_type"]  # fmt: skip


def test_rerun_skips_every_unit_and_keeps_checksums(prepared, corpus):
    out, totals = prepared
    before = load_manifest(out)
    records = {n: os.stat(os.path.join(out, "units", n)).st_mtime_ns for n in os.listdir(os.path.join(out, "units"))}
    assert run(corpus, out, **PREP) == totals
    after = load_manifest(out)
    assert after["units_run"] == 0 and after["shards"] == before["shards"]
    assert records == {n: os.stat(os.path.join(out, "units", n)).st_mtime_ns for n in records}


def test_a_fresh_run_is_deterministic(prepared, corpus, tmp_path):
    out, _ = prepared
    again = str(tmp_path / "again")
    run(corpus, again, **PREP)

    def ids(d):
        return sorted(json.dumps([r["sample_id"], r["split"]]) for r in _all_rows(d))

    assert ids(again) == ids(out)
    assert [s["sha256"] for s in load_manifest(again)["shards"]] == [s["sha256"] for s in load_manifest(out)["shards"]]


def test_other_params_into_the_same_output_are_refused(prepared, corpus):
    out, _ = prepared
    with pytest.raises(DataPrepError, match="size"):
        run(corpus, out, **{**PREP, "size": 48})


def test_reader_errors_are_one_line(tmp_path, prepared):
    with pytest.raises(DataPrepError, match="no manifest"):
        read_tubelets(str(tmp_path))
    with pytest.raises(DataPrepError, match="media_type"):
        read_tubelets(prepared[0], media_type="audio")


def _all_rows(out):
    shards = load_manifest(out)["shards"]
    return [r for s in shards for r in pq.read_table(os.path.join(out, s["path"])).drop(["pixels"]).to_pylist()]


def test_sample_corpus_at_defaults_gives_both_splits_of_both_media(ray_session, corpus, tmp_path):
    full = build_sample_corpus(str(tmp_path / "full"))
    out = str(tmp_path / "out")
    totals = run(full["path"], out)  # the defaults workflows use: frames 8, size 64, fps 8
    assert totals["inputs_seen"] == totals["inputs_used"] == full["images"] + full["videos"]
    for media_type, t in (("image", 1), ("video", 8)):
        for split in ("train", "val"):
            row = read_tubelets(out, media_type, split).take(1)[0]
            assert row["pixels"].shape == (t, 64, 64, 3) and row["split"] == split


def test_rerun_without_incremental_on_a_grown_corpus_matches_a_fresh_run(ray_session, tmp_path):
    corpus, out, fresh = tmp_path / "c", str(tmp_path / "out"), str(tmp_path / "fresh")
    corpus.mkdir()
    rng = np.random.default_rng(5)
    for name in ("b.png", "c.png", "d.png", "e.png"):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).save(corpus / name)
    prep = {**PREP, "images_per_unit": 2}
    run(str(corpus), out, **prep)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).save(corpus / "a.png")  # sorts first
    grown = run(str(corpus), out, **prep)
    assert grown["inputs_used"] == 5
    assert run(str(corpus), fresh, **prep) == grown
    assert [(s["path"], s["sha256"]) for s in load_manifest(out)["shards"]] == [
        (s["path"], s["sha256"]) for s in load_manifest(fresh)["shards"]
    ]
