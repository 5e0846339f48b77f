"""CLI: python -m data_prep {run,sample-corpus} ... (see --help). User errors exit 2 with one stderr line."""

from __future__ import annotations

import argparse
import json
import sys

from data_prep.cli import OneLineParser, add_run_arguments, run_kwargs, unwritable
from data_prep.console import configure_console
from data_prep.errors import DataPrepError

VERBOSE_HELP = "show Ray's own logs and the workers' output on the console"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m data_prep", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="prepare tubelet shards from images and videos in a folder or S3",
        description="Writes OUTPUT/manifest.json, quarantine.parquet, images/*.parquet, videos/*.parquet and "
        "units/*.json. Rerunning into the same output skips the work units already committed. A file's media "
        "type comes from its content (magic bytes), not its name; identical files are used once.",
    )
    add_run_arguments(r)
    r.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)

    s = sub.add_parser("sample-corpus", help="build the small sample corpus (skipped when already complete)")
    s.add_argument("--output", required=True, help="folder for the corpus")
    s.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_console(args.verbose)
    # Ray, Ray Data and the media libraries are imported below, where they are needed: a bad command is answered
    # without paying seconds of their imports.
    if args.verbose:  # otherwise Ray starts when the work first needs it, quiet (the first connect decides)
        from data_prep.ray_session import connect_ray

        connect_ray(verbose=True)
    try:
        if args.command == "sample-corpus":
            why = unwritable(args.output)
            if why:  # checked up front: the corpus is built file by file, and would fail on the first write
                raise DataPrepError(f"sample-corpus --output {args.output}: {why}")
            from data_prep.sample_corpus import build_sample_corpus

            result = build_sample_corpus(args.output)
        else:
            from data_prep.pipeline import run

            result = run(args.input, args.output, **run_kwargs(args))
    except DataPrepError as e:
        print(f"data_prep: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
