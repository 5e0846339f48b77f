"""Data prep's Ray actors import the `data_prep` package (their class is pickled by reference) in every fresh
worker process: it must not pull in torch, about a second of start-up per actor on two cores."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_data_prep_actors_modules_import_no_torch():
    loaded = modules_loaded_by("import data_prep, data_prep.fan_out, data_prep.commit")
    assert "data_prep.fan_out" in loaded
    assert "torch" not in loaded

