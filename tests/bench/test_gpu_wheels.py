"""bench/device/closure.py, the logic of build_wheels.sh that needs no download: the dependency closure read
from wheels' METADATA (markers, extras, what the GPU machine has, what is left out on purpose) and the size
check against what the device tool carries, on fake wheels."""

from __future__ import annotations

import importlib.metadata
import zipfile

from packaging.requirements import Requirement

from bench.device import closure


def fake_wheel(folder, name, version, requires):
    path = folder / f"{name}-{version}-py3-none-any.whl"
    metadata = "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\n{metadata}")
    return path


def test_missing_follows_markers_extras_and_the_machine(tmp_path):
    fake_wheel(tmp_path, "ray", "2.60.0", [
        "click>=7.0", "jsonschema", 'pandas; extra == "data"', 'tensorboardX>=1.9; extra == "train"',
        'aiohttp_cors; extra == "default"', 'py-spy>=0.4.0; python_version >= "3.12" and extra == "default"'])
    fake_wheel(tmp_path, "deepspeed", "0.19.8", ["hjson", "torch>=2.0.0", 'pywin32; sys_platform == "win32"'])
    fake_wheel(tmp_path, "hjson", "3.1.0", [])
    fake_wheel(tmp_path, "databricks_sdk", "0.1", ["google-auth~=2.0"])
    present = {"click", "pandas", "torch"}
    needed = closure.missing(tmp_path, present)
    names = sorted(Requirement(arg).name.lower() for arg in needed)
    # ray's data and train extras are followed, its default extra (the dashboard) is not; the machine's
    # packages, Windows-only ones, wheels already in the folder and the excluded google-auth stay out.
    assert names == ["jsonschema", "tensorboardx"]


def test_pins_to_this_venv_when_it_satisfies_the_requirement():
    here = importlib.metadata.version("packaging")
    assert closure.pin(Requirement("packaging")) == f"packaging=={here}"
    assert closure.pin(Requirement("packaging<1")) == "packaging<1"
    assert closure.pin(Requirement("not-installed-anywhere>=2")) == "not-installed-anywhere>=2"


def test_size_check_fails_past_the_limit(tmp_path):
    (tmp_path / "a.whl").write_bytes(b"x" * 2**20)
    fits, line = closure.size_report(tmp_path, repo_bytes=2**20, limit_mib=2)
    assert fits and "2.0 MiB (limit 2 MiB)" in line
    fits, line = closure.size_report(tmp_path, repo_bytes=2**20 + 1, limit_mib=2)
    assert not fits
