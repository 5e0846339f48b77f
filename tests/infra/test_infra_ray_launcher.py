"""infra/ray/cluster.yaml against the JSON schema Ray ships (ray/autoscaler/ray-schema.json), plus the checks
`ray up` adds (ray.autoscaler._private.util.validate_config), plus what this project needs of it; and the
runtime env file against Ray's RuntimeEnv validation.

jsonschema comes with Ray itself (ray's own requirements list it), so no extra test dependency is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray
import yaml

from tests.infra.manifests import INFRA, RAY_VERSION, REPO

CLUSTER = INFRA / "ray" / "cluster.yaml"
RUNTIME_ENV = INFRA / "ray" / "runtime_env.yaml"
SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"


def _config() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def test_launcher_config_matches_rays_json_schema():
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(_config()), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_launcher_config_passes_rays_own_validation():
    from ray.autoscaler._private.util import validate_config

    validate_config(_config())


def test_schema_check_is_not_vacuous():
    schema = json.loads(SCHEMA.read_text())
    bad = _config()
    bad["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "4"   # must be an integer
    bad["setup_comands"] = []                                              # typo
    messages = " ".join(e.message for e in jsonschema.Draft7Validator(schema).iter_errors(bad))
    assert "'4' is not of type 'integer'" in messages and "setup_comands" in messages


def test_head_and_gpu_workers():
    c = _config()
    assert c["provider"]["type"] == "aws"
    types = c["available_node_types"]
    assert c["head_node_type"] in types
    gpu = [n for n, t in types.items() if t["resources"].get("GPU", 0) > 0]
    assert gpu and all(types[n]["max_workers"] >= 1 for n in gpu)
    assert types[c["head_node_type"]]["resources"].get("GPU", 0) == 0
    assert c["max_workers"] >= max(t.get("max_workers", 0) for t in types.values())


def test_setup_installs_cuda_torch_first_then_the_project():
    cmds = _config()["setup_commands"]
    joined = "\n".join(cmds)
    i_torch = next(i for i, c in enumerate(cmds) if "torch==" in c)
    i_ds = next(i for i, c in enumerate(cmds) if "deepspeed==" in c)
    i_proj = next(i for i, c in enumerate(cmds) if "-e ~/vitok" in c)
    assert i_torch < i_ds < i_proj
    assert "torch==2.13.0" in joined and "deepspeed==0.19.8" in joined and "--no-build-isolation" in cmds[i_ds]
    assert f"ray[data,train,default]=={RAY_VERSION}" in joined, "cluster Ray must match the laptop's"
    assert "download.pytorch.org/whl/cpu" not in joined, "GPU nodes need the CUDA wheel"


def test_file_mounts_ship_this_repository():
    c = _config()
    assert c["file_mounts"]["~/vitok"] == "."
    assert ".gitignore" in c["rsync_filter"], ".venv and work/ must not be synced to the cluster"
    assert (REPO / ".gitignore").exists()


def test_ray_starts_with_token_auth_and_a_private_dashboard():
    c = _config()
    head = " ".join(c["head_start_ray_commands"])
    worker = " ".join(c["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in worker
    assert "--head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "--dashboard-host=127.0.0.1" in head, "reach the dashboard through `ray dashboard` (SSH)"
    assert "$RAY_HEAD_IP:6379" in worker


def test_runtime_env_is_valid_and_ships_code_not_dependencies():
    from ray.runtime_env import RuntimeEnv

    env = yaml.safe_load(RUNTIME_ENV.read_text())
    RuntimeEnv(working_dir=str(REPO), **env)   # what `--working-dir . --runtime-env FILE` produces
    assert "working_dir" not in env, "the working dir comes from --working-dir on the command line"
    assert not {"pip", "conda", "uv"} & set(env), "dependencies come from the image, not per job"
    assert {".venv", "work", ".git"} <= set(env["excludes"])


def test_working_dir_package_holds_the_code_and_nothing_local(tmp_path):
    """What `--working-dir . --runtime-env infra/ray/runtime_env.yaml` uploads, built with Ray's own packager."""
    from zipfile import ZipFile

    from ray._private.runtime_env.packaging import create_package

    env = yaml.safe_load(RUNTIME_ENV.read_text())
    target = tmp_path / "pkg.zip"
    create_package(str(REPO), target, include_gitignore=True, excludes=env["excludes"])
    names = ZipFile(target).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {"workflows", "data_prep", "vitok", "infra", "pyproject.toml"} <= tops
    assert "workflows/scale_sweep.py" in names and "workflows/configs/smoke.yaml" in names
    assert not tops & {".venv", "work", ".git", "mlruns", "mlartifacts", "mlflow.db", "ray_results"}, tops
    assert not any("__pycache__" in n for n in names)
    assert target.stat().st_size < 100 * 2**20, "working dir package is suspiciously large"
