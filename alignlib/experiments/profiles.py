"""One rule for every chapter's settings: a profile's values with a page's overrides applied."""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["resolve_settings"]


def resolve_settings(profiles: Mapping[str, Mapping[str, Any]], profile: str, overrides: Mapping[str, Any],
                     chapter: str) -> dict[str, Any]:
    """``profiles[profile]`` with every non-None override applied.

    Unknown profiles and setting names are refused. An override of a boolean setting must be a boolean and
    one of an integer setting a whole number; numbers are cast to the setting's type (10.0 -> 10, 1 -> 1.0),
    so one configuration has one hash. Types are read from the ``paper`` profile, which holds every setting.
    """
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(profiles)}")
    base = dict(profiles[profile])
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown {chapter} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(base))}")
    reference = profiles["paper"]
    for k, v in overrides.items():
        if v is None:
            continue
        kind = type(reference[k])
        if kind is bool and not isinstance(v, bool):
            raise TypeError(f"{chapter} setting {k!r} must be true or false, got {v!r}")
        if kind is int and (isinstance(v, bool) or float(v) != int(v)):
            raise TypeError(f"{chapter} setting {k!r} must be an integer, got {v!r}")
        base[k] = kind(v) if kind in (bool, int, float) else v
    return base
