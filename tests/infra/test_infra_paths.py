"""Everything infra/ names exists: entry points, the options they are given, config files, repo paths,
and the image recipe's inputs.

Entry-point commands come from the RayJob/RayCronJob entrypoints and from the `python ...` lines of
infra/README.md. For each: the script (`python workflows/x.py`) or module (`python -m data_prep`) must exist
in the repository (a leading /home/ray/vitok, the image's copy, maps to the repository root); every `--flag`
must be one the entry point defines, found statically as the string constants starting with `--` in its
file and in the project modules it imports (no import of the entry point, so this stays fast); `--config`
values must exist. Any other repository path written in infra/ (`workflows/...yaml`, `infra/...json`, ...)
must exist too.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.infra.manifests import APP_DIR, INFRA, RAY_VERSION, REPO, ray_job_specs

PACKAGES = ("vitok", "data_prep", "workflows")
README = INFRA / "README.md"
REPO_PATH = re.compile(r"(?<![\w/.-])((?:infra|workflows|data_prep|vitok|tests)/[\w./{}-]*\.(?:py|ya?ml|json|sh))")


def _readme_commands() -> list[str]:
    """`python ...` commands in the README's code blocks, line continuations joined."""
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", README.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0]
            match = re.search(r"(?:^|\s|--\s)(python3?\s+(?:-m\s+\S+|\S+\.py)\b.*)", line)
            if match:
                commands.append(match.group(1).strip())
    return commands


def _commands() -> list[tuple[str, str]]:
    out = [(where, " ".join(spec["entrypoint"].split())) for where, spec in ray_job_specs()]
    out += [("infra/README.md", c) for c in _readme_commands()]
    return out


def _repo_file(token: str) -> Path:
    token = token.removeprefix(APP_DIR + "/")
    return REPO / token


def _entry_file(argv: list[str]) -> tuple[Path, list[str]]:
    i = next(i for i, a in enumerate(argv) if re.fullmatch(r"python3?", a))
    if argv[i + 1] == "-m":
        module = argv[i + 2]
        base = REPO / module.replace(".", "/")
        path = base / "__main__.py" if base.is_dir() else base.with_suffix(".py")
        return path, argv[i + 3:]
    return _repo_file(argv[i + 1]), argv[i + 2:]


def _module_file(name: str) -> Path | None:
    if not name.split(".")[0] in PACKAGES:
        return None
    base = REPO / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _known_flags(entry: Path) -> set[str]:
    flags: set[str] = set()
    for path in {entry, *_imported_project_files(entry)}:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("--"):
                flags.add(node.value)
    return flags


def _imported_project_files(path: Path) -> set[Path]:
    files = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        files |= {f for f in map(_module_file, names) if f is not None}
    return files


def test_there_are_commands_to_check():
    where = {w for w, _ in _commands()}
    assert any("RayCronJob" in w for w in where) and "infra/README.md" in where
    entry_names = {_entry_file(shlex.split(c))[0].name for _, c in _commands()}
    assert {"scale_sweep.py", "data_prep_job.py", "__main__.py"} <= entry_names


@pytest.mark.parametrize("where,command", _commands(), ids=lambda x: x[:60] if isinstance(x, str) else x)
def test_entry_point_options_and_configs_exist(where, command):
    argv = shlex.split(command)
    entry, args = _entry_file(argv)
    assert entry.is_file(), f"{where}: entry point {entry.relative_to(REPO)} does not exist"
    known = _known_flags(entry)
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert flag in known, f"{where}: {entry.relative_to(REPO)} has no option {flag}"
            if flag == "--config":
                value = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
                assert _repo_file(value).is_file(), f"{where}: config {value} does not exist"


def test_every_repository_path_infra_mentions_exists():
    texts = [p for p in INFRA.rglob("*") if p.is_file() and p.suffix in {".yaml", ".md", ".sh", ""} or
             p.name.endswith("Dockerfile")]
    missing = []
    for path in texts:
        for ref in REPO_PATH.findall(path.read_text()):
            candidates = [ref.replace("{N}", str(n)).replace("{0,1,2,3}", str(n)) for n in range(4)] \
                if "{" in ref else [ref]
            if not all((REPO / c).exists() for c in candidates):
                missing.append(f"{path.relative_to(REPO)}: {ref}")
    assert not missing, "\n".join(missing)


def test_deepspeed_configs_exist_for_every_zero_stage():
    for stage in range(4):
        config = json.loads((INFRA / "deepspeed" / f"zero_stage{stage}.json").read_text())
        assert config["zero_optimization"]["stage"] == stage


def test_image_recipe():
    text = (INFRA / "docker" / "Dockerfile").read_text()
    base = re.search(r"^ARG RAY_IMAGE=(\S+)", text, flags=re.M).group(1)
    assert base.startswith(f"rayproject/ray:{RAY_VERSION}-py311") and base.endswith("gpu")
    assert re.search(rf"^ARG APP_DIR={re.escape(APP_DIR)}$", text, flags=re.M), "manifests use this path"
    runs = [line for line in text.splitlines() if line.startswith(("RUN", "COPY", "    &&"))]
    i_torch = next(i for i, l in enumerate(runs) if "torch==" in l)
    i_ds = next(i for i, l in enumerate(runs) if "deepspeed==" in l)
    i_project = next(i for i, l in enumerate(runs) if "pip install -e" in l)
    assert i_torch < i_ds < i_project, "torch (CUDA) first, DeepSpeed against it, then the project"
    for source in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, flags=re.M):
        for item in source.split():
            assert (REPO / item).exists(), f"COPY source {item} missing"
    ignore = (INFRA / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "work", "mlflow.db"} <= set(ignore)
