"""Typed reads of a JSON document (a manifest) with one-line errors that name the file and what is wrong.

`Fields(doc, where, error)` wraps one JSON object; `where` prefixes every message ("out/manifest.json:
shards[3]") and `error` is the pipeline's user-facing exception type, so a missing key reads
"out/manifest.json: shards[3]: missing 'sha256'" and a wrong type "...: 'rows' is 'x', expected an integer".
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
         list: "a list"}  # fmt: skip


class Fields:
    def __init__(self, doc: Any, where: str, error: type[Exception]):
        if not isinstance(doc, dict):
            raise error(f"{where}: expected an object, got {type(doc).__name__}")
        self.doc, self.where, self.error = doc, where, error

    def has(self, key: str) -> bool:
        return key in self.doc

    def get(self, key: str, kind: type) -> Any:
        """The value at `key`, of `kind` (int, float, str, bool, dict or list); an int is taken as a float."""
        if key not in self.doc:
            raise self.error(f"{self.where}: missing {key!r}")
        value = self.doc[key]
        # bool is an int to Python, never to a manifest; an int is a valid float (JSON writes 8.0 as 8.0, but
        # hand-made files may not).
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise self.error(f"{self.where}: {key!r} is {value!r:.60}, expected {KINDS[kind]}")
        return value

    def optional(self, key: str, kind: type, default: Any = None) -> Any:
        return self.get(key, kind) if key in self.doc else default

    def record(self, cls: type, optional: frozenset[str] = frozenset()):
        """Dataclass `cls` with each field read at its own name as its annotated type (int, float, str, bool);
        the fields named in `optional` keep their default when the key is absent."""
        types = typing.get_type_hints(cls)
        values = {f.name: self.get(f.name, types[f.name]) for f in dataclasses.fields(cls)
                  if f.name not in optional or f.name in self.doc}  # fmt: skip
        return cls(**values)

    def object(self, key: str) -> Fields:
        return Fields(self.get(key, dict), f"{self.where}: {key}", self.error)

    def objects(self, key: str) -> list[Fields]:
        return [Fields(item, f"{self.where}: {key}[{i}]", self.error) for i, item in enumerate(self.get(key, list))]

    def ints(self, key: str) -> tuple[int, ...]:
        values = self.get(key, list)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise self.error(f"{self.where}: {key!r} is {values!r:.60}, expected a list of integers")
        return tuple(values)

    def strs(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list)
        if not all(isinstance(v, str) for v in values):
            raise self.error(f"{self.where}: {key!r} is {values!r:.60}, expected a list of strings")
        return tuple(values)
