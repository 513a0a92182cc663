"""What a book page needs besides figures: the provenance banner and tables saved for the text.

Every table a page shows is also written to ``results/<chapter>/<name>.csv`` with a sidecar
``<name>.json`` holding the parameters and provenance that produced it. The CSV keeps the long format
(one row per measurement, value and interval in their own columns); what the page *shows* is shaped to
fit the text column by :func:`interval_table` (one compact "value [low, high]" cell per measurement,
short labels, rounded).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from alignlib.paths import results_dir
from alignlib.repro import provenance, write_json

def _profile_text(profile: str) -> str:
    """The profile's description from ``pipeline.yml`` (the one place it is written)."""
    from alignlib.runner.pipeline import load_pipeline

    try:
        text = load_pipeline().profiles.get(profile)
    except Exception:  # a page executed outside the repository still gets a banner
        text = None
    return f"**{profile}** — {text}" if text else f"**{profile}**"


def provenance_markdown(profile: str, data: str, details: dict[str, Any] | None = None) -> str:
    """Markdown for the banner at the top of each page: profile, data, and any details; in a dry
    run (:mod:`alignlib.dryrun`) the profile is marked "(dry run)" and a line after it says what
    was capped."""
    from alignlib import dryrun

    dry = dryrun.active()
    lines = [f"> **Profile:** {_profile_text(profile)}" + (" (**dry run**)" if dry else "") + "  ",
             *([f"> {dryrun.banner_text()}  "] if dry else []),
             f"> **Data:** {data}  "]
    for key, value in (details or {}).items():
        lines.append(f"> **{key}:** {value}  ")
    lines.append(f"> **Code version:** `{provenance()['code_version']}`")
    return "\n".join(lines)


def show_provenance(profile: str, data: str, details: dict[str, Any] | None = None) -> None:
    """Display the banner (as Markdown) in a notebook."""
    from IPython.display import Markdown, display

    display(Markdown(provenance_markdown(profile, data, details)))


def save_table(df: pd.DataFrame, chapter: str, name: str, params: dict[str, Any] | None = None) -> Path:
    """Write ``df`` to ``results/<chapter>/<name>.csv`` and its parameters/provenance beside it."""
    path = results_dir(chapter) / f"{name}.csv"
    df.to_csv(path, index=False)
    write_json(path.with_suffix(".json"), provenance(table=name, parameters=params or {}))
    register_output(path, path.with_suffix(".json"))
    return path


def register_output(*paths: str | Path) -> None:
    """Tell the runner that this page wrote ``paths`` (listed, with download links, in the page's
    "Reproduce this page" cell). A no-op outside ``alignlib run``."""
    import os

    log = os.environ.get("ALIGNLIB_OUTPUTS_LOG")
    if log:
        with open(log, "a") as f:
            f.writelines(f"{Path(p).resolve()}\n" for p in paths)


def interval_text(value: float, low: float = math.nan, high: float = math.nan, digits: int = 2,
                  scale: float = 1.0) -> str:
    """``value [low, high]`` rounded to ``digits`` decimals after multiplying by ``scale`` (100 for
    percent), e.g. ``"0.14 [0.08, 0.22]"``; the value alone when the interval is missing, "–"
    when the value is."""
    def fmt(x: float) -> str:
        return f"{x * scale:.{digits}f}"

    if value is None or not math.isfinite(float(value)):
        return "–"
    if low is None or high is None \
            or not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def interval_column(df: pd.DataFrame, value: str, low: str = "ci_low", high: str = "ci_high", *,
                    digits: int = 2, scale: float = 1.0) -> pd.Series:
    """:func:`interval_text` of each row of ``df``: a column to show in place of three."""
    return pd.Series([interval_text(v, lo, hi, digits, scale)
                      for v, lo, hi in zip(df[value], df[low], df[high])],
                     index=df.index, dtype=object)


def interval_table(df: pd.DataFrame, index: str | Sequence[str], columns: str | Sequence[str],
                   value: str, low: str = "ci_low", high: str = "ci_high", *, digits: int = 2,
                   scale: float = 1.0,
                   labels: Mapping[Any, str] | None = None,
                   column_label: str | Callable[[Any], str] | None = None,
                   column_order: Sequence[Any] | None = None) -> pd.DataFrame:
    """The display form of a long table of values with intervals: one row per ``index``, one column
    per value of ``columns`` (one name, or several for nested headers; in order of appearance, or
    ``column_order``), each cell :func:`interval_text` of ``value``, ``low``, ``high``. ``labels``
    shortens index values (e.g. long row names), ``column_label`` names the columns (a format string
    such as ``"top-{}"`` or a function). The columns' own names are dropped (the labels say it).
    The long table itself is what :func:`save_table` writes; this is only for showing it."""
    keys = [index] if isinstance(index, str) else list(index)
    across = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in [*keys, *across, value, low, high] if c not in df.columns]
    if missing:
        raise KeyError(f"interval_table: no column(s) {missing} in the table "
                       f"(it has {list(df.columns)})")
    shown = df.assign(_interval_cell=interval_column(df, value, low, high, digits=digits,
                                                     scale=scale))
    if labels:
        shown = shown.assign(**{k: shown[k].map(lambda x: labels.get(x, x))
                                for k in keys})
    wide = shown.pivot_table(index=keys, columns=across if len(across) > 1 else across[0],
                             values="_interval_cell", aggfunc="first", sort=False)
    if column_order is not None:
        wide = wide.reindex(columns=[c for c in column_order if c in wide.columns])
    if column_label is not None:
        name = column_label.format if isinstance(column_label, str) else column_label
        wide = wide.rename(columns=name)
    wide = wide.fillna("–")
    wide.columns.names = [None] * wide.columns.nlevels
    return wide
