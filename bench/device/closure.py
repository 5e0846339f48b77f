"""Which wheels the GPU check must carry, and whether they fit: the helper of bench/device/build_wheels.sh.

    python bench/device/closure.py missing DIR   # requirements of DIR's wheels that neither DIR nor the GPU
                                                 # machine has, one pip argument a line (pinned to this venv's
                                                 # version where it satisfies the requirement)
    python bench/device/closure.py size DIR      # DIR plus the repository's tracked files against the 64 MiB
                                                 # the device tool carries; exit 1 past LIMIT_MIB

The closure is read from each wheel's METADATA (Requires-Dist), its markers evaluated for the GPU machine
(CPython 3.12, Linux x86-64), with only the extras in EXTRAS followed (the dashboard, Ray's `default` extra, is
never started: data_prep.ray_session passes include_dashboard=False) and the requirements in EXCLUDE left out.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The GPU machine's Python and platform, for Requires-Dist markers.
TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}  # fmt: skip
# Extras the check uses: Ray Data reads the shards, Ray Train runs the workers.
EXTRAS = {"ray": {"data", "train"}}
# Requirements left behind although a carried wheel lists them, each with why the check never imports it.
EXCLUDE = {
    # databricks-sdk -> google-auth -> cryptography (4.5 MB): MLflow only probes for the `databricks` package
    # (importlib.util.find_spec("databricks.agents")); Databricks authentication is never used.
    "google-auth": "databricks-sdk's authentication, for Databricks workspaces only",
}
LIMIT_MIB = 60  # under the device tool's 64 MiB, leaving room for what the repository gains meanwhile


def machine_packages(path: Path = HERE / "gpu_machine_packages.txt") -> set[str]:
    """Normalised names of the packages the GPU machine's image already has."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return {canonicalize_name(line) for line in lines if line and not line.startswith("#")}


def wheels(folder: Path) -> dict[str, Path]:
    """The wheels in `folder` by normalised project name."""
    return {canonicalize_name(parse_wheel_filename(w.name)[0]): w for w in sorted(folder.glob("*.whl"))}


def requires(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        text = z.read(name).decode()
    lines = text.splitlines()
    return [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]


def needed(req: Requirement, extras: set[str]) -> bool:
    """Whether `req` applies on the GPU machine with the parent's `extras` chosen."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**TARGET, "extra": extra}) for extra in extras or {""})


def missing(folder: Path, present: set[str]) -> list[str]:
    """pip arguments for the requirements that neither `folder`'s wheels nor the machine (`present`) cover."""
    have = wheels(folder)
    out: dict[str, str] = {}
    for name, wheel in have.items():
        extras = EXTRAS.get(name, set())
        for req in requires(wheel):
            dep = canonicalize_name(req.name)
            if dep in have or dep in present or dep in out or dep in EXCLUDE or not needed(req, extras):
                continue
            out[dep] = pin(req)
    return sorted(out.values())


def pin(req: Requirement) -> str:
    """`name==version` of this venv when that version satisfies `req` (the versions the tests ran), else `req`'s
    own specifier, for pip to pick the newest that fits."""
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version is not None and req.specifier.contains(version, prereleases=True):
        return f"{req.name}=={version}"
    return f"{req.name}{req.specifier}"


def tracked_bytes() -> int:
    """Bytes of the repository's tracked files: what travels with the wheels."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return sum((REPO / n).stat().st_size for n in names.decode().split("\0") if n and (REPO / n).is_file())


def size_report(folder: Path, repo_bytes: int, limit_mib: float = LIMIT_MIB) -> tuple[bool, str]:
    """(fits, one line) for `folder`'s files plus `repo_bytes` against `limit_mib`."""
    wheel_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    total = (wheel_bytes + repo_bytes) / 2**20
    line = (f"{folder}: {wheel_bytes / 2**20:.1f} MiB of wheels + {repo_bytes / 2**20:.1f} MiB of tracked files = "
            f"{total:.1f} MiB (limit {limit_mib} MiB)")  # fmt: skip
    return total <= limit_mib, line


def main(argv: list[str]) -> int:
    command, folder = argv[0], Path(argv[1])
    if command == "missing":
        for arg in missing(folder, machine_packages()):
            print(arg)
        return 0
    fits, line = size_report(folder, tracked_bytes())
    print(line if fits else f"error: too big to carry: {line}")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
