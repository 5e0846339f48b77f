"""What the command lines share: the `run` options of `python -m data_prep run` and the scheduled job
(workflows/data_prep_job.py), the parser every entry point uses (a bad flag is one line on stderr), and the
check that a local output can be written, made before any work."""

from __future__ import annotations

import argparse
import os

from data_prep.params import CROPS, PrepParams

DEFAULTS = PrepParams()


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one stderr line (exit 2), as every other bad input: argparse's own prints
    the whole usage first, which buries the reason in a screen of options."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def unwritable(location: str) -> str | None:
    """Why the local folder `location` could not be created or written into; None when it can, and for URIs
    (s3:// and the like are checked by whoever opens them). Decided without creating anything, so a rejected
    command leaves nothing behind."""
    if "://" in location:
        return None
    path = os.path.abspath(os.path.expanduser(location))
    if os.path.exists(path) and not os.path.isdir(path):
        return "not a folder"
    existing = path
    while not os.path.exists(existing):  # the nearest existing ancestor is where the folder would be made
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"not writable ({existing} is a file)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"not writable (no write permission on {existing})"
    return None


def add_run_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("--input", required=True, help="folder (recursive) or s3://bucket/prefix of images and videos")
    r.add_argument("--output", required=True, help="output folder (created if missing) or s3://bucket/prefix")
    for flag, kind, help_text in (
        ("--frames", int, "frames T per video clip"),
        ("--size", int, "output side S (short side resized to S, then an S x S crop)"),
        ("--fps", float, "target clip frame rate (source frames are sampled, never interpolated)"),
        ("--max-clips", int, "max clips per video"),
        ("--clip-stride", int, "source frames between clip starts; 0: back to back"),
        ("--val-fraction", float, "share of source files (by hash of their relative path) for the val split"),
        ("--images-per-unit", int, "images per work unit (the grain of resume; one shard each)"),
        ("--videos-per-unit", int, "videos per work unit"),
        ("--max-image-pixels", int, "decompression-bomb limit: larger images are quarantined"),
    ):
        default = getattr(DEFAULTS, flag[2:].replace("-", "_"))
        r.add_argument(flag, type=kind, default=default, help=f"{help_text} (default: {default})")
    r.add_argument("--crop", choices=CROPS, default=DEFAULTS.crop,
                   help="square crop after the resize: centre, or a random position seeded per input "
                   f"(reruns give the same crop) (default: {DEFAULTS.crop})")  # fmt: skip
    r.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="only files whose path relative to the input matches (repeatable; fnmatch, * spans /); "
                   "default: files with an image or video extension")  # fmt: skip
    r.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="drop files whose relative path matches (repeatable; wins over --include)")  # fmt: skip
    r.add_argument("--labels", default=None, metavar="parent-dir|FILE.csv",
                   help="give every input a class: 'parent-dir' takes the folder it is in (ImageNet's "
                   "train/n01440764/x.JPEG), FILE.csv (path or s3:// URI, columns path,label) maps each path "
                   "(relative to --input, or a full URI) to one; shards gain the columns label (int) and "
                   "label_name, the manifest the mapping, and inputs without a label are quarantined")  # fmt: skip
    r.add_argument("--incremental", action="store_true",
                   help="keep the existing output's units and add only inputs none of them holds (new shards "
                   "appended); without it the output is made to match today's whole listing")  # fmt: skip
    r.add_argument("--s3-endpoint-url", default=None,
                   help="S3-compatible endpoint (default: boto3's own resolution, e.g. AWS_ENDPOINT_URL); "
                   "credentials always come from the AWS default chain")  # fmt: skip
    r.add_argument("--s3-region", default=None, help="S3 region (default: AWS_REGION / AWS config)")


def run_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments of data_prep.run() for parsed `run` options."""
    names = ("frames", "size", "fps", "max_clips", "clip_stride", "crop", "val_fraction", "images_per_unit",
             "videos_per_unit", "max_image_pixels", "incremental", "labels", "s3_endpoint_url",
             "s3_region")  # fmt: skip
    kwargs = {n: getattr(args, n) for n in names}
    return {**kwargs, "include": tuple(args.include), "exclude": tuple(args.exclude)}
