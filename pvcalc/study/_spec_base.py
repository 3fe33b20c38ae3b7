"""Helpers of the spec checks: the problem collector and value tests."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

__all__ = ["Problem", "Problems"]


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


class Problems:
    """Collects problems; ``add`` one per offending key."""

    def __init__(self):
        self.items = []

    def add(self, path, message):
        if Problem(path, message) not in self.items:
            self.items.append(Problem(path, message))


def _suggest(word, valid):
    close = difflib.get_close_matches(str(word), [str(v) for v in valid], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _got(value):
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
    return f"got {kind} {value!r}" if not isinstance(value, dict) else f"got {kind}"


def _unknown_keys(problems, path, table, valid):
    for key in table:
        if key not in valid:
            problems.add(f"{path}.{key}" if path else key,
                         f"unknown key; expected one of {', '.join(valid)}{_suggest(key, valid)}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _freeze(value):
    """TOML arrays -> tuples (hashable, frozen), recursively."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _table(problems, raw, key, *, required):
    value = raw.get(key)
    if value is None:
        if required:
            problems.add(key, f"missing; the spec needs a [{key}] table")
        return {}
    if not isinstance(value, dict):
        problems.add(key, f"expected a table [{key}], {_got(value)}")
        return {}
    return value
