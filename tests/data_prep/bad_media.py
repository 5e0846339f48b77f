"""Real broken media, each kind written here with PIL / PyAV / byte surgery (no mocks).

BAD maps the file's path in the corpus to the (stage, error_type) it must be quarantined with.
Unreadable permissions are not one of the kinds: the tests run as root, which reads any file; the
"read" stage is exercised by a dangling symlink instead (a file listed, then gone when it is read).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image

BAD = {
    "img/empty.jpg": ("sniff", "UnrecognizedContent"),  # zero bytes
    "img/notes.jpg": ("sniff", "UnrecognizedContent"),  # a text file named .jpg
    "img/huge.png": ("decode", "ImageTooLarge"),  # valid PNG header declaring 100000 x 100000 pixels
    "img/corrupt_body.jpg": ("decode", "OSError"),  # JPEG whose entropy-coded body is cut short
    "img/bad_crc.png": ("decode", "OSError"),  # PNG with a damaged chunk checksum
    "img/astronaut_copy.jpg": ("dedupe", "DuplicateContent"),  # same bytes as img/astronaut.jpg
    "video/truncated.mp4": ("decode", "VideoDecodeError"),  # first half of a real MP4
    "video/short.mp4": ("clip", "VideoTooShort"),  # 3 frames, a clip needs 10
    "video/one_frame.mp4": ("clip", "VideoTooShort"),
    "video/audio_only.mp4": ("decode", "VideoDecodeError"),  # AAC audio, no video stream
    "video/unknown_codec.mp4": ("decode", "VideoDecodeError"),  # sample entry renamed to a codec nobody has
    "video/dangling.mp4": ("read", "FileNotFoundError"),  # symlink whose target is gone
}
# Named like one media type, content of another: used as what the bytes are.
DISGUISED = {"video/actually_a_png.mp4": "image"}


def write_mp4(path, frames: int, fps: int = 24, w: int = 64, h: int = 48, level_step: int = 37) -> None:
    """An H.264 clip whose frame k is flat grey at level (k * level_step) % 256, so a decoded frame tells its index."""
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for k in range(frames):
            arr = np.full((h, w, 3), (k * level_step) % 256, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _png_with_size(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of header
    ihdr[4:12] = struct.pack(">II", w, h)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _audio_only_mp4(path: Path) -> None:
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("aac", rate=16000)
        t = np.arange(16000, dtype=np.float32) / 16000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def add_bad_media(root: Path, good_mp4: Path, good_jpg: Path) -> None:
    """Write every kind in BAD and DISGUISED under `root` (img/ and video/ must exist)."""
    (root / "img/empty.jpg").write_bytes(b"")
    (root / "img/notes.jpg").write_text("this is a text file, not a JPEG\n")
    (root / "img/huge.png").write_bytes(_png_with_size(100_000, 100_000))
    jpg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8)).save(jpg, format="JPEG")
    (root / "img/corrupt_body.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 99, 199)).save(buf, format="PNG")
    png = bytearray(buf.getvalue())
    idat = png.index(b"IDAT")
    png[idat + 6] ^= 0xFF  # flip bits inside the IDAT payload: its CRC no longer matches
    (root / "img/bad_crc.png").write_bytes(bytes(png))
    (root / "img/astronaut_copy.jpg").write_bytes(good_jpg.read_bytes())

    data = good_mp4.read_bytes()
    (root / "video/truncated.mp4").write_bytes(data[: len(data) // 2])
    write_mp4(root / "video/short.mp4", frames=3)
    write_mp4(root / "video/one_frame.mp4", frames=1)
    _audio_only_mp4(root / "video/audio_only.mp4")
    stsd = data.index(b"stsd")
    patched = data[:stsd] + data[stsd:].replace(b"avc1", b"zzz9", 1)
    (root / "video/unknown_codec.mp4").write_bytes(patched)
    os.symlink(root / "video/was_here.mp4", root / "video/dangling.mp4")

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 60, 3), np.uint8)).save(buf, format="PNG")
    (root / "video/actually_a_png.mp4").write_bytes(buf.getvalue())
