"""run(): list the corpus, cut it into work units, fan the units out over Ray Data, derive the manifest.

Exactly-once comes from the units (see units.py and commit.py): each unit commits its shard and record
atomically, a rerun skips committed units, and the manifest is rebuilt from the records at the end. A crash
therefore costs at most the units that were in flight.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import ray

from data_prep.commit import read_record, record_path, run_unit
from data_prep.errors import DataPrepError
from data_prep.manifest import write_manifest
from data_prep.params import PrepParams
from data_prep.sources import check_input, list_inputs
from data_prep.storage import LocalStore, check_output
from data_prep.units import WorkUnit, make_units

log = logging.getLogger(__name__)
PARAMS_FILE = "params.json"


def run(
    input: str,
    output: str,
    frames: int = 8,
    size: int = 64,
    fps: float = 8.0,
    val_fraction: float = 0.1,
    max_clips: int = 4,
    images_per_unit: int = 16,
    videos_per_unit: int = 4,
    max_image_pixels: int = 64_000_000,
) -> dict:
    """Prepare tubelet shards from the images and videos under `input` into `output`; return the totals.

    Raises DataPrepError (before any work) when the input is missing or empty, the output is not a
    writable folder, a parameter is out of range, or the output was prepared with other parameters.
    """
    params = PrepParams(
        frames=frames,
        size=size,
        fps=fps,
        val_fraction=val_fraction,
        max_clips=max_clips,
        images_per_unit=images_per_unit,
        videos_per_unit=videos_per_unit,
        max_image_pixels=max_image_pixels,
    )
    params.validate()
    root = check_input(input)
    listing = list_inputs(root)
    if not listing.inputs:
        kind = f"{listing.ignored} files, none an image or video" if listing.ignored else "no files"
        raise DataPrepError(f"input {root}: {kind}")
    store = check_output(output)
    _claim_params(store, params)

    units = make_units(listing.inputs, params)
    todo = [u for u in units if not store.exists(record_path(u.unit_id))]
    log.info("%d inputs in %d units, %d to do", len(listing.inputs), len(units), len(todo))
    if todo:
        _fan_out(store, root, todo, params)

    records = []
    for u in units:
        record = read_record(store, u.unit_id)
        if record is None:
            raise RuntimeError(f"unit {u.unit_id} finished without a commit record in {store.root}/units")
        records.append(record)
    extra = {"input": root, "files_ignored": listing.ignored, "units_run": len(todo)}
    manifest = write_manifest(store, params.to_dict(), records, extra)
    return manifest["totals"]


def _claim_params(store: LocalStore, params: PrepParams) -> None:
    """Record the parameters on first use; refuse to mix shards of other parameters into one output."""
    wanted = params.to_dict()
    if store.exists(PARAMS_FILE):
        found = json.loads(store.read_bytes(PARAMS_FILE))
        if found != wanted:
            diff = sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))
            raise DataPrepError(
                f"output {store.root}: prepared with other parameters ({', '.join(diff)}); use a new output"
            )
        return
    store.write_atomic(PARAMS_FILE, json.dumps(wanted, indent=1).encode())


def _fan_out(store: LocalStore, input_root: str, units: list[WorkUnit], params: PrepParams) -> None:
    if not ray.is_initialized():
        # Workflows may have started (or connected to) Ray already; otherwise this starts a local one,
        # or joins the cluster named by RAY_ADDRESS (e.g. under `ray job submit`).
        ray.init(include_dashboard=False)
    cpus = int(ray.available_resources().get("CPU", 1)) or 1
    # One block per unit, so the units spread over the workers instead of queuing behind one another.
    ds = ray.data.from_items([{"unit": json.dumps(u.to_row())} for u in units], override_num_blocks=len(units))
    results = ds.map_batches(
        _UnitWorker,
        fn_constructor_kwargs={"output_root": store.root, "input_root": input_root, "params": params},
        batch_size=1,  # one unit per call: a unit is already the grain of work and of commit
        num_cpus=1,  # one core per worker: the decoders run single-threaded (decode_video.py)
        compute=ray.data.ActorPoolStrategy(size=max(1, min(cpus, len(units)))),
    ).take_all()
    done = {r["unit_id"] for r in results}
    missing = [u.unit_id for u in units if u.unit_id not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} units did not report back: {missing[:3]}")


class _UnitWorker:
    """Ray Data actor: processes and commits one unit per call and returns its id."""

    def __init__(self, output_root: str, input_root: str, params: PrepParams):
        self.store = LocalStore(output_root)
        self.input_root = input_root
        self.params = params

    def __call__(self, batch: dict) -> dict:
        ids = []
        for raw in batch["unit"]:
            u = json.loads(raw)
            unit = WorkUnit(unit_id=u["unit_id"], media_type=u["media_type"], uris=tuple(u["uris"]))
            ids.append(run_unit(self.store, self.input_root, unit, self.params)["unit_id"])
        return {"unit_id": np.array(ids, dtype=object)}
