"""``_toc.yml`` generated from ``pipeline.yml``'s ``book:`` section and the steps' chapters and titles."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from alignlib.paths import REPO_ROOT, temporary_beside
from alignlib.runner.params import ParameterError
from alignlib.runner.pipeline import Pipeline

HEADER = ("# GENERATED from pipeline.yml (its `book:` section and the steps' chapters and titles) by\n"
          "# `alignlib toc` / `alignlib book`: edit pipeline.yml, not this file.\n")
EXECUTED_PREFIX = "book/executed/"


def _scalar(text: str) -> str:
    return text if re.fullmatch(r"[\w./-]+", text) else json.dumps(text, ensure_ascii=False)


def render_toc(pipeline: Pipeline) -> str:
    """The text of ``_toc.yml`` for ``pipeline`` (Jupyter Book's ``jb-book`` format)."""
    if pipeline.book is None:
        raise ParameterError("the pipeline has no `book:` section, so no table of contents")
    lines = [HEADER.rstrip("\n"), "format: jb-book", f"root: {_scalar(pipeline.book.root)}", "parts:"]
    for part in pipeline.book.parts:
        lines += [f"  - caption: {_scalar(part.caption)}", "    chapters:"]
        if part.chapter is None:
            lines += [f"      - file: {_scalar(page)}" for page in part.pages]
            continue
        lines.append(f"      - file: {_scalar(part.index)}")
        sections = []
        for step in (s for s in pipeline.steps if s.chapter == part.chapter):
            for output, looped in step.outputs():
                sections.append(f"          - file: {_scalar(EXECUTED_PREFIX + output)}")
                if step.title:
                    sections.append(f"            title: {_scalar(step.fill(step.title, looped, 'title'))}")
        if sections:
            lines += ["        sections:", *sections]
    return "\n".join(lines) + "\n"


def toc_pages(toc: dict) -> list[tuple[str, str | None, str | None]]:
    """(file, title, caption of its part) for every page of a parsed ``_toc.yml``, in order."""
    found: list[tuple[str, str | None, str | None]] = []

    def walk(node, caption):
        if isinstance(node, dict):
            caption = node.get("caption", caption)
            if "root" in node:
                found.append((node["root"], None, None))
            if "file" in node:
                found.append((node["file"], node.get("title"), caption))
            for key, value in node.items():
                if key not in ("root", "file", "title", "caption"):
                    walk(value, caption)
        elif isinstance(node, list):
            for item in node:
                walk(item, caption)

    walk(toc, None)
    return found


def toc_differences(pipeline: Pipeline, root: str | Path = REPO_ROOT) -> list[str]:
    """How ``<root>/_toc.yml`` differs from what ``pipeline`` generates, naming pages; [] when equal."""
    path = Path(root) / "_toc.yml"
    expected = render_toc(pipeline)
    actual = path.read_text() if path.exists() else ""
    if actual == expected:
        return []
    want, have = toc_pages(yaml.safe_load(expected)), toc_pages(yaml.safe_load(actual) or {})
    want_files, have_files = [p[0] for p in want], [p[0] for p in have]
    problems = [f"page {f} is generated from pipeline.yml but missing from _toc.yml"
                for f in want_files if f not in have_files]
    problems += [f"page {f} is in _toc.yml but pipeline.yml does not generate it"
                 for f in have_files if f not in want_files]
    have_by_file = {p[0]: p for p in have}
    for page in want:
        other = have_by_file.get(page[0])
        if other is not None and other != page:
            problems.append(f"page {page[0]}: _toc.yml has title/caption {other[1:]!r}, "
                            f"pipeline.yml gives {page[1:]!r}")
    if not problems and want_files != have_files:
        problems.append("pages are in a different order: " + ", ".join(
            f for f, g in zip(want_files, have_files) if f != g)[:300])
    return problems or ["_toc.yml differs from the generated text (header or layout)"]


def write_toc(pipeline: Pipeline, root: str | Path = REPO_ROOT) -> bool:
    """Write ``<root>/_toc.yml`` if it differs from the generated text; return whether it changed."""
    path = Path(root) / "_toc.yml"
    text = render_toc(pipeline)
    if path.exists() and path.read_text() == text:
        return False
    tmp = temporary_beside(path)      # unique: two commands never share a temporary
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return True
