"""Names depend on the inputs, not on where they lie: the same corpus in two folders gives the same unit ids,
shard names, sample ids and random crops; an output of the older, location-bound naming is refused in one
line (no Ray: the planning and one unit's processing run in this process)."""

import io
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from data_prep import DataPrepError, run
from data_prep.exactly_once.commit import shard_path
from data_prep.fingerprint import fingerprint_all
from data_prep.params import PREP_VERSION, WHY_REBUILD, PrepParams
from data_prep.process import process_unit
from data_prep.s3 import S3Settings
from data_prep.sources import Selection, list_candidates
from data_prep.units import plan_units

SETTINGS = S3Settings()
PARAMS = PrepParams(size=16, crop="random", images_per_unit=2)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (24, 40, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _corpus(root):
    for i, rel in enumerate(["cats/a.png", "cats/b.png", "dogs/c.png", "dogs/deep/d.png", "e.png"]):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_png(i))
    (root / "dogs" / "copy_of_a.png").write_bytes(_png(0))  # a duplicate: the dedup decision is named too


def _names(root):
    files, _ = list_candidates(str(root), Selection(), SETTINGS)
    plan = plan_units(files, fingerprint_all(files, SETTINGS, {}), PARAMS, known={})
    out = process_unit(plan.units[0], PARAMS, SETTINGS)
    return plan, [r["sample_id"] for r in out.rows], np.stack(out.pixels)


def test_the_same_corpus_in_another_folder_gets_the_same_names(tmp_path):
    _corpus(tmp_path / "here" / "corpus")
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    subprocess.run(["cp", "-a", str(tmp_path / "here" / "corpus"), str(tmp_path / "elsewhere" / "deeper")], check=True)
    plan_a, samples_a, pixels_a = _names(tmp_path / "here" / "corpus")
    plan_b, samples_b, pixels_b = _names(tmp_path / "elsewhere" / "deeper" / "corpus")
    ids = [u.unit_id for u in plan_a.units]
    assert len(ids) == 3 and ids == [u.unit_id for u in plan_b.units]
    assert [shard_path(u.media_type, u.unit_id) for u in plan_a.units] == [
        shard_path(u.media_type, u.unit_id) for u in plan_b.units
    ]
    assert samples_a == samples_b and len(samples_a) == 2
    np.testing.assert_array_equal(pixels_a, pixels_b)  # the random crops are seeded by the relative path
    assert plan_a.units[0].uris != plan_b.units[0].uris  # the members are still read where they lie


def test_an_output_of_an_older_data_prep_says_why_it_must_be_rebuilt(tmp_path):
    _corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    out.mkdir()
    old = {**PrepParams().to_dict(), "prep_version": 2}
    (out / "params.json").write_text(json.dumps(old, indent=1))
    with pytest.raises(DataPrepError) as err:
        run(str(tmp_path / "corpus"), str(out))
    message = str(err.value)
    assert "\n" not in message
    assert f"output {out}: prepared by data prep version 2, this is version {PREP_VERSION} ({WHY_REBUILD})" in message
    assert message.endswith("prepare into a new output")
