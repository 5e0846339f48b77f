"""`vitok` command line: `python -m vitok info S-B/16 [--frames T] [--resolution R] [--channels C]`."""

from __future__ import annotations

import argparse
import json
import sys

from .config import ViTokConfig
from .flops import model_stats


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitok", description="ViTok model library tools")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print parameters, GMACs, tokens and E of a named variant as JSON")
    info.add_argument("name", help="variant name, e.g. S-B/16, S-L/16, S-B/4x8")
    info.add_argument("--frames", type=int, default=1, help="input frames T (1 for images)")
    info.add_argument("--resolution", type=int, default=256, help="input height and width in pixels")
    info.add_argument("--channels", type=int, default=16, help="latent channels c")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = ViTokConfig.from_name(args.name, channels=args.channels)
        stats = model_stats(config, args.frames, args.resolution, args.resolution)
    except ValueError as error:
        print(f"vitok: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(stats.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
