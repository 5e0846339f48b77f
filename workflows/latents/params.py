"""The latent cache's options, validated at the edge, and the parameters that decide the bytes it writes.

`CacheOptions` is what a user asks for. `LatentParams` is what the output is made of (the tokenizer's
weights, storage dtype, whether log-variances are kept, compute precision); its hash names the work units,
and an output holds latents of one `LatentParams` only (pipeline.py refuses to mix).
"""

from __future__ import annotations

import dataclasses
import json

from data_prep.params import stable_hash
from workflows.latents.errors import LatentsError
from workflows.runtime.precision import PRECISIONS

# Bumped when the bytes of a latent shard change for the same inputs, so old outputs are never mixed in.
LATENT_FORMAT = 2  # 2: tensors stored as one binary value per row (data_prep/exactly_once/tensor_columns.py)
DTYPES = ("float16", "bfloat16", "float32")
MEDIA_TYPES = ("image", "video")


@dataclasses.dataclass(frozen=True)
class CacheOptions:
    dtype: str = "float16"  # storage dtype of `latent` (and `latent_logvar`)
    logvar: bool = False  # also store the bottleneck's log-variance (a second tensor column)
    precision: str = "auto"  # encoder compute: "bf16" autocast, "fp32", or "auto" (bf16 where native)
    batch_size: int = 64  # tubelets per encoder forward
    concurrency: int = 0  # tokenizer actors; 0: one per GPU on a GPU cluster, else one per usable CPU
    num_gpus: float | None = None  # GPUs per actor; None: 1 when the cluster has GPUs, else 0
    media_types: tuple[str, ...] = ()  # which of the shards' media types to encode; (): all they have
    incremental: bool = False  # keep the output's units and encode only tubelet shards none of them holds

    def validate(self) -> None:
        if self.dtype not in DTYPES:
            raise LatentsError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.precision not in PRECISIONS:
            raise LatentsError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < 1:
            raise LatentsError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.concurrency < 0:
            raise LatentsError(f"--concurrency must be >= 0, got {self.concurrency}")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise LatentsError(f"--num-gpus must be >= 0, got {self.num_gpus}")
        unknown = sorted(set(self.media_types) - set(MEDIA_TYPES))
        if unknown:
            raise LatentsError(f"--media-type {unknown[0]!r}: expected one of {', '.join(MEDIA_TYPES)}")


@dataclasses.dataclass(frozen=True)
class LatentParams:
    weights_sha256: str  # sha256 of the tokenizer's model.safetensors
    dtype: str
    logvar: bool
    precision: str  # resolved: "bf16" or "fp32"

    def to_dict(self) -> dict:
        return {"latent_format": LATENT_FORMAT, **dataclasses.asdict(self)}

    def key(self) -> str:
        """Hash of everything that changes a latent shard's bytes for a given tubelet shard."""
        return stable_hash(json.dumps(self.to_dict(), sort_keys=True))
