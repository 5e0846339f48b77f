"""Where a two-worker training step's time goes on CPU: forward, backward and optimiser step of the trainer's own
step at ZeRO-0 and ZeRO-2, for one rank alone and for two ranks, beside the plain step.

    .venv/bin/python bench/training/zero_split.py [--variants S-S/16 T-T/4] [--batch 16] [--steps 12] [--rounds 1]
        [--quick]

A sweep on one 2-core machine trains with two Ray Train workers, one core and one torch thread each, where a plain
loop would run one process with two threads. Every case here runs in fresh processes, one per rank, each pinned
to a core of its own with one thread, without Ray (its start is bench/training/run_overhead.py's subject):
- `plain_2cores`: the plain step (bench/training/plain_step.py) on the whole batch, one process on both cores: what a
  two-worker run is compared with (bench/training/train_step.py's `plain_auto`);
- `plain_1core`: the plain step on one rank's half of the batch on one core: that rank's compute;
- `alone_zeroN`: the trainer's step (`TokenizerState.step`: DeepSpeed's engine as the trainer builds it,
  objective, augmentation) on half the batch, one rank on one core: the compute plus DeepSpeed's own work,
  with no peer;
- `pair_zeroN`: the same on two ranks over gloo on loopback, half the batch each: a two-worker step.
Phases, median seconds per step: `forward` (augmentation, forward and loss), `backward` (autograd, and for the
trainer DeepSpeed's gradient hooks, its bucket copies and the reduction across ranks) and `step` (the optimiser
step; at ZeRO-2 also the gathering of the updated weights). Derived per stage: `deepspeed_s`, alone minus
`plain_1core` by phase (what DeepSpeed adds with no peer), and `peer_s`, pair minus alone (the communication with
the other rank and the waits for it), and the pair's step against `plain_2cores` (goal of
bench/training/train_step.py: the trainer at its defaults >= 0.9 of the plain loop). Precision is what `auto`
resolves to on this CPU; gradients are reduced in fp32 in bf16 mode, as the trainer does (training.md). Prints one
JSON object. Cases run in alternating order over `--rounds` and each figure is the median over its rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

PHASES = ("forward", "backward", "step")
STAGES = (0, 2)
CASE_TIMEOUT_S = 900  # one case's ranks, S-S/16 at the defaults: about a minute


def case_names() -> list[str]:
    return ["plain_2cores", "plain_1core"] + [f"{kind}_zero{z}" for z in STAGES for kind in ("alone", "pair")]


def config_for(variant: str, micro_batch: int, world: int, stage: int, precision: str):
    from workflows.config import TrainConfig

    return TrainConfig.from_dict({
        "name": f"zero-split-{world}x{micro_batch}-zero{stage}",
        "model": {"variant": variant, "channels": 16},
        "optim": {"base_lr": 0.016, "warmup_steps": 5},
        "train": {"steps": 1000, "micro_batch_size": micro_batch, "num_workers": world, "zero_stage": stage,
                  "precision": precision, "log_every": 1000, "checkpoint_every": 0},
    })  # fmt: skip


def rank_main(case: dict) -> None:
    """One rank of one case (a child process): prints, on rank 0, the median seconds of each phase."""
    import torch

    from workflows.training.evaluation import pixels_to_model_input

    rank, world, size = case["rank"], case["world"], case["size"]
    torch.set_num_threads(case["threads"])
    pixels = torch.randint(0, 256, (case["micro_batch"], 1, size, size, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(rank))  # fmt: skip
    config = config_for(case["variant"], case["micro_batch"], world, case["stage"], case["precision"])
    if case["kind"] == "plain":
        from bench.training.plain_step import PlainStep

        step = PlainStep(config, pixels_to_model_input(pixels))
    else:
        step = TrainerCase(config, pixels, case)
    times = []
    for i in range(case["warmup"] + case["steps"]):
        phases = step()
        if i >= case["warmup"]:
            times.append(phases)
    if rank == 0:
        print(json.dumps({name: statistics.median(t[k] for t in times) for k, name in enumerate(PHASES)}))


class TrainerCase:
    """The trainer's `TokenizerState.step` on a fixed batch, its engine's backward and step timed on the instance;
    the rest of the step is its forward phase. The ranks meet at a barrier before each step, outside the clock,
    so that one rank's late start is not counted as the other's wait."""

    def __init__(self, config, pixels, case: dict):
        import torch

        from workflows.runs.spec import WorkerContext
        from workflows.training.plan import plan_for_input, resolve_model_config
        from workflows.training.worker import TokenizerState

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(case["port"]), RANK=str(case["rank"]),
                          WORLD_SIZE=str(case["world"]), LOCAL_RANK=str(case["rank"]))  # fmt: skip
        torch.distributed.init_process_group("gloo", rank=case["rank"], world_size=case["world"])
        plan = plan_for_input(config, resolve_model_config(config), 1, case["size"],
                              train_rows=10 * case["micro_batch"] * case["world"])  # fmt: skip
        torch.manual_seed(0)
        self.state = TokenizerState(plan, WorkerContext(case["rank"], case["world"], None))
        self.batches = iter(lambda: {"pixels": pixels}, None)  # endless
        self.seconds = {"backward": 0.0, "step": 0.0}
        engine = self.state.engine
        engine.backward, engine.step = self.timed("backward", engine.backward), self.timed("step", engine.step)
        self.count = 0

    def timed(self, phase: str, call):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = call(*args, **kwargs)
            self.seconds[phase] += time.perf_counter() - start
            return result

        return wrapper

    def __call__(self) -> tuple[float, float, float]:
        import torch

        torch.distributed.barrier()
        self.seconds = {"backward": 0.0, "step": 0.0}
        start = time.perf_counter()
        self.count += 1
        self.state.step(self.count, self.batches)
        total = time.perf_counter() - start
        return total - self.seconds["backward"] - self.seconds["step"], self.seconds["backward"], self.seconds["step"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(name: str, variant: str, args, precision: str) -> dict[str, float]:
    """Starts the ranks of case `name`, each pinned to its core, and returns rank 0's phases and their total."""
    kind, _, stage = name.partition("_zero")
    world = 2 if kind == "pair" else 1
    whole = name == "plain_2cores"
    cores = sorted(os.sched_getaffinity(0))
    case = {"kind": "plain" if kind.startswith("plain") else kind, "variant": variant, "size": args.size,
            "precision": precision, "stage": int(stage or 0), "world": world, "port": free_port(),
            "micro_batch": args.batch if whole else args.batch // 2, "threads": 2 if whole else 1,
            "warmup": args.warmup, "steps": args.steps}  # fmt: skip
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in range(world)]
    procs = []
    for rank, (out, err) in enumerate(logs):
        pinned = cores[:2] if whole else [cores[rank]]
        code = (f"import os, sys; os.sched_setaffinity(0, {pinned}); sys.path.insert(0, {str(REPO)!r}); "
                f"from bench.training.zero_split import rank_main; rank_main({ {**case, 'rank': rank}!r})")  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=out, stderr=err, text=True))
    # A rank that fails leaves its peer waiting for it in a collective: all are stopped at the first failure, and
    # at CASE_TIMEOUT_S whatever happens.
    deadline = time.monotonic() + CASE_TIMEOUT_S
    while any(p.poll() is None for p in procs) and not any(p.returncode for p in procs) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    failed = next((rank for rank, p in enumerate(procs) if p.returncode), None)  # before the others are stopped
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.kill()
        p.wait()
    outs = [(read_back(out), read_back(err)) for out, err in logs]
    if failed is not None:
        raise RuntimeError(f"case {name} ({variant}): rank {failed} exited {procs[failed].returncode}: "
                           f"{outs[failed][1].strip()[-2000:]}")  # fmt: skip
    if running:
        raise RuntimeError(f"case {name} ({variant}): still running after {CASE_TIMEOUT_S} s, stopped")
    phases = json.loads(outs[0][0].strip().splitlines()[-1])
    return {**{k: round(v, 4) for k, v in phases.items()}, "total": round(sum(phases.values()), 4)}


def read_back(file) -> str:
    file.seek(0)
    text = file.read()
    file.close()
    return text


def derived(cases: dict[str, dict[str, float]]) -> dict:
    """Per stage: what DeepSpeed adds alone, what the peer adds, and the pair's step against the plain loop's."""
    out = {}
    for z in STAGES:
        alone, pair = cases[f"alone_zero{z}"], cases[f"pair_zero{z}"]
        out[f"zero{z}"] = {
            "deepspeed_s": {k: round(alone[k] - cases["plain_1core"][k], 4) for k in (*PHASES, "total")},
            "peer_s": {k: round(pair[k] - alone[k], 4) for k in (*PHASES, "total")},
            "pair_vs_plain_2cores": round(cases["plain_2cores"]["total"] / pair["total"], 3),
        }
    out["pair_zero0_vs_pair_zero2"] = round(cases["pair_zero2"]["total"] / cases["pair_zero0"]["total"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["S-S/16", "T-T/4"],
                        help="model sizes (default: %(default)s: parameter-heavy, then compute-heavy at 64x64)")
    parser.add_argument("--batch", type=int, default=16, help="global batch: half per rank (default %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default %(default)s)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per case (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every case, in alternating order")
    parser.add_argument("--quick", action="store_true", help="N-N/8, batch 4, 2 steps: a smoke run of the script")
    args = parser.parse_args(argv)
    if args.quick:
        args.variants, args.batch, args.steps, args.warmup = ["N-N/8"], 4, 2, 1
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("needs 2 cores: one per rank")

    from bench.harness import environment
    from vitok import ViTok
    from workflows.runtime.precision import resolve_precision

    precision = resolve_precision("auto", use_gpu=False)
    load_before = os.getloadavg()
    report = {
        "benchmark": "a two-worker step split by phase: plain, one rank alone and two ranks, at ZeRO-0 and ZeRO-2",
        **environment(["vitok", "workflows", "bench"]),
        "settings": {"batch": args.batch, "size": args.size, "steps": args.steps, "warmup": args.warmup,
                     "rounds": args.rounds, "precision": precision, "threads_per_rank": 1},  # fmt: skip
        "variants": {},
    }
    for variant in args.variants:
        params = list(ViTok.from_name(variant, channels=16).parameters())
        rounds = []
        for r in range(args.rounds):
            order = case_names() if r % 2 == 0 else case_names()[::-1]
            rounds.append({name: run_case(name, variant, args, precision) for name in order})
        cases = {name: {k: statistics.median(r[name][k] for r in rounds) for k in rounds[0][name]}
                 for name in case_names()}  # fmt: skip
        report["variants"][variant] = {
            "parameters_m": round(sum(p.numel() for p in params) / 1e6, 2), "tensors": len(params),
            "cases_s": cases, **derived(cases),
            "rounds_total_s": [{name: r[name]["total"] for name in case_names()} for r in rounds],
        }  # fmt: skip
    report["load_average_before_after"] = [load_before, os.getloadavg()]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
