"""Video decoding behind a small interface: decord first, PyAV when decord cannot open the file.

decord 0.6.0 is unmaintained and fails on some files PyAV reads (video2dataset#266), so every video gets a
PyAV retry before it is quarantined. Both decoders run with one thread: the pipeline already runs one
decoder per core, and more threads per decoder would only oversubscribe the cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


class VideoDecoder(Protocol):
    name: str

    def probe(self) -> VideoInfo: ...

    def frames(self, indices: list[int]) -> np.ndarray:
        """uint8 (len(indices), H, W, 3) RGB frames at the given sorted, distinct indices (one call per video)."""
        ...

    def close(self) -> None: ...


class DecordDecoder:
    name = "decord"

    def __init__(self, path: str):
        import decord  # imported here: it is optional at import time of the package (workers only)

        self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)

    def probe(self) -> VideoInfo:
        h, w = self._vr[0].shape[:2] if len(self._vr) else (0, 0)
        return VideoInfo(num_frames=len(self._vr), fps=float(self._vr.get_avg_fps()), height=h, width=w)

    def frames(self, indices: list[int]) -> np.ndarray:
        return self._vr.get_batch(indices).asnumpy()

    def close(self) -> None:
        del self._vr


class PyAVDecoder:
    name = "pyav"

    def __init__(self, path: str):
        import av

        self._av = av
        self._path = path
        self._container = self._open()

    def _open(self):
        container = self._av.open(self._path)
        if not container.streams.video:
            container.close()
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # no frame threading: one core per decoder (see module doc)
        stream.thread_count = 1
        return container

    def probe(self) -> VideoInfo:
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 0
        n = stream.frames
        if n <= 0:
            # Some containers (webm, mkv) carry no frame count: count by decoding, without converting pixels.
            n = sum(1 for _ in self._container.decode(stream))
            self._container.close()
            self._container = self._open()
        return VideoInfo(num_frames=n, fps=float(rate), height=stream.height, width=stream.width)

    def frames(self, indices: list[int]) -> np.ndarray:
        # One sequential pass that converts only the wanted frames and stops after the last one, so memory
        # stays bounded by the clips, not by the video's length.
        wanted = set(indices)
        got: dict[int, np.ndarray] = {}
        last = max(indices)
        stream = self._container.streams.video[0]
        for i, frame in enumerate(self._container.decode(stream)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
        if len(got) != len(wanted):
            raise ValueError(f"video ended before frame {last}")
        return np.stack([got[i] for i in indices])

    def close(self) -> None:
        self._container.close()


DECODERS: tuple[type, ...] = (DecordDecoder, PyAVDecoder)


class VideoDecodeError(RuntimeError):
    """No decoder could read the video."""


def decode_with_fallback(
    path: str, read: Callable[[VideoDecoder], T], passthrough: tuple[type[Exception], ...] = ()
) -> tuple[T, str]:
    """Run `read(decoder)` with each decoder in turn until one succeeds; return (result, decoder name).

    The whole read (probe and frame fetch) is retried, not just the open: decord sometimes opens a file
    and then fails on the frames. Exceptions in `passthrough` are about the content (e.g. too short),
    not the decoder, so they are raised at once instead of trying the next decoder.
    """
    errors = []
    for cls in DECODERS:
        dec = None
        try:
            dec = cls(path)
            return read(dec), cls.name
        except passthrough:
            raise
        except Exception as e:  # noqa: BLE001 - any decoder failure means: try the next one
            errors.append(f"{cls.name}: {type(e).__name__}: {e}".strip())
        finally:
            if dec is not None:
                dec.close()
    raise VideoDecodeError("; ".join(errors))
