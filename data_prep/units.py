"""Work units: the listing cut into fixed, named groups of inputs of one media type.

A unit is the grain of exactly-once: its shard, quarantine records and stats are committed together
(see commit.py), and a rerun skips a unit whose record exists. The id hashes the member URIs and the
prep parameters, so the same inputs with the same parameters always give the same unit and shard name.
"""

from __future__ import annotations

import dataclasses

from data_prep.params import PrepParams, stable_hash
from data_prep.sources import InputFile


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    unit_id: str
    media_type: str
    uris: tuple[str, ...]

    def to_row(self) -> dict:
        return {"unit_id": self.unit_id, "media_type": self.media_type, "uris": list(self.uris)}


def make_units(inputs: list[InputFile], params: PrepParams) -> list[WorkUnit]:
    """Cut the (sorted) inputs into units: per media type, consecutive runs of at most N inputs."""
    key = params.pixel_key()
    units: list[WorkUnit] = []
    for media_type, per_unit in (("image", params.images_per_unit), ("video", params.videos_per_unit)):
        uris = [f.uri for f in inputs if f.media_type == media_type]
        for start in range(0, len(uris), per_unit):
            members = tuple(uris[start : start + per_unit])
            uid = f"{media_type}-{stable_hash(key, media_type, *members)}"
            units.append(WorkUnit(unit_id=uid, media_type=media_type, uris=members))
    return units
