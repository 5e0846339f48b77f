"""Class labels for the inputs: the folder each file is in, or a CSV of path -> label.

`--labels parent-dir` reads ImageNet's layout (`train/n01440764/x.JPEG` -> "n01440764"); `--labels FILE.csv`
(a local path or s3:// URI) has a header row with the columns `path` and `label`, where `path` is the file's
path relative to the input root or its full URI (an absolute path or s3://bucket/key).

A label travels as a name (`label_name`) and an int (`label`). The ints come from the output's mapping,
`labels.json`: names get the next ints in sorted order the first time they appear and keep them forever,
so an incremental run (or any later run into the output) never renumbers a class that shards already hold.
The mapping is extended before any unit runs, so a run killed and rerun extends it exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.sources import InputFile, relative_key
from data_prep.storage import Store

PARENT_DIR = "parent-dir"
LABELS_FILE = "labels.json"


@dataclasses.dataclass(frozen=True)
class LabelSource:
    kind: str  # "parent-dir" or "csv": what the prep parameters record
    csv_location: str | None = None  # the CSV (path or s3:// URI) when kind is "csv"

    def describe(self) -> str:
        return self.kind if self.csv_location is None else f"csv {self.csv_location}"


def parse_labels_option(value: str | None) -> LabelSource | None:
    """`--labels`: None or "" (no labels), "parent-dir", or the location of a CSV."""
    if not value:
        return None
    if value == PARENT_DIR:
        return LabelSource(PARENT_DIR)
    if not value.lower().endswith(".csv"):
        raise DataPrepError(f"--labels {value}: expected '{PARENT_DIR}' or a .csv file (path or s3:// URI)")
    if "://" in value and not s3.is_s3(value):
        raise DataPrepError(f"--labels {value}: unsupported URI scheme (local paths and s3:// only)")
    return LabelSource("csv", value if s3.is_s3(value) else os.path.abspath(value))


def label_names(source: LabelSource, root: str, files: list[InputFile], settings: s3.S3Settings) -> dict[str, str]:
    """URI -> label name for every file that has one (files without a label are left out)."""
    if source.kind == PARENT_DIR:
        found = {}
        for f in files:
            folders = relative_key(root, f.uri).split("/")[:-1]
            if folders:
                found[f.uri] = folders[-1]
        return found
    table = read_label_csv(source.csv_location, settings)
    return {f.uri: table[key] for f in files for key in (f.uri, relative_key(root, f.uri)) if key in table}


def read_label_csv(location: str, settings: s3.S3Settings) -> dict[str, str]:
    """path or URI -> label name, from a CSV with the header columns `path` and `label`."""
    try:
        if s3.is_s3(location):
            bucket, key = s3.split_uri(location)
            data = s3.client(settings).get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            with open(location, "rb") as f:
                data = f.read()
        text = data.decode("utf-8-sig")  # a BOM, as spreadsheet exports write, is not part of the header
    except Exception as e:  # noqa: BLE001 - missing file, S3 errors, bad encoding: all mean "unreadable"
        raise DataPrepError(f"--labels {location}: unreadable ({' '.join(str(e).split())[:300]})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not {"path", "label"} <= set(reader.fieldnames or ()):
        raise DataPrepError(f"--labels {location}: the header row must name the columns 'path' and 'label'")
    table: dict[str, str] = {}
    for line, row in enumerate(reader, start=2):
        path, name = (row["path"] or "").strip(), (row["label"] or "").strip()
        if not path or not name:
            raise DataPrepError(f"--labels {location}: line {line} has an empty path or label")
        if table.get(path, name) != name:
            raise DataPrepError(f"--labels {location}: line {line} gives {path} a second label ({name!r})")
        table[path] = name
    return table


def extend_mapping(store: Store, names: set[str]) -> list[str]:
    """The output's label names in int order after adding `names` not yet in it (written atomically)."""
    known = json.loads(store.read_bytes(LABELS_FILE))["names"] if store.exists(LABELS_FILE) else []
    new = sorted(names - set(known))
    if new:
        known = known + new
        store.write_atomic(LABELS_FILE, json.dumps({"names": known}, indent=1).encode())
    return known
