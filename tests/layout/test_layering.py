"""The layering rules of ARCHITECTURE.md, read off the source with `ast` (no imports run):

- vitok/ is pure PyTorch: no ray, mlflow, deepspeed or boto3;
- data_prep/ never imports workflows/;
- the workflows/ root holds only the entry scripts, `__init__.py` and the shared config and tracking modules;
- no workflows subpackage imports an entry script, and a training run (workflows/training/) imports no sweep code;
- the run engine (workflows/runs/) imports no sweep or report code, nor any kind of run that it drives;
- only workflows/tracking.py imports mlflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

ENTRY_SCRIPTS = {"scale_sweep", "train", "data_prep_job", "demo", "cache_latents", "train_generator"}
SHARED_MODULES = {"__init__", "config", "tracking"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_of(folder: str) -> dict[Path, set[str]]:
    return {path: imported_modules(path) for path in sorted((REPO / folder).rglob("*.py"))}


def offenders(folder: str, forbidden) -> list[str]:
    return [f"{path.relative_to(REPO)}: {name}" for path, names in imports_of(folder).items()
            for name in sorted(names) if forbidden(name)]


def test_vitok_is_pure_pytorch():
    heavy = ("ray", "mlflow", "deepspeed", "boto3", "botocore", "workflows", "data_prep")
    assert offenders("vitok", lambda n: n.split(".")[0] in heavy) == []


def test_data_prep_never_imports_workflows():
    assert offenders("data_prep", lambda n: n.split(".")[0] == "workflows") == []


def test_workflows_root_holds_entry_scripts_and_shared_modules_only():
    root = {p.stem for p in (REPO / "workflows").glob("*.py")}
    assert root - ENTRY_SCRIPTS - SHARED_MODULES == set()
    assert ENTRY_SCRIPTS <= root


def test_no_subpackage_imports_an_entry_script():
    entries = {f"workflows.{name}" for name in ENTRY_SCRIPTS}
    for package in ("training", "sweeps", "reports", "runtime", "latents", "generation", "runs"):
        assert offenders(f"workflows/{package}", lambda n: n in entries or n.rsplit(".", 1)[0] in entries) == []


def test_a_training_run_imports_no_sweep_code():
    assert offenders("workflows/training", lambda n: n.startswith(("workflows.sweeps", "workflows.reports"))) == []


def test_the_run_engine_imports_no_sweep_report_or_kind_of_run():
    kinds = ("workflows.sweeps", "workflows.reports", "workflows.training", "workflows.generation")
    assert offenders("workflows/runs", lambda n: n.startswith(kinds)) == []


def test_only_the_tracking_module_imports_mlflow():
    """Every MLflow call goes through workflows/tracking.py (ARCHITECTURE.md): the rest of the code, benchmarks
    included, holds a client only as a handle it passes back to that module's functions."""
    tracking = REPO / "workflows" / "tracking.py"
    found = [entry for folder in ("vitok", "data_prep", "workflows", "bench", "infra")
             for entry in offenders(folder, lambda n: n.split(".")[0] == "mlflow")
             if not entry.startswith(str(tracking.relative_to(REPO)) + ":")]  # fmt: skip
    assert found == []
