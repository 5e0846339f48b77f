"""Listing, content sniffing and dedup planning on real files (no Ray)."""

import io

import numpy as np
from PIL import Image

from data_prep.fingerprint import fingerprint_all
from data_prep.media.sniff import sniff
from data_prep.params import PrepParams
from data_prep.s3 import S3Settings
from data_prep.sources import Selection, list_candidates
from data_prep.units import plan_units
from tests.data_prep.bad_media import write_mp4

SETTINGS = S3Settings()


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_sniff_reads_magic_bytes_of_real_files(tmp_path):
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, format=fmt)
        assert sniff(buf.getvalue()[:256]) == "image", fmt
    write_mp4(tmp_path / "v.mp4", frames=2)
    assert sniff((tmp_path / "v.mp4").read_bytes()[:256]) == "video"
    assert sniff(b"") is None and sniff(b"<html>not found</html>") is None


def test_include_exclude_globs(tmp_path):
    for rel in ("a/x.jpg", "a/y.png", "b/z.jpg", "b/notes.txt", "b/frame.raw", ".hidden/h.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(_png(len(rel)))

    def names(**kw):
        files, passed_over = list_candidates(str(tmp_path), Selection(**kw), SETTINGS)
        return [f.uri[len(str(tmp_path)) + 1 :] for f in files], len(passed_over)

    assert names() == (["a/x.jpg", "a/y.png", "b/z.jpg"], 2)  # by extension; hidden folders never
    assert names(exclude=("b/*",)) == (["a/x.jpg", "a/y.png"], 3)
    assert names(include=("*.jpg",)) == (["a/x.jpg", "b/z.jpg"], 3)
    assert names(include=("b/*",), exclude=("*.txt",))[0] == ["b/frame.raw", "b/z.jpg"]  # any name, by glob


def test_plan_sniffs_dedupes_and_respects_earlier_runs(tmp_path):
    (tmp_path / "a.jpg").write_bytes(_png(1))  # a PNG named .jpg: an image all the same
    (tmp_path / "b.png").write_bytes(_png(1))  # same bytes as a.jpg
    (tmp_path / "c.png").write_bytes(_png(2))  # same bytes as an input an earlier run used
    (tmp_path / "d.raw").write_bytes(_png(3))  # no media extension, picked by a glob, content is an image
    (tmp_path / "e.raw").write_bytes(b"sensor dump")  # picked by a glob, not media: ignored, not quarantined
    (tmp_path / "f.mp4").write_bytes(b"")
    files, _ = list_candidates(str(tmp_path), Selection(include=("*",)), SETTINGS)
    fps = fingerprint_all(files, SETTINGS, {})
    earlier = {fps[str(tmp_path / "c.png")].sha256: "s3://old/c.png"}
    plan = plan_units(files, fps, PrepParams(images_per_unit=10), known=earlier)
    assert plan.ignored == [{"uri": str(tmp_path / "e.raw"), "reason": "content is not an image or video"}]
    members = {m["uri"][len(str(tmp_path)) + 1 :]: (u.media_type, m["problem"]) for u in plan.units for m in u.members}
    assert members["a.jpg"] == ("image", None) and members["d.raw"] == ("image", None)
    assert members["b.png"][1]["stage"] == "dedupe" and "a.jpg" in members["b.png"][1]["message"]
    assert members["c.png"][1] == {"stage": "dedupe", "error_type": "DuplicateContent",
                                   "message": "same bytes as s3://old/c.png"}  # fmt: skip
    assert members["f.mp4"][0] == "video" and members["f.mp4"][1]["stage"] == "sniff"
    again = plan_units(files, fps, PrepParams(images_per_unit=10), known=earlier)
    assert [u.unit_id for u in again.units] == [u.unit_id for u in plan.units]
