"""Decoding and tubelet maths on real encoded files written here with PIL / PyAV (no Ray)."""

import numpy as np
import pytest
from PIL import Image

from data_prep.media.decode_image import ImageTooLarge, decode_image
from data_prep.media.decode_video import (
    DecordDecoder, PyAVDecoder, VideoDecodeError, decode_with_fallback,
)  # fmt: skip
from data_prep.media.tubelets import VideoTooShort, plan_clips, resize_center_crop, to_tubelet
from tests.data_prep.bad_media import write_mp4


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert decode_image(str(tmp_path / "rot.jpg"), 10**8).shape == (40, 20, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "CMYK", "I;16", "1"])
def test_every_mode_becomes_uint8_rgb(tmp_path, mode):
    fmt, ext = ("TIFF", "tif") if mode in ("CMYK", "I;16") else ("PNG", "png")
    im = Image.new(mode, (30, 20))
    if mode == "I;16":
        im = Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    im.save(tmp_path / f"x.{ext}", format=fmt)
    out = decode_image(str(tmp_path / f"x.{ext}"), 10**8)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    if mode == "I;16":
        assert out.min() == 0 and out.max() == 255  # rescaled, not clipped to white
    if mode in ("RGBA", "LA"):
        assert (out == 255).all()  # fully transparent -> white background


@pytest.mark.parametrize("side", [150, 400])  # just above the limit (our check), far above (PIL's guard)
def test_decompression_bomb_is_refused(tmp_path, side):
    Image.new("L", (side, 100)).save(tmp_path / "big.png")
    with pytest.raises(ImageTooLarge):
        decode_image(str(tmp_path / "big.png"), max_pixels=10_000)


def test_plan_clips_resamples_fps_and_spreads_clips():
    plan = plan_clips(num_frames=300, src_fps=30.0, frames=8, target_fps=8.0, max_clips=3)
    assert plan.stride == 4 and plan.fps == 7.5
    assert plan.starts[0] == 0 and len(plan.starts) == 3
    assert plan.starts[-1] + 7 * 4 < 300  # last clip fits
    assert plan.indices(1, 8) == list(range(plan.starts[1], plan.starts[1] + 32, 4))
    assert plan_clips(10, 12.0, 8, 24.0, 4).stride == 1  # never upsample
    overlapping = plan_clips(num_frames=100, src_fps=8.0, frames=8, target_fps=8.0, max_clips=50, clip_stride=4)
    assert overlapping.starts[:3] == (0, 4, 8) and overlapping.starts[-1] == 92
    with pytest.raises(VideoTooShort):
        plan_clips(num_frames=20, src_fps=24.0, frames=8, target_fps=8.0, max_clips=4)  # needs 22


def test_resize_center_crop_shapes():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, 60:100] = 255  # centre band survives the crop
    out = resize_center_crop(frame, 32)
    assert out.shape == (32, 32, 3) and out[16, 16, 0] == 255
    assert to_tubelet(np.stack([frame] * 3), 16).shape == (3, 16, 16, 3)
    left, right = resize_center_crop(frame, 32, anchor=0.0), resize_center_crop(frame, 32, anchor=1.0)
    assert left[16, 0, 0] == 0 and right[16, -1, 0] == 0 and out[16, 0, 0] == 0  # crop slides along the width
    clips = to_tubelet(np.stack([frame, frame]), 32, anchor=0.3)
    assert (clips[0] == clips[1]).all()  # one crop position for every frame of a clip


@pytest.mark.parametrize("decoder", [DecordDecoder, PyAVDecoder])
def test_both_decoders_read_the_same_clip(tmp_path, decoder):
    write_mp4(tmp_path / "v.mp4", frames=20, fps=24, level_step=8)
    d = decoder(str(tmp_path / "v.mp4"))
    info = d.probe()
    assert (info.num_frames, info.fps, info.height, info.width) == (20, 24.0, 48, 64)
    frames = d.frames([0, 5, 19])
    d.close()
    assert frames.shape == (3, 48, 64, 3) and frames.dtype == np.uint8
    assert abs(int(frames[1].mean()) - 40) <= 3  # frame 5 was filled with 5 * 8


def test_fallback_reports_every_decoder_error(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoDecodeError, match="decord: .*pyav: "):
        decode_with_fallback(str(tmp_path / "bad.mp4"), lambda d: d.probe())


def test_pyav_takes_over_where_decord_fails(tmp_path):
    # decord cannot measure an animated GIF's duration; PyAV reads it: a real fallback, no mock.
    frames = [Image.new("RGB", (64, 48), (k * 20, 0, 0)) for k in range(10)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=40)
    info, name = decode_with_fallback(str(tmp_path / "anim.gif"), lambda d: d.probe())
    assert name == "pyav" and info.num_frames == 10 and (info.height, info.width) == (48, 64)


def test_run_defaults_are_the_prep_defaults():
    import inspect

    from data_prep import run
    from data_prep.params import PrepParams

    params = inspect.signature(run).parameters.values()
    defaults = {p.name: p.default for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty}
    assert defaults == {k: v for k, v in PrepParams().to_dict().items() if k != "prep_version"}
    assert PrepParams(fps=8).pixel_key() == PrepParams(fps=8.0).pixel_key()
