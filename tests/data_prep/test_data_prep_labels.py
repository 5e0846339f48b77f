"""Labels (`--labels parent-dir`, `--labels FILE.csv`) and what the listing passes over, on real encoded images:

- ImageNet's layout gives each tubelet an int `label` and its `label_name`; the mapping is in the manifest
  and an incremental run that brings new classes appends them without renumbering the old ones;
- a CSV of path (relative or full URI) -> label does the same; a file it leaves out is quarantined;
- a file with no extension is sniffed by content (used when it is media); every file the listing passes
  over is named in the manifest with the reason.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import DataPrepError, load_manifest, run

PREP = dict(size=16, images_per_unit=2)


def _image(path, seed: int, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 20, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def _rows(out) -> list[dict]:
    rows = []
    for shard in load_manifest(str(out))["shards"]:
        rows += pq.read_table(os.path.join(out, shard["path"])).drop_columns(["pixels"]).to_pylist()
    return rows


@pytest.fixture
def imagenet_like(tmp_path):
    root = tmp_path / "corpus"
    _image(root / "train/n02/a.png", 1)
    _image(root / "train/n02/b.jpg", 2, "JPEG")
    _image(root / "train/n01/c.png", 3)
    _image(root / "train/n01/3f9a0c1d", 4)  # content-addressed name: no extension, PNG bytes
    (root / "train/n01/LICENSE").write_text("no extension, not media\n")
    (root / "train/n01/c.txt").write_text("a caption\n")
    _image(root / "loose.png", 5)  # at the root: no folder to take a label from
    return root


def test_parent_dir_labels_are_stable_across_incremental_runs(ray_session, imagenet_like, tmp_path):
    out = tmp_path / "shards"
    totals = run(str(imagenet_like), str(out), **PREP, labels="parent-dir")
    manifest = load_manifest(str(out))
    assert manifest["params"]["labels"] == "parent-dir"
    assert manifest["labels"] == {"source": "parent-dir", "names": ["n01", "n02"]}
    rows = {os.path.relpath(r["source_uri"], imagenet_like): r for r in _rows(out)}
    assert {k: (r["label"], r["label_name"]) for k, r in rows.items()} == {
        "train/n01/3f9a0c1d": (0, "n01"), "train/n01/c.png": (0, "n01"),
        "train/n02/a.png": (1, "n02"), "train/n02/b.jpg": (1, "n02"),
    }  # fmt: skip
    assert totals["inputs_used"] == 4 and totals["inputs_quarantined"] == 1
    quarantine = pq.read_table(out / "quarantine.parquet").to_pylist()
    assert [(q["uri"], q["stage"], q["error_type"]) for q in quarantine] == [
        (str(imagenet_like / "loose.png"), "label", "MissingLabel")
    ]
    assert manifest["files_passed_over"] == [
        {"uri": str(imagenet_like / "train/n01/LICENSE"), "reason": "content is not an image or video"},
        {"uri": str(imagenet_like / "train/n01/c.txt"), "reason": "extension .txt is not an image or video extension"},
    ]
    assert manifest["files_ignored"] == 2
    old_shards = manifest["shards"]

    # New classes, one sorting before the known ones: they get the next ints, the old ones keep theirs.
    _image(imagenet_like / "train/n00/d.png", 6)
    _image(imagenet_like / "train/n03/e.png", 7)
    _image(imagenet_like / "train/n01/f.png", 8)
    run(str(imagenet_like), str(out), **PREP, labels="parent-dir", incremental=True)
    manifest = load_manifest(str(out))
    assert manifest["labels"]["names"] == ["n01", "n02", "n00", "n03"]
    assert json.loads((out / "labels.json").read_text())["names"] == manifest["labels"]["names"]
    assert all(s in manifest["shards"] for s in old_shards)  # appended, the old shards untouched
    rows = {os.path.relpath(r["source_uri"], imagenet_like): r for r in _rows(out)}
    assert (rows["train/n00/d.png"]["label"], rows["train/n03/e.png"]["label"], rows["train/n01/f.png"]["label"]) == (
        2, 3, 0)  # fmt: skip
    assert rows["train/n02/a.png"]["label"] == 1


def test_csv_labels_by_relative_path_or_uri(ray_session, imagenet_like, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text(
        "path,label\n"
        "train/n02/a.png,dog\n"
        f"{imagenet_like / 'train/n02/b.jpg'},cat\n"
        "train/n01/c.png,dog\n"
        "loose.png,bird\n"
    )
    out = tmp_path / "shards"
    run(str(imagenet_like), str(out), **PREP, labels=str(table))
    manifest = load_manifest(str(out))
    assert manifest["params"]["labels"] == "csv"
    assert manifest["labels"] == {"source": f"csv {table}", "names": ["bird", "cat", "dog"]}
    rows = {os.path.relpath(r["source_uri"], imagenet_like): (r["label"], r["label_name"]) for r in _rows(out)}
    assert rows == {"loose.png": (0, "bird"), "train/n02/b.jpg": (1, "cat"), "train/n02/a.png": (2, "dog"),
                    "train/n01/c.png": (2, "dog")}  # fmt: skip
    quarantine = pq.read_table(out / "quarantine.parquet").to_pylist()
    assert [(os.path.relpath(q["uri"], imagenet_like), q["stage"]) for q in quarantine] == [
        ("train/n01/3f9a0c1d", "label")
    ]


def test_a_bad_labels_csv_stops_the_run_before_any_work(ray_session, imagenet_like, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("file,class\ntrain/n02/a.png,dog\n")
    with pytest.raises(DataPrepError, match="header row must name the columns 'path' and 'label'"):
        run(str(imagenet_like), str(tmp_path / "out"), **PREP, labels=str(table))
    table.write_text("path,label\ntrain/n02/a.png,dog\ntrain/n02/a.png,cat\n")
    with pytest.raises(DataPrepError, match="line 3 gives train/n02/a.png a second label"):
        run(str(imagenet_like), str(tmp_path / "out"), **PREP, labels=str(table))
    with pytest.raises(DataPrepError, match="expected 'parent-dir' or a .csv file"):
        run(str(imagenet_like), str(tmp_path / "out"), **PREP, labels="folders")
    assert not (tmp_path / "out").exists()
