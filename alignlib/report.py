"""What a book page needs besides figures: the provenance banner and tables saved for the text.

Every table a page shows is also written to ``results/<chapter>/<name>.csv`` with a sidecar
``<name>.json`` holding the parameters and provenance that produced it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

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
    """Markdown for the banner at the top of each page: profile, data, and any details."""
    lines = [f"> **Profile:** {_profile_text(profile)}  ",
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
