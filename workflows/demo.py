"""`make demo`: the whole pipeline on the embedded default, end to end.

sample corpus (work/corpus) -> Ray Data tubelet shards (work/shards) -> the tiny `e_sweep` study under Ray
Train + DeepSpeed (checkpoints in work/ray_results) -> MLflow store ./mlflow.db: summary table, plots with
fits and findings.md on the sweep's parent run; the findings are printed at the end, with the command that
opens the dashboard. Re-running `make demo` resumes the sweep: finished configs are skipped.
Options (`make demo ARGS="..."`): `--generation` runs the tiny `e_generation` study instead (each tokenizer
followed by its generation probe: latents, a DiT, samples scored); `--verbose`, `--new`, `--max-concurrent`,
`--tracking-uri`, `--storage`, `--alias` and `--best-by` go to scale_sweep.py. Every option, and where the
sweep writes, is checked before the corpus is built: a bad one exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.cli import OneLineParser, unwritable
from workflows import scale_sweep
from workflows.config import ConfigError
from workflows.runtime.console import configure_console, say
from workflows.runtime.paths import WORK_DIR

E_SWEEP = Path(__file__).resolve().parent / "configs" / "e_sweep_tiny.yaml"
E_GENERATION = Path(__file__).resolve().parent / "configs" / "e_generation_tiny.yaml"


PROG = "make demo ARGS=... (workflows/demo.py)"  # what a rejection names: the command the user ran

# The demo's options that scale_sweep.py takes as they are: flag -> whether it takes a value.
SWEEP_OPTIONS = {"--verbose": False, "--new": False, "--max-concurrent": True, "--tracking-uri": True,
                 "--storage": True, "--alias": True, "--best-by": True}  # fmt: skip


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The demo's options, and the scale_sweep.py arguments they become; a bad one exits 2 in one line."""
    parser = OneLineParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--generation", action="store_true", help="the tiny e_generation study instead of e_sweep")
    for flag, takes_value in SWEEP_OPTIONS.items():
        if takes_value:
            parser.add_argument(flag, default=None, help="passed to scale_sweep.py (see its --help)")
        else:
            parser.add_argument(flag, action="store_true", help="passed to scale_sweep.py (see its --help)")
    args = parser.parse_args(argv)
    forwarded = []
    for flag, takes_value in SWEEP_OPTIONS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if takes_value and value is not None:
            forwarded += [flag, value]
        elif not takes_value and value:
            forwarded.append(flag)
    return args, forwarded


def main(argv: list[str] | None = None) -> int:
    args, sweep_argv = parse_args(list(argv or []))
    study = E_GENERATION if args.generation else E_SWEEP
    try:  # the sweep's own checks of these options (ranges, --storage, the tracking store), before any work
        why = unwritable(str(WORK_DIR))
        if why:
            raise ConfigError(f"{WORK_DIR.resolve()} (the corpus and the shards): {why}")
        scale_sweep.check_outputs(scale_sweep.parse_args(["--config", str(study), *sweep_argv], prog=PROG),
                                  probed=study == E_GENERATION)  # fmt: skip
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    verbose = args.verbose
    configure_console(verbose)
    # Ray Data's pipeline and its session (seconds of imports) once the options have passed the checks above,
    # so that a bad one is answered at once.
    from data_prep import build_sample_corpus, run as prepare_shards
    from data_prep.ray_session import connect_ray

    start = time.perf_counter()
    corpus, shards = WORK_DIR / "corpus", WORK_DIR / "shards"
    connect_ray(verbose)  # before the corpus, whose encoding already starts Ray (the first connect decides)
    say(f"== 1/3 sample corpus -> {corpus}")
    build_sample_corpus(corpus)
    say(f"== 2/3 data prep -> {shards}")
    totals = prepare_shards(str(corpus), str(shards), frames=8, size=64, fps=8)
    say(f"   {totals['inputs_used']} inputs ({totals['inputs_quarantined']} quarantined) -> {totals['tubelets']} "
        f"tubelets ({totals['train_tubelets']} train, {totals['val_tubelets']} held out), "
        f"{totals['shard_bytes'] / 1e6:.1f} MB of shards")
    say(f"== 3/3 scaling study {'e_generation' if study == E_GENERATION else 'e_sweep'} (tiny): {study.name}")
    code = scale_sweep.main(["--config", str(study), "--shards", str(shards), *sweep_argv])
    say(f"demo finished in {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
