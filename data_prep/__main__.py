"""CLI: python -m data_prep {run,sample-corpus} ... (see --help). User errors exit 2 with one stderr line."""

from __future__ import annotations

import argparse
import json
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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Writes OUTPUT/manifest.json, quarantine.parquet, images/*.parquet, videos/*.parquet and "
        "units/*.json. Rerunning into the same output skips the work units already committed.",
    )
    r.add_argument("--input", required=True, help="folder of images (jpg/png/webp/...) and videos (mp4/webm/...)")
    r.add_argument("--output", required=True, help="output folder (created if missing)")
    r.add_argument("--frames", type=int, default=DEFAULTS.frames, help="frames T per video clip")
    r.add_argument("--size", type=int, default=DEFAULTS.size, help="output side S (short side resize + centre crop)")
    r.add_argument("--fps", type=float, default=DEFAULTS.fps, help="target clip frame rate (frames are sampled)")
    r.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction, help="share of files for val")
    r.add_argument("--max-clips", type=int, default=DEFAULTS.max_clips, help="max clips per video")
    r.add_argument("--images-per-unit", type=int, default=DEFAULTS.images_per_unit, help="images per work unit")
    r.add_argument("--videos-per-unit", type=int, default=DEFAULTS.videos_per_unit, help="videos per work unit")

    s = sub.add_parser("sample-corpus", help="build the small sample corpus (skipped when already complete)")
    s.add_argument("--output", required=True, help="folder for the corpus")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
