"""Splits: a `train` / `val` folder decides a file's split, and the sample corpus holds out whole sources,
checked on the real data prep output (the session's `sample_shards`: 32x32, 4-frame clips)."""

import collections
import json
import os

import av
import pyarrow.parquet as pq

from data_prep import load_manifest
from data_prep.media.tubelets import plan_clips
from data_prep.params import PrepParams
from data_prep.schema import split_of


def test_a_split_folder_decides_else_the_hash():
    assert split_of("img/val/cat_00.jpg", 0.0) == "val"
    assert split_of("img/train/cat_00.jpg", 0.99) == "train"
    assert split_of("val/photos/train/cat.jpg", 0.5) == "train"  # the folder nearest the file wins
    # Only a folder named exactly train/val counts: not the file name, not a longer word.
    for key in ("img/val.jpg", "validation/cat.jpg", "trainset/cat.jpg", "img/Val/cat.jpg"):
        assert split_of(key, 0.0) == "train" and split_of(key, 0.999999) == "val"
    hashed = [split_of(f"img/{k}.jpg", 0.3) for k in range(2000)]
    assert 0.25 < hashed.count("val") / len(hashed) < 0.35


def _rows(shards):
    rows = []
    for shard in load_manifest(str(shards))["shards"]:
        table = pq.read_table(os.path.join(shards, shard["path"]), columns=["source_uri", "split", "media_type"])
        rows += table.to_pylist()
    return rows


def test_no_source_is_in_both_splits(sample_corpus, sample_shards):
    corpus = json.loads((sample_corpus / "corpus.json").read_text())
    source_of = {f: name for name, s in corpus["sources"].items() for f in s["files"]}
    splits = collections.defaultdict(set)
    counts = collections.Counter()
    for r in _rows(sample_shards):
        source = source_of[os.path.relpath(r["source_uri"], sample_corpus)]
        splits[source].add(r["split"])
        counts[r["media_type"], r["split"]] += 1
    assert set(splits) == set(corpus["sources"])  # every source reached the shards
    for name, found in splits.items():
        assert found == {corpus["sources"][name]["split"]}, name
    held_out = {name for name, s in corpus["sources"].items() if s["split"] == "val"}
    assert 4 <= len(held_out) <= len(corpus["sources"]) // 2
    assert counts["image", "val"] >= 64 and counts["video", "val"] >= 16


def test_held_out_video_clips_at_the_demo_settings(sample_corpus):
    """The demo preps 8-frame clips at 8 fps: the held-out videos must still give >= 16 clips."""
    clips, videos = 0, 0
    for path in sorted((sample_corpus / "video" / "val").glob("*/*.mp4")):
        videos += 1
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            clips += len(plan_clips(frames, float(stream.average_rate), 8, 8.0, PrepParams().max_clips).starts)
    assert videos >= 6 and clips >= 16


def test_a_rebuild_removes_the_files_of_an_older_recipe(tmp_path, monkeypatch):
    """Old flat files left beside the new split folders would be listed by data prep, in either split."""
    from data_prep import sample_corpus

    monkeypatch.setattr(sample_corpus, "SOURCES", sample_corpus.SOURCES[:1])  # one scene: quick
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "astronaut.jpg").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    old = {"version": sample_corpus.CORPUS_VERSION - 1, "files": ["img/astronaut.jpg", "../outside.jpg"]}
    (tmp_path / "corpus.json").write_text(json.dumps(old))
    (tmp_path.parent / "outside.jpg").write_bytes(b"never touched")
    summary = sample_corpus.build_sample_corpus(str(tmp_path))
    assert summary["built"] and not (tmp_path / "img" / "astronaut.jpg").exists()
    assert (tmp_path / "notes.txt").exists() and (tmp_path.parent / "outside.jpg").exists()
    assert summary["files"] == sorted(summary["sources"]["astronaut"]["files"])
    assert all((tmp_path / f).is_file() for f in summary["files"])
