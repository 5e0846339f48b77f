"""cache_latents(): tubelet shards + a tokenizer -> latent shards, manifest.json and latent_stats.json.

Everything that can be checked before work is checked first, each failure one LatentsError line: the
options, the shards' manifest, the tokenizer reference, whether its tubelet and patch sizes divide the
shards' tubelets, the output (writable, and not holding latents of other parameters).

Exactly-once with data prep's unit kit (data_prep/exactly_once/): the tubelet manifest's shards become
work units (units.py), each committed atomically (commit.py); a rerun skips committed units and the
manifest and stats are derived from the records at the end. A crash therefore costs at most the units in
flight, and a rerun ends with the same bytes as an uninterrupted run.
- default: the output is made to match the tubelet manifest of today: new or changed shards are encoded,
  the rest skipped; records of units whose shard left the input stay on disk but leave the manifest.
- incremental: the units of the previous latent manifest are kept as they are (append-only, also when
  their tubelet shard has since left the input), and only shards none of them holds are encoded.
"""

from __future__ import annotations

import logging
import math

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.exactly_once.claims import claim_params, differing_keys
from data_prep.exactly_once.incremental import incremental_base
from data_prep.exactly_once.records import committed_records, records_after_run
from data_prep.storage import check_output
from workflows.runtime.precision import resolve_precision
from workflows.latents.errors import LatentsError
from workflows.latents.fan_out import cluster_gpus, encode_units
from workflows.latents.inputs import read_tubelet_input
from workflows.latents.manifest import write_outputs
from workflows.latents.params import CacheOptions, LatentParams
from workflows.latents.schema import STORAGE
from workflows.latents.tokenizer import latent_shapes, load_tokenizer
from workflows.latents.units import plan_latent_units

log = logging.getLogger(__name__)


def cache_latents(
    shards: str,
    tokenizer: str,
    output: str,
    options: CacheOptions = CacheOptions(),
    *,
    tracking_uri: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
    verbose: bool = False,
) -> dict:
    """Encode the tubelet shards at `shards` with the tokenizer `tokenizer` names into `output`.

    `shards` and `output` are local folders or s3://bucket/prefix; `tokenizer` a folder, s3:// URI,
    runs:/<run_id>/<path>, models:/<name>/<version> or models:/<name>@<alias> (`tracking_uri` for the last
    two; default as the workflows resolve it). `verbose` lets Ray's and the actors' logs reach the console.
    Returns a summary: what this call encoded, the output's totals and the train-split statistics. Raises
    LatentsError before any work for bad input.
    """
    options.validate()
    settings = s3.S3Settings(endpoint_url=s3_endpoint_url, region=s3_region)
    tubelet_input = read_tubelet_input(shards, options, s3_endpoint_url, s3_region)
    tubelets_root, tubelet_manifest, media_types = tubelet_input.root, tubelet_input.manifest, tubelet_input.media_types
    tubelets = {m: tubelet_manifest.tubelet_shape(m) for m in ("image", "video")}
    tok = load_tokenizer(tokenizer, tracking_uri, s3_endpoint_url)
    shapes = latent_shapes(tok, {m: tubelets[m] for m in media_types}, tubelets_root)
    try:
        store = check_output(output, settings)
    except DataPrepError as err:
        raise LatentsError(str(err)) from None
    gpus = options.num_gpus if options.num_gpus is not None else (1.0 if cluster_gpus(verbose) else 0.0)
    precision = resolve_precision(options.precision, use_gpu=gpus > 0)
    params = LatentParams(tok.weights_sha256, options.dtype, options.logvar, precision)
    _refuse_other_params(store, params)

    committed = committed_records(store)
    base = incremental_base(store, committed, LatentsError) if options.incremental else []
    held = {r["unit_id"] for r in base}
    # An incremental output keeps the media types earlier runs encoded, whichever --media-type is asked now.
    kept = sorted({r["media_type"] for r in base} - set(shapes))
    shapes.update(latent_shapes(tok, {m: tubelets[m] for m in kept}, tubelets_root))
    units = [u for u in plan_latent_units(tubelet_manifest.shards, params.key(), media_types) if u.unit_id not in held]
    todo = [u for u in units if u.unit_id not in committed]
    log.info("%d tubelet shards, %d already encoded here, %d to encode", len(units) + len(base),
             len(units) + len(base) - len(todo), len(todo))  # fmt: skip
    if todo:
        encode_units(store.root, tubelets_root, todo, tok.files, params, settings, options.batch_size,
                     options.concurrency, gpus, verbose)  # fmt: skip
    fresh = records_after_run(store, committed, [u.unit_id for u in todo], [u.unit_id for u in units])
    records = base + [committed[u.unit_id] for u in units]
    header = {
        # As the tubelet manifest has them (its JSON), so this file keeps its bytes whatever reads it.
        "tubelets": {"root": tubelets_root, "params": tubelet_manifest.document["params"]},
        "tokenizer": tok.describe(),
        "params": params.to_dict(),
        "dtype": params.dtype,
        "storage": STORAGE[params.dtype],
        "columns": ["sample_id", "latent", *(["latent_logvar"] if params.logvar else [])],
        "media_types": list(media_types),
        "latent_shapes": shapes,
        "E": {m: math.prod(shape) for m, shape in shapes.items()},
        **({"labels": tubelet_manifest.document["labels"]} if tubelet_manifest.label_names is not None else {}),
    }
    manifest, stats, written = write_outputs(store, header, records, tok.config.channels)
    return {
        "output": store.root,
        "units_run": len(todo),
        "latents_run": sum(r["shard"]["rows"] for r in fresh),
        "encode_seconds": round(sum(r["seconds"] for r in fresh), 3),
        "written": written,
        "E": header["E"],
        "latent_shapes": shapes,
        "dtype": params.dtype,
        "precision": params.precision,
        "shards": len(manifest["shards"]),
        "totals": manifest["totals"],
        "stats": stats,
    }


def _refuse_other_params(store, params: LatentParams) -> None:
    """Claim the output for `params`; LatentsError when it holds latents of other parameters."""
    wanted = params.to_dict()
    found = claim_params(store, wanted)
    if found is not None:
        diff = "; ".join(f"{k}: {found.get(k)} there, {wanted.get(k)} now" for k in differing_keys(found, wanted))
        raise LatentsError(f"output {store.root}: holds latents of other parameters ({diff}); use a new output")
