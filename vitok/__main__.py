"""`vitok` command line.

    python -m vitok info S-B/16 [--frames T] [--resolution R] [--channels C]
    python -m vitok encode MODEL INPUT LATENTS        image or video -> latents file (.safetensors)
    python -m vitok decode MODEL LATENTS OUTPUT       latents file -> .png/.jpg/... or .mp4
    python -m vitok reconstruct MODEL INPUT OUTPUT    both in one pass

MODEL is anything `ViTok.from_pretrained` accepts (an exported folder, file:// or s3://). Expected failures
(bad input, missing weights, latents from another model) print one line on stderr and exit with status 2.
See docs/usage.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import ViTokConfig
from .flops import model_stats
from .media import DEFAULT_CRF
from .tiling import Tiling

MEDIA_COMMANDS = ("encode", "decode", "reconstruct")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitok", description="ViTok model library tools")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print parameters, GMACs, tokens and E of a named variant as JSON")
    info.add_argument("name", help="variant name, e.g. S-B/16, S-L/16, S-B/4x8")
    info.add_argument("--frames", type=int, default=1, help="input frames T (1 for images)")
    info.add_argument("--resolution", type=int, default=256, help="input height and width in pixels")
    info.add_argument("--channels", type=int, default=16, help="latent channels c")

    encode = commands.add_parser("encode", help="encode an image or a video into a latents file")
    encode.add_argument("model", help="exported model folder, file:// or s3://")
    encode.add_argument("input", help="image (.png .jpg ...) or video (.mp4 .mov .mkv ...)")
    encode.add_argument("latents", help="latents file to write (.safetensors)")
    decode = commands.add_parser("decode", help="decode a latents file into an image or a video")
    decode.add_argument("model", help="the model that encoded the latents")
    decode.add_argument("latents", help="latents file written by `vitok encode`")
    decode.add_argument("output", help="image (.png .jpg ...) or video (.mp4) to write")
    reconstruct = commands.add_parser("reconstruct", help="encode and decode an image or a video in one pass")
    reconstruct.add_argument("model", help="exported model folder, file:// or s3://")
    reconstruct.add_argument("input", help="image or video")
    reconstruct.add_argument("output", help="image (.png .jpg ...) or video (.mp4) to write")
    defaults = Tiling()
    for command in (encode, reconstruct):
        command.add_argument("--tile", type=int, default=defaults.tile,
                             help="spatial tile side in pixels, rounded up to the patch; 0: one tile (default %(default)s)")
        command.add_argument("--overlap", type=int, default=defaults.overlap,
                             help="pixels shared by neighbouring tiles, cross-faded (default: tile / 8)")
        command.add_argument("--chunk", type=int, default=defaults.chunk,
                             help="frames per temporal chunk, rounded up to the tubelet; 0: one chunk (default %(default)s)")
        command.add_argument("--chunk-overlap", type=int, default=defaults.chunk_overlap,
                             help="frames shared by neighbouring chunks, cross-faded (default: chunk / 4)")
    for command in (encode, decode, reconstruct):
        command.add_argument("--device", default="cpu", help="torch device to run the model on (default cpu)")
    for command in (decode, reconstruct):
        command.add_argument("--crf", type=int, default=DEFAULT_CRF,
                             help="H.264 quality of a video output: 0 lossless to 51 (default %(default)s)")
    return parser


def _info(args: argparse.Namespace) -> None:
    config = ViTokConfig.from_name(args.name, channels=args.channels)
    print(json.dumps(model_stats(config, args.frames, args.resolution, args.resolution).to_dict()))


def _media(args: argparse.Namespace) -> None:
    from . import media_commands  # imported here: PIL and PyAV are only needed by these commands

    if args.command == "decode":
        media_commands.decode(args.model, args.latents, args.output, args.device, args.crf)
        return
    tiling = Tiling(args.tile, args.overlap, args.chunk, args.chunk_overlap)
    if args.command == "encode":
        media_commands.encode(args.model, args.input, args.latents, tiling, args.device)
    else:
        media_commands.reconstruct(args.model, args.input, args.output, tiling, args.device, args.crf)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    expected: tuple[type[Exception], ...] = (ValueError, OSError)
    if args.command in MEDIA_COMMANDS:
        import av  # its errors are expected failures too (a corrupt stream, an encoder refusing a size)

        expected += (av.FFmpegError,)
    try:
        if args.command == "info":
            _info(args)
        else:
            _media(args)
    except expected as error:
        message = " ".join(str(error).split())  # one line, whatever the library put in the message
        print(f"vitok: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
