"""Turning the inputs of one work unit into tubelet rows, quarantine records and stats.

Every per-input failure is caught here and becomes a quarantine record with the stage it failed at, so a
corrupt file costs one record, never the run. Problems the driver already found (unreadable, not media,
duplicate; see units.py) are copied to the quarantine without touching the file again.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import numpy as np

from data_prep.media.decode_image import decode_image
from data_prep.media.decode_video import decode_with_fallback
from data_prep.media.tubelets import VideoTooShort, plan_clips, to_tubelet
from data_prep.params import PrepParams, stable_hash
from data_prep.s3 import S3Settings
from data_prep.schema import LABEL_COLUMNS, sample_id, split_of
from data_prep.sources import local_path
from data_prep.units import WorkUnit


class StageError(Exception):
    """Wraps an input's failure with the pipeline stage it happened in."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(str(cause))
        self.stage, self.cause = stage, cause


@dataclasses.dataclass
class UnitOutput:
    rows: list[dict] = dataclasses.field(default_factory=list)  # scalar columns + sample_id
    pixels: list[np.ndarray] = dataclasses.field(default_factory=list)  # one (T, S, S, 3) per row
    quarantine: list[dict] = dataclasses.field(default_factory=list)
    decoders: Counter = dataclasses.field(default_factory=Counter)  # videos read by each decoder
    input_bytes: int = 0  # bytes of the inputs that were decoded (used or failed at decode)
    seconds: float = 0.0

    def stats(self) -> dict:
        used = len({r["source_uri"] for r in self.rows})
        splits = Counter(r["split"] for r in self.rows)
        return {
            "inputs_seen": used + len(self.quarantine),
            "inputs_used": used,
            "inputs_quarantined": len(self.quarantine),
            "tubelets": len(self.rows),
            "train_tubelets": splits["train"],
            "val_tubelets": splits["val"],
            "frames": int(sum(p.shape[0] for p in self.pixels)),
            "input_bytes": self.input_bytes,
            "decoders": dict(sorted(self.decoders.items())),
            "seconds": round(self.seconds, 3),
        }


def process_unit(unit: WorkUnit, params: PrepParams, settings: S3Settings) -> UnitOutput:
    out = UnitOutput()
    start = time.perf_counter()
    key = params.pixel_key()
    for member in unit.members:
        uri, rel = member["uri"], member["key"]
        if member["problem"] is not None:
            out.quarantine.append({"uri": uri, **member["problem"]})
            continue
        out.input_bytes += max(0, member["size"])
        # The crop anchor is seeded by the input's relative path, so "random" crops are the same on every rerun
        # and wherever the corpus lies.
        anchor = 0.5 if params.crop == "center" else int(stable_hash(rel, key, "crop", length=8), 16) / 16**8
        try:
            with local_path(uri, settings) as path:
                if unit.media_type == "image":
                    clips = [_image_clip(path, params, anchor)]
                else:
                    clips, decoder = _video_clips(path, params, anchor)
                    out.decoders[decoder] += 1
        except StageError as e:
            out.quarantine.append(
                {"uri": uri, "stage": e.stage, "error_type": type(e.cause).__name__, "message": _one_line(e)}
            )
            continue
        except Exception as e:  # noqa: BLE001 - fetching an S3 object can fail after retries: a read error
            out.quarantine.append(
                {"uri": uri, "stage": "read", "error_type": type(e).__name__, "message": _one_line(e)}
            )
            continue
        split = split_of(rel, params.val_fraction)
        label = {k: member[k] for k in LABEL_COLUMNS if k in member}  # empty when the output has no labels
        for clip_index, (meta, pixels) in enumerate(clips):
            out.rows.append(
                {
                    "sample_id": sample_id(rel, clip_index, key),
                    "source_uri": uri,
                    "clip_index": clip_index,
                    "split": split,
                    "media_type": unit.media_type,
                    **meta,
                    **label,
                }
            )
            out.pixels.append(pixels)
    out.seconds = time.perf_counter() - start
    return out


def _image_clip(path: str, params: PrepParams, anchor: float) -> tuple[dict, np.ndarray]:
    try:
        rgb = decode_image(path, params.max_image_pixels)
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad files; all mean "unusable"
        raise StageError("decode", e) from e
    try:
        pixels = to_tubelet(rgb[None], params.size, anchor)  # (1, S, S, 3)
    except Exception as e:  # noqa: BLE001
        raise StageError("transform", e) from e
    h, w = rgb.shape[:2]
    meta = {"start_frame": 0, "frame_stride": 1, "fps": 0.0, "orig_height": h, "orig_width": w}
    return meta, pixels


def _video_clips(path: str, params: PrepParams, anchor: float) -> tuple[list[tuple[dict, np.ndarray]], str]:
    def read(decoder):
        info = decoder.probe()
        plan = plan_clips(info.num_frames, info.fps, params.frames, params.fps, params.max_clips, params.clip_stride)
        per_clip = [plan.indices(c, params.frames) for c in range(len(plan.starts))]
        # One frames() call per video with all clips' indices: PyAV then decodes the file only once.
        frames = decoder.frames([i for idx in per_clip for i in idx])
        return info, plan, frames.reshape(len(per_clip), params.frames, *frames.shape[1:])

    try:
        (info, plan, clips), decoder = decode_with_fallback(path, read, passthrough=(VideoTooShort,))
    except VideoTooShort as e:
        raise StageError("clip", e) from e
    except Exception as e:  # noqa: BLE001 - decoders raise many types for bad files; all mean "unusable"
        raise StageError("decode", e) from e
    try:
        h, w = clips.shape[2:4]
        result = []
        for c, start in enumerate(plan.starts):
            meta = {
                "start_frame": start,
                "frame_stride": plan.stride,
                "fps": plan.fps,
                "orig_height": h,
                "orig_width": w,
            }
            result.append((meta, to_tubelet(clips[c], params.size, anchor)))
    except Exception as e:  # noqa: BLE001
        raise StageError("transform", e) from e
    return result, decoder


def _one_line(e: BaseException, limit: int = 500) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg[:limit]
