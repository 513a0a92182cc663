"""One rule for every chapter's settings: a profile's values with a page's overrides applied, and,
in a dry run (:mod:`alignlib.dryrun`), the chapter's dry-run caps on top."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from alignlib import dryrun

__all__ = ["resolve_settings", "apply_dry_run_caps", "DryRunCapped"]

#: a chapter's dry-run caps: setting name -> function of the resolved value (dryrun.first, at_most)
Caps = Mapping[str, Callable[[Any], Any]]


def resolve_settings(profiles: Mapping[str, Mapping[str, Any]], profile: str,
                     overrides: Mapping[str, Any], chapter: str,
                     dry_run_caps: Caps | None = None) -> dict[str, Any]:
    """``profiles[profile]`` with every non-None override applied, then, in a dry run,
    ``dry_run_caps``.

    Unknown profiles and setting names are refused. An override of a boolean setting must be a boolean and
    one of an integer setting a whole number; numbers are cast to the setting's type (10.0 -> 10, 1 -> 1.0),
    so one configuration has one hash. Types are read from the ``paper`` profile, which holds every setting.
    The dry-run caps lower the work (epochs, seeds, folds), never the shapes; they apply after the
    overrides, so a dry run with ``-p epochs=500`` still trains one epoch.
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
    return apply_dry_run_caps(base, dry_run_caps, chapter)


def apply_dry_run_caps(settings: dict[str, Any], caps: Caps | None,
                       chapter: str = "") -> dict[str, Any]:
    """``settings`` with each cap applied to its value when :func:`alignlib.dryrun.active`;
    unchanged otherwise. A cap naming no setting is a programming error (refused)."""
    if not caps or not dryrun.active():
        return settings
    unknown = sorted(set(caps) - set(settings))
    if unknown:
        raise KeyError(f"{chapter} dry-run caps name unknown setting(s) {', '.join(unknown)}")
    return {**settings, **{k: cap(settings[k]) for k, cap in caps.items()}}


class DryRunCapped(Mapping[str, Any]):
    """A per-profile table (profile -> value) read through a cap in a dry run: ``table[profile]``
    is the value as written, or ``cap(profile, value)`` while :func:`alignlib.dryrun.active`. For
    the module-level tables that pages index directly (DINA's ``SEEDS``, ``TABLE1``), so that a dry
    run needs no page edits."""

    def __init__(self, table: Mapping[str, Any], cap: Callable[[str, Any], Any]):
        self._table, self._cap = dict(table), cap

    def __getitem__(self, profile: str) -> Any:
        value = self._table[profile]
        return self._cap(profile, value) if dryrun.active() else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"DryRunCapped({self._table!r})"
