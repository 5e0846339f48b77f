"""Fanning tubelet units out over the kit's Ray Data actors (data_prep/exactly_once/fan_out.py).

One actor per CPU, each decoding with single-threaded decoders (media/decode_video.py), so the node's cores are
used once each and never oversubscribed.
"""

from __future__ import annotations

from data_prep.commit import commit_tubelet_unit
from data_prep.exactly_once.fan_out import Progress, UnitWorker, fan_out
from data_prep.params import PrepParams
from data_prep.ray_session import connect_ray, usable_cpus
from data_prep.s3 import S3Settings
from data_prep.storage import open_store
from data_prep.units import WorkUnit

PROGRESS = Progress(noun="units", counts=("inputs", "tubelets"))


def prepare_units(output_root: str, units: list[WorkUnit], params: PrepParams, settings: S3Settings) -> None:
    connect_ray()  # before usable_cpus, which asks the cluster; a no-op when a workflow has already connected
    # Longest first (video units decode far more pixels than image units), so the run does not end with
    # one worker busy on a long unit while the others idle.
    ordered = sorted(units, key=lambda u: u.media_type != "video")
    kwargs = {"output_root": output_root, "params": params, "settings": settings}
    fan_out([u.to_row() for u in ordered], TubeletWorker, kwargs, PROGRESS, actors=usable_cpus(), num_cpus=1)


class TubeletWorker(UnitWorker):
    """Ray Data actor: processes and commits one unit per call and returns its counts."""

    def __init__(self, output_root: str, params: PrepParams, settings: S3Settings):
        self.store = open_store(output_root, settings)
        self.params = params
        self.settings = settings

    def run(self, row: dict) -> dict[str, int]:
        unit = WorkUnit.from_row(row)
        stats = commit_tubelet_unit(self.store, unit, self.params, self.settings)["stats"]
        return {"inputs": stats["inputs_seen"], "tubelets": stats["tubelets"]}
