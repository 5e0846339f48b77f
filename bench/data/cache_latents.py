"""Latent-cache benchmark: prints one JSON object with the figures below, measured side by side in one run.

- the Ray Data job (workflows.latents.pipeline.cache_latents: tokenizer actors, atomic commits, manifest and
  stats; Ray started beforehand and not counted) versus a plain loop over the same tubelet shards with the
  same model on the same cores (one process, torch on all of them: read each shard, encode it in the same
  batches and precision, write its latent shard; no Ray, no checksums, no records): latents/s and their
  ratio (goals: >= 0.85 on the corpus, >= 0.95 on the x10 corpus, where Ray's start-up is amortised); the
  plain loop's clock starts once its model is loaded (`load_seconds`, reported beside it);
- peak RSS of the whole process tree (driver, Ray's processes and the actors) for the corpus and for the
  same corpus x10 (goal: ratio <= 1.2).

The corpus is the bundled sample corpus (copies with unique bytes, as bench/data/prep_throughput.py makes them),
prepared by data prep at 64x64 with 8-frame video clips; the tokenizer is a seeded `--variant` export (default
S-B/16, c = 16: the paper's encoder, so the encoder's compute, not Ray, is what is measured). Each
measurement runs in a fresh child process pinned to the same cores. Absolute rates are not comparable
between runs on a shared machine; the ratios are measured in one run.

    .venv/bin/python bench/data/cache_latents.py [--variant S-B/16] [--channels 16] [--copies 1] [--scale 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)  # run as a script: make the repository importable

from bench.harness import environment, measure_child  # noqa: E402
from bench.data.prep_throughput import build_corpus  # noqa: E402

PREP = ["--frames", "8", "--size", "64", "--fps", "8", "--images-per-unit", "64", "--videos-per-unit", "8"]


def child_plain(shards: str, tokenizer: str, output: str, batch_size: int, cpus: int) -> dict:
    import pyarrow.parquet as pq
    import torch

    from data_prep.exactly_once.tensor_columns import tensor_numpy
    from vitok import ViTok
    from workflows.latents.encode import LatentEncoder
    from workflows.latents.schema import latent_table, to_storage
    from workflows.runtime.precision import resolve_precision

    torch.set_num_threads(cpus)
    precision = resolve_precision("auto", use_gpu=False)
    loading = time.perf_counter()
    encoder = LatentEncoder(ViTok.from_pretrained(tokenizer), precision, batch_size, torch.device("cpu"))
    load_seconds = time.perf_counter() - loading
    shards_listed = json.load(open(os.path.join(shards, "manifest.json")))["shards"]
    os.makedirs(output, exist_ok=True)
    start = time.perf_counter()
    latents = 0
    for k, shard in enumerate(shards_listed):
        source = pq.read_table(os.path.join(shards, shard["path"]))
        mean, _ = encoder.moments(tensor_numpy(source, "pixels"))
        pq.write_table(latent_table(source, to_storage(mean, "float16"), None), os.path.join(output, f"{k}.parquet"),
                       compression="zstd")  # fmt: skip
        latents += source.num_rows
    return {"seconds": time.perf_counter() - start, "load_seconds": load_seconds, "latents": latents,
            "precision": precision}  # fmt: skip


def child_pipeline(shards: str, tokenizer: str, output: str, batch_size: int, cpus: int) -> dict:
    import ray

    from workflows.latents.params import CacheOptions
    from workflows.latents.pipeline import cache_latents

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="WARNING")  # never a running cluster
    started = time.perf_counter()
    summary = cache_latents(shards, tokenizer, output, CacheOptions(batch_size=batch_size))
    seconds = time.perf_counter() - started
    ray.shutdown()
    return {"seconds": seconds, "ray_init_seconds": started - t0, "latents": summary["latents_run"],
            "shards": summary["units_run"], "precision": summary["precision"],
            "encode_seconds_in_actors": summary["encode_seconds"]}  # fmt: skip


def measure(args: list[str], cores: list[int]) -> dict:
    """`measure_child` of this script, with the latents' rate."""
    result = measure_child(__file__, args, cores)
    result["latents_per_s"] = round(result["latents"] / result["seconds"], 2)
    return result


def prepare(corpus: str, shards: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "data_prep", "run", "--input", corpus, "--output", shards, *PREP],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"data prep of {corpus} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        os.sched_setaffinity(0, json.loads(sys.argv[2]))
        mode, shards, tokenizer, output, batch_size = sys.argv[3:]
        child = child_plain if mode == "plain" else child_pipeline
        print(json.dumps(child(shards, tokenizer, output, int(batch_size), len(os.sched_getaffinity(0)))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="S-B/16", help="tokenizer variant (a seeded random export)")
    p.add_argument("--channels", type=int, default=16, help="latent channels c")
    p.add_argument("--batch-size", type=int, default=32, help="tubelets per forward, in both loops")
    p.add_argument("--copies", type=int, default=1, help="copies of the sample corpus in the base corpus")
    p.add_argument("--scale", type=int, default=10, help="the large corpus is this many times the base one")
    args = p.parse_args()
    cores = sorted(os.sched_getaffinity(0))[:2]
    import torch

    from data_prep import build_sample_corpus
    from vitok import ViTok

    work = tempfile.mkdtemp(prefix="bench-cache-latents-")
    try:
        tokenizer = os.path.join(work, "tokenizer")
        torch.manual_seed(0)
        ViTok.from_name(args.variant, channels=args.channels).save_pretrained(tokenizer)
        sample = build_sample_corpus(os.path.join(work, "sample"))["path"]
        base = build_corpus(sample, os.path.join(work, "base"), args.copies)
        base_prep = prepare(os.path.join(work, "base"), os.path.join(work, "shards"))
        shards, batch = os.path.join(work, "shards"), str(args.batch_size)
        plain = measure(["plain", shards, tokenizer, os.path.join(work, "plain"), batch], cores)
        pipe = measure(["pipeline", shards, tokenizer, os.path.join(work, "latents"), batch], cores)
        large = build_corpus(sample, os.path.join(work, "large"), args.copies * args.scale)
        large_prep = prepare(os.path.join(work, "large"), os.path.join(work, "shards_large"))
        shards_large = os.path.join(work, "shards_large")
        plain_large = measure(["plain", shards_large, tokenizer, os.path.join(work, "plain_large"), batch], cores)
        pipe_large = measure(["pipeline", shards_large, tokenizer, os.path.join(work, "latents_large"), batch], cores)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        **environment(["workflows/latents", "bench", "vitok"]),
        "tokenizer": {"variant": args.variant, "channels": args.channels, "batch_size": args.batch_size},
        "tubelets": {"prep": " ".join(PREP), "corpus": {**base, "tubelets": base_prep["tubelets"]},
                     "corpus_large": {**large, "tubelets": large_prep["tubelets"]}},  # fmt: skip
        "plain_loop": plain,
        "pipeline": pipe,
        "plain_loop_large": plain_large,
        "pipeline_large": pipe_large,
        "ratio_pipeline_vs_plain_loop": round(pipe["latents_per_s"] / plain["latents_per_s"], 3),
        "ratio_pipeline_vs_plain_loop_large": round(pipe_large["latents_per_s"] / plain_large["latents_per_s"], 3),
        "peak_rss_ratio_large_vs_base": round(pipe_large["peak_rss_mb"] / pipe["peak_rss_mb"], 3),
        "goals": {"ratio_pipeline_vs_plain_loop": ">= 0.85", "ratio_pipeline_vs_plain_loop_large": ">= 0.95",
                  "peak_rss_ratio_large_vs_base": "<= 1.2"},  # fmt: skip
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
