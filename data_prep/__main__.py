"""CLI: python -m data_prep {run,sample-corpus} ... (see --help). User errors exit 2 with one stderr line."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from data_prep.errors import DataPrepError
from data_prep.params import PrepParams

DEFAULTS = PrepParams()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="prepare tubelet shards from a folder of images and videos",
        description="Writes OUTPUT/manifest.json, quarantine.parquet, images/*.parquet, videos/*.parquet and "
        "units/*.json. Rerunning into the same output skips the work units already committed.",
    )
    r.add_argument("--input", required=True, help="folder of images (jpg/png/webp/...) and videos (mp4/webm/...)")
    r.add_argument("--output", required=True, help="output folder (created if missing)")
    for flag, kind, help_text in (
        ("--frames", int, "frames T per video clip"),
        ("--size", int, "output side S (short side resized to S, then centre crop S x S)"),
        ("--fps", float, "target clip frame rate (source frames are sampled, never interpolated)"),
        ("--val-fraction", float, "share of source files (by hash of their path) for the val split"),
        ("--max-clips", int, "max non-overlapping clips per video"),
        ("--images-per-unit", int, "images per work unit (the grain of resume; one shard each)"),
        ("--videos-per-unit", int, "videos per work unit"),
    ):
        default = getattr(DEFAULTS, flag[2:].replace("-", "_"))
        r.add_argument(flag, type=kind, default=default, help=f"{help_text} (default: {default})")

    s = sub.add_parser("sample-corpus", help="build the small sample corpus (skipped when already complete)")
    s.add_argument("--output", required=True, help="folder for the corpus")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        if args.command == "sample-corpus":
            from data_prep.sample_corpus import build_sample_corpus

            result = build_sample_corpus(args.output)
        else:
            from data_prep.pipeline import run

            result = run(
                args.input,
                args.output,
                frames=args.frames,
                size=args.size,
                fps=args.fps,
                val_fraction=args.val_fraction,
                max_clips=args.max_clips,
                images_per_unit=args.images_per_unit,
                videos_per_unit=args.videos_per_unit,
            )
    except DataPrepError as e:
        print(f"data_prep: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
