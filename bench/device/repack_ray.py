"""Rewrites a Ray wheel without ray/jars/ray_dist.jar (32 MB of Java workers this check never starts) and
without that file's RECORD line, so pip installs the smaller wheel as a consistent one.

    python bench/device/repack_ray.py WHEEL     # in place
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

DROP = "ray/jars/ray_dist.jar"


def repack(wheel: Path) -> None:
    out = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename == DROP:
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if not line.startswith(DROP + ",")).encode()
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    out.replace(wheel)


if __name__ == "__main__":
    repack(Path(sys.argv[1]))
