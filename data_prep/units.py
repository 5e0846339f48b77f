"""Work units: the inputs, deduplicated by content, cut into fixed, named groups of one media type.

A unit is the grain of exactly-once: its shard, quarantine records and stats are committed together
(see commit.py), and a rerun skips a unit whose record exists. The id hashes the prep parameters and each
member's path relative to the input root, content hash and dedup decision, so the same inputs always give
the same unit and shard name, wherever the corpus lies (another folder, another bucket or prefix).

Decisions the driver takes before any decoding travel with each member as `problem`: unreadable (stage
"read"), not media by content (stage "sniff"), no label where the output has labels (stage "label"), or
the same bytes as an earlier input (stage "dedupe"). With labels, each member also carries its `label`
(int) and `label_name`, and the name is part of the unit id: a file whose label changes is redone.
"""

from __future__ import annotations

import dataclasses
import json

from data_prep.fingerprint import Fingerprint
from data_prep.params import PrepParams, stable_hash
from data_prep.sources import InputFile

MISSING_LABEL = {
    "parent-dir": "no label: the file is at the input root, not in a folder to take the label from",
    "csv": "no label: the file is not in the labels CSV",
}


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    unit_id: str
    media_type: str
    # {"uri", "key", "size", "version", "sha256", "sniffed", "problem"[, "label", "label_name"]}
    members: tuple[dict, ...]

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
    # Candidates that turned out not to be inputs: no media extension (none at all, or only a glob chose
    # them) and content that is not media either. {"uri", "reason"}, for the manifest.
    ignored: list[dict]


def plan_units(
    files: list[InputFile],
    fps: dict[str, Fingerprint],
    params: PrepParams,
    known: dict[str, str],
    labels: dict[str, tuple[int, str]] | None = None,
) -> Plan:
    """Cut `files` (sorted by URI) into units; `known` maps content hashes already used to their URI.

    The first input (in URI order) with given bytes is the one used; later ones are quarantined as
    duplicates of it, and so is any input whose bytes an earlier run already used (`known`). `labels`
    (URI -> (label, label_name)) is None when the output has no labels; a file it leaves out is quarantined.
    """
    seen = dict(known)
    by_media: dict[str, list[dict]] = {"image": [], "video": []}
    ignored = []
    for f in files:
        fp = fps[f.uri]
        label = labels.get(f.uri) if labels is not None else None
        problem = None
        if fp.error is not None:
            problem = {"stage": "read", "error_type": fp.error.split(":")[0], "message": fp.error}
        elif fp.sniffed is None:
            if f.named_media is None:  # not media by name nor by content: not an input at all
                ignored.append({"uri": f.uri, "reason": "content is not an image or video"})
                continue
            problem = {"stage": "sniff", "error_type": "UnrecognizedContent",
                       "message": f"content is not an image or video (the name says {f.named_media})"}  # fmt: skip
        elif labels is not None and label is None:
            problem = {"stage": "label", "error_type": "MissingLabel", "message": MISSING_LABEL[params.labels]}
        elif fp.sha256 in seen:
            problem = {"stage": "dedupe", "error_type": "DuplicateContent",
                       "message": f"same bytes as {seen[fp.sha256]}"}  # fmt: skip
        else:
            seen[fp.sha256] = f.uri
        member = {"uri": f.uri, "key": f.key, "size": f.size, "version": f.version, **fp.to_dict(), "problem": problem}
        if labels is not None:
            member["label"], member["label_name"] = label if label is not None else (None, None)
        by_media[fp.sniffed or f.named_media or "image"].append(member)
    key = params.pixel_key()
    units: list[WorkUnit] = []
    for media_type, per_unit in (("image", params.images_per_unit), ("video", params.videos_per_unit)):
        members = by_media[media_type]
        for start in range(0, len(members), per_unit):
            group = tuple(members[start : start + per_unit])
            # Members without labels hash no label, so adding labels to the prep never renames those units.
            ident = [
                json.dumps([m["key"], m["sha256"], m["problem"] and m["problem"]["stage"]]
                           + ([m["label_name"]] if "label_name" in m else []))
                for m in group
            ]  # fmt: skip
            uid = f"{media_type}-{stable_hash(key, media_type, *ident)}"
            units.append(WorkUnit(unit_id=uid, media_type=media_type, members=group))
    return Plan(units=units, ignored=ignored)
