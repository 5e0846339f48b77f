"""The CLI: sample-corpus builds real media once; user errors exit 2 with one stderr line (no Ray started)."""

import json
import os
import subprocess
import sys

import av
import pytest
from PIL import Image


def cli(*args):
    return subprocess.run([sys.executable, "-m", "data_prep", *args], capture_output=True, text=True, timeout=120)


def test_sample_corpus_is_real_and_idempotent(tmp_path):
    out = tmp_path / "corpus"
    first = cli("sample-corpus", "--output", str(out))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["built"] and summary["images"] >= 20 and summary["videos"] >= 8
    exts = {os.path.splitext(f)[1] for f in summary["files"]}
    assert {".jpg", ".png", ".mp4"} <= exts
    modes = set()
    for f in summary["files"]:
        path = out / f
        if f.endswith(".mp4"):
            with av.open(str(path)) as c:
                stream = c.streams.video[0]
                assert stream.codec_context.name == "h264"
                n = sum(1 for _ in c.decode(stream))
                assert 24 <= n <= 64 and stream.average_rate in (12, 24, 30)
        else:
            with Image.open(path) as im:
                im.load()
                modes.add(im.mode)
    assert {"RGB", "L", "RGBA", "P"} <= modes
    mtimes = {f: os.stat(out / f).st_mtime_ns for f in summary["files"]}
    second = json.loads(cli("sample-corpus", "--output", str(out)).stdout)
    assert not second["built"] and mtimes == {f: os.stat(out / f).st_mtime_ns for f in summary["files"]}


def _one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_missing_input(tmp_path):
    _one_line_error(cli("run", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")),
                    str(tmp_path / "nope"), "no such folder")  # fmt: skip
    assert not (tmp_path / "o").exists()  # nothing was created before the input was validated


def test_input_without_media(tmp_path):
    (tmp_path / "in").mkdir()
    _one_line_error(cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")), "no files")
    (tmp_path / "in" / "notes.txt").write_text("x")
    _one_line_error(cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")), "none an image")


@pytest.fixture
def media_input(tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "in" / "a.png")
    return str(tmp_path / "in")


def test_output_is_a_file(tmp_path, media_input):
    (tmp_path / "f").write_text("x")
    _one_line_error(cli("run", "--input", media_input, "--output", str(tmp_path / "f")), str(tmp_path / "f"),
                    "not a folder")  # fmt: skip
    _one_line_error(cli("run", "--input", media_input, "--output", str(tmp_path / "f" / "sub")), "not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_output_under_a_read_only_folder(tmp_path, media_input):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _one_line_error(cli("run", "--input", media_input, "--output", str(ro / "out")), "not writable")
    finally:
        ro.chmod(0o755)


def test_bad_parameter(tmp_path, media_input):
    _one_line_error(cli("run", "--input", media_input, "--output", str(tmp_path / "o"), "--frames", "0"), "--frames")
