"""Where a data-prep unit's time goes: prints one JSON object with the seconds of each stage, measured in one
process on one core over the sample corpus x `--scale` (the corpus bench/data/prep_throughput.py builds).

bench/data/prep_throughput.py measures the Ray Data pipeline against a plain decode loop; this one splits the
per-unit work the plain loop leaves out, stage by stage, in the order a worker does it for each unit:
decoding and transforms (process_unit, what the plain loop also does), Arrow packing, the zstd Parquet
write, the shard's sha256, the shard's atomic write with fsync, and the unit record's. The driver's
listing, fingerprinting and unit planning are timed once before the units. Ray itself is not started: what
is left of the pipeline's gap after these stages is Ray Data's and its processes'.
Beside them, not in the pipeline, for comparison: the same write uncompressed; reading the shard back as
a reader gets it (Parquet, then the pixels as one array); and both, write and read, with the pixels stored
as Ray's tensor type (an Arrow list of bytes in Parquet), the layout before data prep version 4.
Usage: python bench/data/prep_unit_costs.py [--scale 10]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from collections import defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)  # run as a script: make the repository importable

from bench.harness import environment  # noqa: E402
from bench.data.prep_throughput import UNIT_SIZES, build_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=10, help="copies of the sample corpus")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: stage times without contention

    import pyarrow.parquet as pq
    from ray.data.extensions import ArrowTensorArray

    from data_prep.exactly_once.commit import shard_bytes, shard_path
    from data_prep.exactly_once.tensor_columns import tensor_numpy
    from data_prep.fingerprint import fingerprint_all
    from data_prep.params import PrepParams
    from data_prep.process import process_unit
    from data_prep.s3 import S3Settings
    from data_prep.sample_corpus import build_sample_corpus
    from data_prep.schema import tubelet_table
    from data_prep.sources import Selection, check_input, list_candidates
    from data_prep.storage import check_output
    from data_prep.units import plan_units

    seconds: dict[str, float] = defaultdict(float)
    sizes: dict[str, int] = defaultdict(int)

    def timed(stage: str, fn, *a, **kw):
        start = time.perf_counter()
        result = fn(*a, **kw)
        seconds[stage] += time.perf_counter() - start
        return result

    with tempfile.TemporaryDirectory() as tmp:
        build_sample_corpus(os.path.join(tmp, "sample"))
        corpus = build_corpus(os.path.join(tmp, "sample"), os.path.join(tmp, "corpus"), args.scale)
        settings, params = S3Settings(), PrepParams(**UNIT_SIZES)
        root = check_input(os.path.join(tmp, "corpus"), settings)
        files, _ = timed("driver: listing", list_candidates, root, Selection(), settings)
        fingerprints = timed("driver: fingerprints", fingerprint_all, files, settings, {})
        plan = timed("driver: units", plan_units, files, fingerprints, params, {})
        store = check_output(os.path.join(tmp, "out"), settings)
        tubelets = 0
        for unit in plan.units:
            out = timed("unit: decode and transform", process_unit, unit, params, settings)
            tubelets += len(out.rows)
            if not out.rows:
                continue
            table = timed("unit: arrow packing", tubelet_table, out.rows, out.pixels)
            # not part of the pipeline: what zstd costs over no compression
            timed("(not in the pipeline) parquet write, uncompressed", shard_bytes, table, "none")
            # write_shard's three steps, timed apart: the zstd Parquet write, the checksum, the atomic write.
            data = timed("unit: parquet write, zstd", shard_bytes, table)
            timed("(not in the pipeline) shard read back",
                  lambda: tensor_numpy(pq.read_table(io.BytesIO(data)), "pixels"))
            listed = table.set_column(table.column_names.index("pixels"), "pixels",
                                      ArrowTensorArray.from_numpy(tensor_numpy(table, "pixels")))  # fmt: skip
            before = timed("(not in the pipeline) parquet write, zstd, pixels as Ray's tensor type",
                           _write_listed, listed)
            timed("(not in the pipeline) shard read back, pixels as Ray's tensor type",
                  lambda: pq.read_table(io.BytesIO(before)).column("pixels").combine_chunks().to_numpy())
            sizes["shard bytes"] += len(data)
            sizes["shard bytes, pixels as Ray's tensor type"] += len(before)
            timed("unit: shard sha256", lambda: hashlib.sha256(data).hexdigest())
            timed("unit: shard write with fsync", store.write_atomic, shard_path(unit.media_type, unit.unit_id), data)
            record = json.dumps({"unit_id": unit.unit_id, "stats": out.stats()}).encode()
            timed("unit: record write with fsync", store.write_atomic, f"records/{unit.unit_id}.json", record)

    in_pipeline = {k: v for k, v in seconds.items() if not k.startswith("(")}
    total = sum(in_pipeline.values())
    print(json.dumps({
        **environment(["data_prep", "bench/data/prep_unit_costs.py", "bench/data/prep_throughput.py"]),
        "corpus": {**corpus, "units": len(plan.units), "tubelets": tubelets},
        "cores": 1,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "bytes": dict(sizes),
        "share_of_pipeline_stages": {k: round(v / total, 3) for k, v in in_pipeline.items()},
    }, indent=1))  # fmt: skip
    return 0


def _write_listed(table) -> bytes:
    """shard_bytes' settings (zstd; no dictionary or statistics on the pixels) for a table whose pixels are Ray's
    tensor type, which shard_bytes does not take."""
    import pyarrow.parquet as pq

    scalars = [c for c in table.column_names if c != "pixels"]
    buf = io.BytesIO()
    pq.write_table(table, buf, use_dictionary=scalars, write_statistics=scalars, compression="zstd")
    return buf.getvalue()


if __name__ == "__main__":
    sys.exit(main())
