"""Image and video files <-> uint8 RGB frames, through PIL and PyAV (both imported here only, so `import vitok`
needs neither).

Images: RGB, L and RGBA keep their mode. The model sees RGB: L is expanded to three equal channels and turned
back into L (luma) on output; RGBA's alpha is not encoded by the model but carried along unchanged (the caller
stores it beside the latents). Other modes (P, CMYK, I;16, ...) are converted to RGB and come back as RGB.
Videos are decoded and written one frame at a time, so a clip never has to fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
KEPT_MODES = {"RGB", "L", "RGBA"}


class MediaError(ValueError):
    """A file that cannot be read or written as an image or a video; the message names the file."""


def kind_of(path: str | Path) -> str:
    """'image' or 'video', from the file name's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    known = " ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
    raise MediaError(f"{path}: unsupported file type {suffix or '(none)'!r}; use one of {known}")


@dataclass
class Image:
    rgb: np.ndarray  # (H, W, 3) uint8
    mode: str  # mode the output gets back: RGB, L or RGBA
    alpha: np.ndarray | None  # (H, W) uint8 for RGBA, else None


def read_image(path: str | Path) -> Image:
    from PIL import Image as PILImage, UnidentifiedImageError

    try:
        with PILImage.open(path) as image:
            image.load()
            mode = image.mode if image.mode in KEPT_MODES else "RGB"
            alpha = np.asarray(image.getchannel("A")) if mode == "RGBA" else None
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise MediaError(f"{path}: cannot read image ({_reason(error)})") from None
    return Image(rgb, mode, alpha)


def write_image(path: str | Path, image: Image, image_format: str) -> None:
    """Write with PIL in `image_format` (PNG, JPEG, ...; given explicitly: `path` may be a temporary name)."""
    from PIL import Image as PILImage

    out = PILImage.fromarray(image.rgb, "RGB")
    if image.mode == "L":
        out = out.convert("L")
    elif image.mode == "RGBA":
        out.putalpha(PILImage.fromarray(image.alpha, "L"))
        if image_format == "JPEG":  # JPEG has no alpha channel
            out = out.convert("RGB")
    out.save(path, format=image_format)


def image_format(path: str | Path) -> str:
    """PIL's format name for an output image path."""
    suffix = Path(path).suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
               ".tif": "TIFF", ".tiff": "TIFF"}
    if suffix not in formats:
        raise MediaError(f"{path}: unsupported image output {suffix!r}; use one of {' '.join(formats)}")
    return formats[suffix]


@dataclass
class VideoInfo:
    height: int
    width: int
    fps: Fraction  # frames per second, exact (e.g. 30000/1001)


def open_video(path: str | Path) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """The clip's size and frame rate, and its frames as uint8 (H, W, 3), decoded lazily one at a time."""
    import av

    try:
        container = av.open(str(path))
        if not container.streams.video:
            container.close()
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate
        if not fps:
            container.close()
            raise MediaError(f"{path}: video stream has no frame rate")
        info = VideoInfo(stream.codec_context.height, stream.codec_context.width, Fraction(fps))
    except (av.FFmpegError, OSError) as error:
        raise MediaError(f"{path}: cannot read video ({_reason(error)})") from None

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError) as error:
            raise MediaError(f"{path}: cannot decode video ({_reason(error)})") from None
        finally:
            container.close()

    return info, frames()


# H.264's constant rate factor: 0 is lossless (what comes back is exactly the frames written, whatever the
# encoder's decisions, which are not always the same from one run to the next), 51 the coarsest.
DEFAULT_CRF = 18
MAX_CRF = 51


def check_crf(crf: int) -> None:
    if not 0 <= crf <= MAX_CRF:
        raise ValueError(f"--crf {crf}: H.264's CRF runs from 0 (lossless) to {MAX_CRF}")


class VideoWriter:
    """H.264 in an .mp4 at an exact frame rate; frames are encoded as they are written."""

    def __init__(self, path: str | Path, info: VideoInfo, crf: int = DEFAULT_CRF):
        check_crf(crf)
        import av

        self.container = av.open(str(path), mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=info.fps)
        self.stream.width, self.stream.height = info.width, info.height
        # 4:2:0 chroma needs even sides; odd-sized clips keep full chroma instead of being resized
        even = info.width % 2 == 0 and info.height % 2 == 0
        self.stream.pix_fmt = "yuv420p" if even else "yuv444p"
        self.stream.options = {"crf": str(crf)}
        self.stream.codec_context.time_base = 1 / info.fps
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.count  # one time-base tick per frame: the frame rate is kept exactly
        self.count += 1
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.container.mux(self.stream.encode())  # flush the encoder's delayed frames
        self.container.close()


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
