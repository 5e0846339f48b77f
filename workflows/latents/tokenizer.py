"""Tokenizer references: which exported tokenizer to encode with, read once by the driver.

Four kinds of reference, each naming the two files `ViTok.save_pretrained` and the trainer's export write
(model.safetensors + config.json):
- a local folder;
- s3://bucket/prefix (endpoint: --s3-endpoint-url, else AWS_ENDPOINT_URL; credentials from the AWS chain);
- runs:/<run_id>/<path>, usually runs:/<run_id>/model, the export a training run logs;
- models:/<name>/<version> or models:/<name>@<alias>: a registered version (tracking.register_exports).

The driver reads the files once (it hashes the weights for the manifest and the output's parameters) and
hands their bytes to the actors through Ray's object store, so every node encodes with the same weights
without needing the registry, the tracking server or S3 itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path

from vitok import ViTokConfig
from vitok.checkpoint import CONFIG_NAME, WEIGHTS_NAME, fetch_s3
from vitok.config import token_grid
from workflows.latents.errors import LatentsError
from workflows.runtime.tracking_store import check_tracking_store, is_registry_reference, resolve_tracking_uri
from workflows.tracking import fetch_artifacts, registry_source, tracking_client



@dataclasses.dataclass(frozen=True)
class Tokenizer:
    reference: str  # as the user gave it
    source: str  # where the files were read: a folder, an s3:// prefix or an MLflow artifact URI
    registry: dict  # runs:/ -> {"run_id"}; models:/ -> {"name", "version", "alias", "run_id"}; else {}
    files: dict[str, bytes]  # {WEIGHTS_NAME: ..., CONFIG_NAME: ...}
    config: ViTokConfig

    @property
    def weights_sha256(self) -> str:
        return hashlib.sha256(self.files[WEIGHTS_NAME]).hexdigest()

    def describe(self) -> dict:
        """What the manifest says about the tokenizer."""
        c = self.config
        return {
            "reference": self.reference,
            "source": self.source,
            **({"registry": self.registry} if self.registry else {}),
            "weights_sha256": self.weights_sha256,
            "variant": c.name,
            "patch_size": c.patch_size,
            "tubelet_size": c.tubelet_size,
            "channels": c.channels,
            "config": c.to_dict(),
        }


def load_tokenizer(reference: str, tracking_uri: str | None = None, s3_endpoint_url: str | None = None) -> Tokenizer:
    """Read the tokenizer `reference` names, or raise LatentsError saying what is wrong with it."""
    with tempfile.TemporaryDirectory(prefix="tokenizer-") as tmp:
        if is_registry_reference(reference):
            folder, source, registry = _from_mlflow(reference, resolve_tracking_uri(tracking_uri), Path(tmp))
        elif reference.startswith("s3://"):
            folder, source, registry = _from_s3(reference, s3_endpoint_url, Path(tmp)), reference, {}
        elif "://" in reference:
            raise LatentsError(f"tokenizer {reference}: unsupported reference (a folder, s3://, runs:/ or models:/)")
        else:
            folder = Path(reference).expanduser().resolve()
            if not folder.is_dir():
                raise LatentsError(f"tokenizer {folder}: no such folder")
            source, registry = str(folder), {}
        files = {}
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            if not (folder / name).is_file():
                raise LatentsError(f"tokenizer {reference}: not a tokenizer export ({name} is missing in {source})")
            files[name] = (folder / name).read_bytes()
    try:
        config = ViTokConfig.from_dict(json.loads(files[CONFIG_NAME]))
    except (ValueError, TypeError) as err:
        raise LatentsError(f"tokenizer {reference}: {CONFIG_NAME} is not a ViTok config ({err})") from None
    return Tokenizer(reference, source, registry, files, config)


def latent_shapes(tokenizer: Tokenizer, tubelets: dict[str, tuple[int, int, int]], shards: str) -> dict[str, list[int]]:
    """Media type -> latent shape (T/q, H/p, W/p, c) for tubelets (T, H, W) of each media type; LatentsError
    when the tokenizer's tubelet or patch size does not divide them."""
    shapes = {}
    for media_type, (frames, height, width) in tubelets.items():
        try:
            grid = token_grid(tokenizer.config, frames, height, width)
        except ValueError as err:
            raise LatentsError(
                f"tokenizer {tokenizer.reference}: {err} of the {media_type} tubelets ({frames}x{height}x{width}) in "
                f"{shards}; --media-type chooses which tubelets to encode"
            ) from None
        shapes[media_type] = [*grid, tokenizer.config.channels]
    return shapes


def _from_s3(uri: str, endpoint_url: str | None, tmp: Path) -> Path:
    try:
        return fetch_s3(uri.rstrip("/"), endpoint_url, cache_dir=tmp)
    except FileNotFoundError:
        raise LatentsError(f"tokenizer {uri}: nothing at that URI") from None
    except Exception as err:  # noqa: BLE001 - pyarrow's S3 errors (auth, DNS, bucket) all mean "unreadable"
        raise LatentsError(f"tokenizer {uri}: unreadable ({' '.join(str(err).split())[:300]})") from None


def _from_mlflow(reference: str, tracking_uri: str, tmp: Path) -> tuple[Path, str, dict]:
    try:  # fast, and before a tracking client, which would create an empty SQLite store or retry a dead server
        check_tracking_store(tracking_uri, must_exist=True)
    except ValueError as err:
        raise LatentsError(f"tokenizer {reference}: {err}") from None
    client = tracking_client(tracking_uri, registry=True)
    try:
        source, registry = registry_source(client, reference)
        return fetch_artifacts(client, source, tmp / "artifacts"), source, registry
    except (LookupError, ValueError) as err:
        raise LatentsError(f"tokenizer {reference}: {err}") from None
    except Exception as err:  # noqa: BLE001 - an unreachable server or store: one line, not a traceback
        reason = " ".join(str(err).split())[:300]
        raise LatentsError(f"tokenizer {reference}: MLflow at {tracking_uri} failed ({reason})") from None
