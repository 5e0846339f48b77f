"""Unit records: `units/<unit_id>.json`, the commit point of a work unit, and reading them back."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from data_prep.storage import Store

UNITS_FOLDER = "units"


def record_path(unit_id: str) -> str:
    return f"{UNITS_FOLDER}/{unit_id}.json"


def read_record(store: Store, unit_id: str) -> dict | None:
    """The unit's record, or None when the unit is not committed."""
    if not store.exists(record_path(unit_id)):
        return None
    return json.loads(store.read_bytes(record_path(unit_id)))


def read_records(store: Store, paths: list[str]) -> list[dict]:
    """The unit records at `paths`, read in parallel (on S3 each is a GET; outputs hold thousands)."""
    with ThreadPoolExecutor(16) as pool:
        return [json.loads(b) for b in pool.map(store.read_bytes, paths)]


def committed_records(store: Store) -> dict[str, dict]:
    """Every record in the output, by unit id (also those of units today's plan no longer names)."""
    return {r["unit_id"]: r for r in read_records(store, store.list(UNITS_FOLDER, ".json"))}


def records_after_run(store: Store, committed: dict[str, dict], ran: list[str], planned: list[str]) -> list[dict]:
    """Read the records of the units in `ran` into `committed` and return them (the fresh ones).

    A planned unit without a record after its run is a bug in the worker, not a user error: RuntimeError.
    """
    fresh = read_records(store, [record_path(unit_id) for unit_id in ran])
    committed.update((r["unit_id"], r) for r in fresh)
    missing = [unit_id for unit_id in planned if unit_id not in committed]
    if missing:
        raise RuntimeError(f"unit {missing[0]} finished without a commit record in {store.root}/{UNITS_FOLDER}")
    return fresh
