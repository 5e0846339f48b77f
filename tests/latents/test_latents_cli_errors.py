"""Bad input to workflows/cache_latents.py fails at once, before any work (no Ray, no encoding), with one line
on stderr that names the input and the reason, and exit code 2. (Unknown registered models and aliases:
test_latents_references.py, against a real MLflow server.)"""

from __future__ import annotations

import sys

import pytest
import torch

from tests.helpers import own_stderr_lines, run_cli
from vitok import ViTok
from workflows.cache_latents import main

SCRIPT = "workflows/cache_latents.py"


def one_line_error(code: int, err: str) -> str:
    lines = own_stderr_lines(err)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("cache_latents: error: ")
    return lines[0]


def run_main(capsys, *args: str) -> str:
    code = main(list(args))
    return one_line_error(code, capsys.readouterr().err)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Tokenizers that do not fit the 32x32 test shards (1-frame images, 4-frame videos)."""
    root = tmp_path_factory.mktemp("misfits")
    torch.manual_seed(0)
    for name, variant in (("patch12", "N-N/12"), ("tubelet3", "N-N/3x8")):
        ViTok.from_name(variant, channels=4).save_pretrained(root / name)
    return root


def test_shards_without_a_manifest(tmp_path, tiny_tokenizer):
    (tmp_path / "shards").mkdir()
    proc = run_cli(sys.executable, SCRIPT, "--shards", str(tmp_path / "shards"), "--tokenizer", str(tiny_tokenizer),
                   "--output", str(tmp_path / "out"))  # fmt: skip
    line = one_line_error(proc.returncode, proc.stderr)
    assert f"shards {tmp_path / 'shards' / 'manifest.json'}: no manifest" in line
    assert not (tmp_path / "out").exists()


def test_a_patch_size_that_does_not_divide_the_tubelets(capsys, exported, sample_shards, tmp_path):
    line = run_main(capsys, "--shards", str(sample_shards), "--tokenizer", str(exported / "patch12"),
                    "--output", str(tmp_path / "out"))  # fmt: skip
    assert f"tokenizer {exported / 'patch12'}: patch 12 does not divide height 32" in line
    assert "image tubelets (1x32x32)" in line and not (tmp_path / "out").exists()


def test_a_tubelet_size_that_does_not_divide_the_tubelets(capsys, exported, sample_shards, tmp_path):
    line = run_main(capsys, "--shards", str(sample_shards), "--tokenizer", str(exported / "tubelet3"),
                    "--output", str(tmp_path / "out"), "--media-type", "video")  # fmt: skip
    assert "tubelet 3 does not divide frames 4" in line and "video tubelets (4x32x32)" in line


def test_an_unwritable_output(capsys, tiny_tokenizer, sample_shards, tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    line = run_main(capsys, "--shards", str(sample_shards), "--tokenizer", str(tiny_tokenizer),
                    "--output", str(tmp_path / "file" / "latents"))  # fmt: skip
    assert f"output {tmp_path / 'file' / 'latents'}: not writable" in line


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--tokenizer", "hf://org/model"], "tokenizer hf://org/model: unsupported reference"),
    (["--tokenizer", "/no/such/tokenizer"], "tokenizer /no/such/tokenizer: no such folder"),
])  # fmt: skip
def test_bad_options(capsys, tiny_tokenizer, sample_shards, tmp_path, args, message):
    base = {"--shards": str(sample_shards), "--tokenizer": str(tiny_tokenizer), "--output": str(tmp_path / "out")}
    base.update(zip(args[::2], args[1::2]))
    line = run_main(capsys, *[part for pair in base.items() for part in pair])
    assert message in line
