"""``pvcalc presets``: the scoring conventions, one line each."""

from __future__ import annotations


def run(args) -> int:
    """``pvcalc presets``: one line per scoring preset."""
    from pvcalc.scoring import PRESETS

    width = max(len(name) for name in PRESETS)
    for name, preset in PRESETS.items():
        print(f"{name:{width}s}  {preset.source}")
    return 0
