"""`python -m vitok encode | decode | reconstruct` on real encoded media: PNG/JPEG images through PIL and an
H.264 clip through PyAV, with sizes that are not multiples of the patch and a frame count that is not a
multiple of the tubelet; bad inputs give one line on stderr and exit 2."""

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vitok import ViTok
from vitok.__main__ import main
from vitok.media import open_video

TILE = ["--tile", "32", "--overlap", "8", "--chunk", "4", "--chunk-overlap", "2"]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A tiny random-init video model (q = 2, p = 8, nonzero pixel head) and media files larger than a tile."""
    folder = tmp_path_factory.mktemp("media")
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/2x8", channels=4)
    torch.nn.init.normal_(model.decoder.to_pixels.weight, std=0.05)
    model.save_pretrained(folder / "model")
    torch.manual_seed(1)
    ViTok.from_name("N-N/2x8", channels=4).save_pretrained(folder / "other_model")
    y, x = np.mgrid[0:50, 0:75]
    rgb = np.stack([x * 3, y * 4, x + y], axis=-1).astype(np.uint8)  # 75x50: non-square, 3x2 tiles of 32
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb).convert("L").save(folder / "gray.jpg")
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(Image.fromarray((x + y).astype(np.uint8)))
    rgba.save(folder / "rgba.png")
    with av.open(str(folder / "clip.mp4"), "w") as container:  # 7 frames (q = 2), 40x36, 15 fps
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 40, 36, "yuv420p"
        for i in range(7):
            frame = av.VideoFrame.from_ndarray(np.roll(rgb[:36, :40], 3 * i, axis=1).copy(), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (folder / "junk.png").write_bytes(b"not an image")
    (folder / "junk.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("text")
    (folder / "no_weights").mkdir()
    (folder / "no_weights" / "config.json").write_text((folder / "model" / "config.json").read_text())
    return folder


def run(*args) -> int:
    return main([str(a) for a in args])


def read_clip(path) -> tuple[np.ndarray, Fraction]:
    info, frames = open_video(path)
    return np.stack(list(frames)), info.fps


@pytest.mark.parametrize("name, mode", [("rgb.png", "RGB"), ("gray.jpg", "L"), ("rgba.png", "RGBA")])
def test_image_keeps_size_and_mode_and_encode_decode_equals_reconstruct(media, tmp_path, name, mode):
    source = media / name
    assert run("encode", media / "model", source, tmp_path / "z.safetensors", *TILE[:4]) == 0
    assert run("decode", media / "model", tmp_path / "z.safetensors", tmp_path / "decoded.png") == 0
    assert run("reconstruct", media / "model", source, tmp_path / "rebuilt.png", *TILE[:4]) == 0
    decoded, rebuilt = Image.open(tmp_path / "decoded.png"), Image.open(tmp_path / "rebuilt.png")
    assert decoded.size == rebuilt.size == (75, 50) and decoded.mode == rebuilt.mode == mode
    assert np.array_equal(np.asarray(decoded), np.asarray(rebuilt))
    if mode == "RGBA":  # alpha is carried through the latents file unchanged
        assert np.array_equal(np.asarray(decoded)[..., 3], np.asarray(Image.open(source))[..., 3])


def test_video_keeps_frames_size_fps_and_encode_decode_matches_reconstruct(media, tmp_path):
    assert run("encode", media / "model", media / "clip.mp4", tmp_path / "z.safetensors", *TILE) == 0
    # Lossless H.264 (--crf 0): what is read back does not depend on the encoder's decisions, which differ now
    # and then between two encodes of the same frames (36-37 dB apart at the default CRF, in about one run in
    # ten), so the two routes' frames compare exactly.
    assert run("decode", media / "model", tmp_path / "z.safetensors", tmp_path / "decoded.mp4", "--crf", "0") == 0
    assert run("reconstruct", media / "model", media / "clip.mp4", tmp_path / "rebuilt.mp4", *TILE, "--crf", "0") == 0
    assert run("reconstruct", media / "model", media / "clip.mp4", tmp_path / "default.mp4", *TILE) == 0
    decoded, fps = read_clip(tmp_path / "decoded.mp4")
    rebuilt, rebuilt_fps = read_clip(tmp_path / "rebuilt.mp4")
    assert decoded.shape == rebuilt.shape == (7, 36, 40, 3)
    assert fps == rebuilt_fps == 15
    assert np.array_equal(decoded, rebuilt)
    # The default CRF 18 is lossy: its file is smaller than the lossless one.
    assert (tmp_path / "default.mp4").stat().st_size < (tmp_path / "rebuilt.mp4").stat().st_size


@pytest.mark.parametrize("args, named", [
    (("encode", "{m}/model", "{m}/junk.png", "{t}/out.safetensors"), "junk.png"),
    (("encode", "{m}/model", "{m}/junk.mp4", "{t}/out.safetensors"), "junk.mp4"),
    (("encode", "{m}/model", "{m}/notes.txt", "{t}/out.safetensors"), "notes.txt"),
    (("reconstruct", "{m}/model", "{m}/missing.png", "{t}/out.png"), "missing.png"),
    (("reconstruct", "{m}/no_weights", "{m}/rgb.png", "{t}/out.png"), "model.safetensors"),
    (("decode", "{m}/other_model", "{t}/rgb.safetensors", "{t}/out.png"), "rgb.safetensors"),
    (("decode", "{m}/model", "{m}/rgb.png", "{t}/out.png"), "rgb.png"),
    (("reconstruct", "{m}/model", "{m}/clip.mp4", "{t}/out.png"), "out.png"),
    (("reconstruct", "{m}/model", "{m}/clip.mp4", "{t}/out.mp4", "--crf", "52"), "--crf 52"),
    (("decode", "{m}/model", "{t}/rgb.safetensors", "{t}/out.png", "--crf", "-1"), "--crf -1"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(media, tmp_path, capsys, args, named):
    assert run("encode", media / "model", media / "rgb.png", tmp_path / "rgb.safetensors", "--tile", "32") == 0
    before = set(tmp_path.iterdir())
    assert run(*(a.format(m=media, t=tmp_path) for a in args)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("vitok: error: ") and named in error
    assert set(tmp_path.iterdir()) == before  # no partial output left behind


def test_info_still_works(capsys):
    assert run("info", "S-B/16") == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 256
