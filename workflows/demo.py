"""`make demo`: the whole pipeline on the embedded default, end to end.

sample corpus (work/corpus) -> Ray Data tubelet shards (work/shards) -> smoke sweep under Ray Train +
DeepSpeed -> MLflow store ./mlflow.db, then the summary table and the command that opens the dashboard.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.pipeline import run as prepare_shards
from data_prep.sample_corpus import build_sample_corpus
from workflows import scale_sweep
from workflows.cluster import connect_ray

WORK = Path("work")
SMOKE = Path(__file__).resolve().parent / "configs" / "smoke.yaml"


def main() -> int:
    start = time.perf_counter()
    corpus = WORK / "corpus"
    shards = WORK / "shards"
    print(f"== 1/3 sample corpus -> {corpus}", flush=True)
    build_sample_corpus(corpus)
    connect_ray()
    print(f"== 2/3 data prep -> {shards}", flush=True)
    totals = prepare_shards(corpus, shards, frames=8, size=64, fps=8)
    print(f"   {totals}", flush=True)
    print("== 3/3 smoke sweep", flush=True)
    code = scale_sweep.main(["--config", str(SMOKE), "--shards", str(shards)])
    print(f"demo finished in {time.perf_counter() - start:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
