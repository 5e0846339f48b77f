"""Work units: the inputs, deduplicated by content, cut into fixed, named groups of one media type.

A unit is the grain of exactly-once: its shard, quarantine records and stats are committed together
(see commit.py), and a rerun skips a unit whose record exists. The id hashes the prep parameters and each
member's URI, content hash and dedup decision, so the same inputs always give the same unit and shard name.

Decisions the driver takes before any decoding travel with each member as `problem`: unreadable (stage
"read"), not media by content (stage "sniff"), or the same bytes as an earlier input (stage "dedupe").
"""

from __future__ import annotations

import dataclasses
import json

from data_prep.fingerprint import Fingerprint
from data_prep.params import PrepParams, stable_hash
from data_prep.sources import InputFile


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    unit_id: str
    media_type: str
    members: tuple[dict, ...]  # {"uri", "size", "version", "sha256", "sniffed", "problem"}

    @property
    def uris(self) -> tuple[str, ...]:
        return tuple(m["uri"] for m in self.members)

    def to_row(self) -> dict:
        return {"unit_id": self.unit_id, "media_type": self.media_type, "members": list(self.members)}

    @classmethod
    def from_row(cls, row: dict) -> WorkUnit:
        return cls(unit_id=row["unit_id"], media_type=row["media_type"], members=tuple(row["members"]))


@dataclasses.dataclass(frozen=True)
class Plan:
    units: list[WorkUnit]
    ignored: int  # candidates selected only by a glob whose content is not media


def plan_units(
    files: list[InputFile], fps: dict[str, Fingerprint], params: PrepParams, known: dict[str, str]
) -> Plan:
    """Cut `files` (sorted by URI) into units; `known` maps content hashes already used to their URI.

    The first input (in URI order) with given bytes is the one used; later ones are quarantined as
    duplicates of it, and so is any input whose bytes an earlier run already used (`known`).
    """
    seen = dict(known)
    by_media: dict[str, list[dict]] = {"image": [], "video": []}
    ignored = 0
    for f in files:
        fp = fps[f.uri]
        problem = None
        if fp.error is not None:
            problem = {"stage": "read", "error_type": fp.error.split(":")[0], "message": fp.error}
        elif fp.sniffed is None:
            if f.named_media is None:
                ignored += 1  # chosen by a broad glob, and not media: not an input at all
                continue
            problem = {"stage": "sniff", "error_type": "UnrecognizedContent",
                       "message": f"content is not an image or video (the name says {f.named_media})"}  # fmt: skip
        elif fp.sha256 in seen:
            problem = {"stage": "dedupe", "error_type": "DuplicateContent",
                       "message": f"same bytes as {seen[fp.sha256]}"}  # fmt: skip
        else:
            seen[fp.sha256] = f.uri
        member = {"uri": f.uri, "size": f.size, "version": f.version, **fp.to_dict(), "problem": problem}
        by_media[fp.sniffed or f.named_media or "image"].append(member)
    key = params.pixel_key()
    units: list[WorkUnit] = []
    for media_type, per_unit in (("image", params.images_per_unit), ("video", params.videos_per_unit)):
        members = by_media[media_type]
        for start in range(0, len(members), per_unit):
            group = tuple(members[start : start + per_unit])
            ident = [json.dumps([m["uri"], m["sha256"], m["problem"] and m["problem"]["stage"]]) for m in group]
            uid = f"{media_type}-{stable_hash(key, media_type, *ident)}"
            units.append(WorkUnit(unit_id=uid, media_type=media_type, members=group))
    return Plan(units=units, ignored=ignored)
