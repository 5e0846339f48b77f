"""`make demo`: the whole pipeline on the embedded default, end to end.

sample corpus (work/corpus) -> Ray Data tubelet shards (work/shards) -> the tiny `e_sweep` study under Ray
Train + DeepSpeed (checkpoints in work/ray_results) -> MLflow store ./mlflow.db: summary table, plots with
fits and findings.md on the sweep's parent run; the findings are printed at the end, with the command that
opens the dashboard. Re-running `make demo` resumes the sweep: finished configs are skipped.
Options after `--` go to scale_sweep.py (e.g. `--verbose`, `--new`), except `--generation`: the tiny
`e_generation` study instead (each tokenizer followed by its generation probe: latents, a DiT, samples
scored), as `make demo ARGS=--generation`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.pipeline import run as prepare_shards
from data_prep.ray_session import connect_ray
from data_prep.sample_corpus import build_sample_corpus
from workflows import scale_sweep
from workflows.runtime.console import configure_console, say
from workflows.runtime.paths import WORK_DIR

E_SWEEP = Path(__file__).resolve().parent / "configs" / "e_sweep_tiny.yaml"
E_GENERATION = Path(__file__).resolve().parent / "configs" / "e_generation_tiny.yaml"


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    study = E_GENERATION if "--generation" in argv else E_SWEEP
    argv = [arg for arg in argv if arg != "--generation"]
    verbose = "--verbose" in argv
    configure_console(verbose)
    start = time.perf_counter()
    corpus, shards = WORK_DIR / "corpus", WORK_DIR / "shards"
    connect_ray(verbose)  # before the corpus, whose encoding already starts Ray (the first connect decides)
    say(f"== 1/3 sample corpus -> {corpus}")
    build_sample_corpus(corpus)
    say(f"== 2/3 data prep -> {shards}")
    totals = prepare_shards(str(corpus), str(shards), frames=8, size=64, fps=8)
    say(f"   {totals}")
    say(f"== 3/3 scaling study {'e_generation' if study == E_GENERATION else 'e_sweep'} (tiny): {study.name}")
    code = scale_sweep.main(["--config", str(study), "--shards", str(shards), *argv])
    say(f"demo finished in {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
