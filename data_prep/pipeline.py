"""run(): list the corpus, fingerprint it, cut it into work units, fan the units out over Ray Data, derive
the manifest.

Exactly-once comes from the units (units.py, commit.py, and the kit in exactly_once/): each unit commits
its shard and record atomically, a rerun skips committed units, and the manifest is rebuilt from the
records at the end. A crash therefore costs at most the units that were in flight.

Two ways to rerun into an existing output:
- default: the units are laid over today's whole listing, so the output is exactly what a fresh run on
  today's corpus gives. Unchanged listing: every unit is skipped. Changed listing: units whose members
  changed are redone (units are consecutive runs of sorted URIs, so an added file re-cuts the units after
  it); records and shards of units no longer named stay in the output but leave the manifest.
- incremental: the units of the previous manifest are kept as they are, and only inputs none of them holds
  form new units, appended to the manifest. Inputs with bytes an earlier unit used are duplicates. It is
  append-only: inputs deleted from the corpus keep their tubelets, and a file changed in place under
  the same URI is not redone (a default run redoes both).

Labels (`labels`, see labels.py) are read right after the listing, so a bad CSV stops the run before any
file is read; the output's label mapping is extended before any unit runs.
"""

from __future__ import annotations

import logging

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.exactly_once.claims import claim_params, differing_keys
from data_prep.exactly_once.incremental import incremental_base
from data_prep.exactly_once.records import committed_records, record_path, records_after_run
from data_prep.fan_out import prepare_units
from data_prep.fingerprint import Fingerprint, fingerprint_all
from data_prep.labels import extend_mapping, label_names, parse_labels_option
from data_prep.manifest import write_manifest
from data_prep.params import PREP_VERSION, WHY_REBUILD, PrepParams
from data_prep.sources import Selection, check_input, list_candidates
from data_prep.storage import check_output
from data_prep.units import plan_units

log = logging.getLogger(__name__)


def run(
    input: str,
    output: str,
    frames: int = 8,
    size: int = 64,
    fps: float = 8.0,
    max_clips: int = 4,
    clip_stride: int = 0,
    crop: str = "center",
    val_fraction: float = 0.1,
    images_per_unit: int = 16,
    videos_per_unit: int = 4,
    max_image_pixels: int = 64_000_000,
    *,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    incremental: bool = False,
    labels: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
) -> dict:
    """Prepare tubelet shards from the images and videos under `input` into `output`; return the totals.

    `input` and `output` are local folders or s3://bucket/prefix; `labels` is None, "parent-dir" or the
    location of a CSV (labels.py). Raises DataPrepError (before any work) when the input cannot be listed
    or holds no candidates, the output is not writable, a parameter is out of range, the labels CSV is
    unreadable or malformed, or the output was prepared with other parameters.
    """
    label_source = parse_labels_option(labels)
    params = PrepParams(
        frames=frames,
        size=size,
        fps=fps,
        max_clips=max_clips,
        clip_stride=clip_stride,
        crop=crop,
        val_fraction=val_fraction,
        images_per_unit=images_per_unit,
        videos_per_unit=videos_per_unit,
        max_image_pixels=max_image_pixels,
        labels=label_source.kind if label_source else "",
    )
    params.validate()
    settings = s3.S3Settings(endpoint_url=s3_endpoint_url, region=s3_region)
    selection = Selection(include=tuple(include), exclude=tuple(exclude))
    root = check_input(input, settings)
    candidates, passed_over = list_candidates(root, selection, settings)
    if not candidates:
        kind = f"{len(passed_over)} files, none an image or video" if passed_over else "no files"
        raise DataPrepError(f"input {root}: {kind} (after --include/--exclude)")
    names = label_names(label_source, root, candidates, settings) if label_source else {}
    store = check_output(output, settings)
    found = claim_params(store, params.to_dict())
    if found is not None and found.get("prep_version") != PREP_VERSION:
        raise DataPrepError(f"output {store.root}: prepared by data prep version {found.get('prep_version')}, this is "
                            f"version {PREP_VERSION} ({WHY_REBUILD}); prepare into a new output")  # fmt: skip
    if found is not None:
        diff = ", ".join(differing_keys(found, params.to_dict()))
        raise DataPrepError(f"output {store.root}: prepared with other parameters ({diff}); use a new output")

    committed = committed_records(store)
    base = incremental_base(store, committed, DataPrepError) if incremental else []
    taken = {uri for r in base for uri in r["inputs"]}
    files = [f for f in candidates if f.uri not in taken]
    cache = {
        (m["uri"], m["size"], m["version"]): Fingerprint(m["sha256"], m["sniffed"], m["error"])
        for r in committed.values()
        for m in r.get("members", [])
    }
    fingerprints = fingerprint_all(files, settings, cache)
    label_of = None
    if label_source:
        # Only names of files that are media get an int: a text file in a class folder makes no class.
        media_names = {names[f.uri] for f in files if f.uri in names and fingerprints[f.uri].sniffed}
        mapping = extend_mapping(store, media_names)
        index = {name: i for i, name in enumerate(mapping)}
        label_of = {uri: (index[name], name) for uri, name in names.items() if name in index}
    plan = plan_units(files, fingerprints, params, known=_used_hashes(base), labels=label_of)

    todo = [u for u in plan.units if not store.exists(record_path(u.unit_id))]
    log.info(
        "%d candidates, %d already in the output, %d in %d new units, %d to do",
        len(candidates), len(taken), len(files) - len(plan.ignored), len(plan.units), len(todo),
    )  # fmt: skip
    if todo:
        prepare_units(store.root, todo, params, settings)

    fresh = records_after_run(store, committed, [u.unit_id for u in todo], [u.unit_id for u in plan.units])
    records = list(base) + [committed[u.unit_id] for u in plan.units]
    ran = [r["stats"] for r in fresh]
    extra = {
        "input": root,
        "selection": {"include": list(selection.include), "exclude": list(selection.exclude)},
        "incremental": incremental,
        "files_ignored": len(passed_over) + len(plan.ignored),
        # Each file of the listing that is not an input, with the reason ({"uri", "reason"}).
        "files_passed_over": sorted(passed_over + plan.ignored, key=lambda p: p["uri"]),
        "units_run": len(todo),
        "inputs_run": sum(len(u.members) for u in todo),
        # What this invocation did (the totals describe the whole output): for schedulers' summaries.
        "tubelets_run": sum(st["tubelets"] for st in ran),
        "frames_run": sum(st["frames"] for st in ran),
        "input_bytes_run": sum(st["input_bytes"] for st in ran),
    }
    if label_source:
        # names[i] is the class of label i; the same mapping as labels.json (see labels.py).
        extra["labels"] = {"source": label_source.describe(), "names": mapping}
    manifest = write_manifest(store, params.to_dict(), records, extra)
    return manifest["totals"]


def _used_hashes(records: list[dict]) -> dict[str, str]:
    """Content hash -> URI for every input an earlier unit turned into tubelets."""
    out = {}
    for r in records:
        bad = {q["uri"] for q in r["quarantine"]}
        for m in r.get("members", []):
            if m["uri"] not in bad and m["sha256"]:
                out.setdefault(m["sha256"], m["uri"])
    return out
