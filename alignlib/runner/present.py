"""How an executed page is presented, added by the runner so that every chapter gets it by default.

- Code cells a reader need not see are collapsed with Jupyter Book's tags: the injected-parameters cell
  and the ``parameters`` cell get ``hide-cell``; cells that only import or set up plotting get
  ``hide-input`` (their output, if any, stays visible). Analysis calls stay visible: before execution, a
  cell that opens with imports and goes on with analysis is split in two (:func:`split_leading_setup`),
  so its imports collapse and its analysis does not. A cell whose source already carries a hide/remove
  tag is left as its author tagged it.
- Plumbing cells are collapsed too (:func:`is_plumbing_cell`): cells that only glue numbers into the
  text (``glue``), save results (``save_table``, ``save_figure``, ``record`` of the claims ledger),
  show the provenance banner or resolve settings (``settings.resolve(...)``, ``mice = mice or ...``),
  with the assignments that prepare them. They get ``hide-input`` when they show something (a table,
  the banner), ``hide-cell`` when they show nothing.
- A "Reproduce this page" cell is appended: the exact ``alignlib run`` command with the parameters that
  produced the page, and links to the result files it wrote (registered by :func:`alignlib.report.save_table`;
  the book build copies ``results/`` into the site so the links download).
- :func:`leaked_warnings` finds library warnings printed to stderr in executed pages.
"""
from __future__ import annotations

import ast
import json
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

PRESENTATION_TAGS = {"hide-input", "hide-output", "hide-cell", "remove-input", "remove-output", "remove-cell"}
SETUP_MAGICS = ("%matplotlib", "%config", "%load_ext", "%autoreload", "%reload_ext")
# Calls that only set up plotting, display or warnings: the last attribute(s) of the called name.
SETUP_CALLS = {"use_style", "set_theme", "set_style", "set_context", "set_palette", "style.use",
               "rcParams.update", "filterwarnings", "simplefilter", "set_option", "set_printoptions",
               "register_matplotlib_converters", "rc"}
SETUP_TARGETS = ("rcParams", "pd.options", "pandas.options")
# Calls that only glue, save, register or announce (the last attribute of the called name).
PLUMBING_CALLS = {"glue", "save_table", "save_figure", "register_output", "record", "show_provenance"}
# Calls that may appear in a settings-resolving assignment besides ``*.resolve``.
CONVERSION_CALLS = {"list", "tuple", "dict", "set", "sorted", "int", "float", "str", "bool"}
# Names that mark an assignment as drawing a figure (kept visible even beside glue).
FIGURE_NAMES = ("plt", "plots", "sns", "subplots", "figure", "imshow")
REPRODUCE_HEADING = "## Reproduce this page"
OUTPUTS_LOG_ENV = "ALIGNLIB_OUTPUTS_LOG"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript):
        return _dotted(node.value)
    return ""


def _is_setup_statement(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        name = _dotted(stmt.value.func)
        return any(name == c or name.endswith("." + c) for c in SETUP_CALLS)
    if isinstance(stmt, (ast.Assign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return all(any(t in _dotted(target) for t in SETUP_TARGETS) for target in targets)
    return False


def is_setup_cell(source: str) -> bool:
    """True when every statement of ``source`` is an import, a plotting/display/warnings setup call
    (``plots.use_style()``, ``sns.set_theme()``, ``plt.rcParams[...] = ...``) or a setup magic
    (``%matplotlib inline``); False for an empty cell or one that does anything else."""
    lines = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(("%", "!")):
            if not stripped.startswith(SETUP_MAGICS):
                return False
            continue
        lines.append(line)
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return False
    has_magic = len(lines) < len(source.splitlines())
    return (bool(tree.body) or has_magic) and all(_is_setup_statement(s) for s in tree.body)


def _call_name(call: ast.Call) -> str:
    return _dotted(call.func).rsplit(".", 1)[-1]


def _is_plumbing_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _call_name(node) in PLUMBING_CALLS


def _resolves_settings(stmt: ast.stmt) -> bool:
    """An assignment that resolves settings: ``cfg = settings.resolve(profile, ...)``, ``scale =
    settings.TABLE1[profile]`` or a parameter default ``mice = list(mice or settings.MICE)``; its only
    calls are ``*.resolve`` and conversions (``list``, ``int``, ...)."""
    if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
        return False
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    calls = [n for n in ast.walk(stmt.value) if isinstance(n, ast.Call)]
    if any(_call_name(c) not in CONVERSION_CALLS | {"resolve"} for c in calls):
        return False
    defaulted = any(isinstance(n, ast.BoolOp) and isinstance(n.op, ast.Or)
                    and any(isinstance(v, ast.Name) and v.id in names for v in n.values)
                    for n in ast.walk(stmt.value))
    from_settings = any(isinstance(n, ast.Name) and n.id.endswith("settings")
                        for n in ast.walk(stmt.value))
    return defaulted or from_settings or any(_call_name(c) == "resolve" for c in calls)


def _draws(stmt: ast.stmt) -> bool:
    return any(any(part in FIGURE_NAMES for part in _dotted(n.func).split("."))
               for n in ast.walk(stmt) if isinstance(n, ast.Call))


def _plumbing_kind(stmt: ast.stmt) -> str | None:
    """"plumbing" for a statement that only glues, saves or resolves settings (a ``for``/``if`` whose
    body is only that, too); "prepare" for an assignment or ``def`` that may feed one; else None."""
    if isinstance(stmt, ast.Expr) and _is_plumbing_call(stmt.value):
        return "plumbing"
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None \
            and _is_plumbing_call(stmt.value):
        return "plumbing"
    if _resolves_settings(stmt):
        return "plumbing"
    if isinstance(stmt, (ast.For, ast.If)):
        kinds = [_plumbing_kind(s) for s in stmt.body + stmt.orelse]
        return "plumbing" if None not in kinds and "plumbing" in kinds else None
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.FunctionDef)) \
            and not _draws(stmt):
        return "prepare"
    return None


def is_plumbing_cell(source: str) -> bool:
    """True when ``source`` only glues numbers into the text, saves results, shows the provenance
    banner or resolves settings, with assignments and helper ``def``s that prepare them: every
    statement is one of these and at least one is a glue/save/banner call or a settings resolution.
    A cell that draws (``plt``, ``plots``, ``sns``), shows an expression's value, runs a magic or
    does anything else is not plumbing, nor is a cell of assignments alone."""
    if any(line.strip().startswith(("%", "!")) for line in source.splitlines()):
        return False
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    kinds = [_plumbing_kind(s) for s in body]
    return bool(kinds) and None not in kinds and "plumbing" in kinds


# Plumbing calls whose return value (a path) is no news to a reader when a cell ends with one.
QUIET_RESULTS = {"save_table", "save_figure", "register_output", "glue"}


def _ends_with_quiet_call(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and isinstance(body[-1], ast.Expr) and isinstance(body[-1].value, ast.Call) \
        and _call_name(body[-1].value) in QUIET_RESULTS


def _shows_something(cell) -> bool:
    """Whether an executed cell has an output a reader sees (glue records and empty streams do not
    count: ``glue(..., display=False)`` stores its value under a ``application/papermill.record/``
    type that the page does not render; nor does the path that a cell ending in ``save_table(...)``
    echoes)."""
    quiet = _ends_with_quiet_call(cell.get("source", ""))
    for out in cell.get("outputs", []) or []:
        kind = out.get("output_type")
        if kind == "execute_result" and quiet:
            continue
        if kind == "stream":
            if "".join(out.get("text", "")).strip():
                return True
        elif kind in ("display_data", "execute_result"):
            if any(not m.startswith("application/papermill.record/") for m in out.get("data", {})):
                return True
        else:
            return True
    return False


def _setup_prefix(source: str) -> int | None:
    """Number of leading lines of ``source`` that only import or set up (at least one import), when
    analysis code follows them; else None."""
    lines = source.splitlines()
    shadow = []  # setup magics read as imports, so that line numbers stay those of the source
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("%", "!")):
            if not stripped.startswith(SETUP_MAGICS):
                return None
            shadow.append(" " * (len(line) - len(line.lstrip())) + "import __magic__")
        else:
            shadow.append(line)
    try:
        body = ast.parse("\n".join(shadow)).body
    except SyntaxError:
        return None
    head = 0
    while head < len(body) and _is_setup_statement(body[head]):
        head += 1
    if head == 0 or head == len(body) or not any(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body[:head]):
        return None
    return body[head - 1].end_lineno


def split_leading_setup(nb) -> None:
    """Split each code cell that opens with imports/plotting setup and goes on with analysis into a setup
    cell and an analysis cell, in place (before execution: same statements, same order, same kernel)."""
    import nbformat

    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        split = None if cell.get("cell_type") != "code" or tags & (PRESENTATION_TAGS | {"parameters"}) \
            else _setup_prefix(cell.get("source", ""))
        if split is None:
            cells.append(cell)
            continue
        lines = cell.source.splitlines()
        head = nbformat.v4.new_code_cell("\n".join(lines[:split]).rstrip())
        head.metadata = {k: v for k, v in cell.metadata.items() if k != "tags"}
        if "id" not in cell:
            head.pop("id", None)
        cell.source = "\n".join(lines[split:]).strip("\n")
        cells += [head, cell]
    nb.cells = cells


def tag_cells(nb) -> None:
    """Add the collapsing tags (see the module docstring) to the cells of an executed notebook, in place."""
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tags = list(cell.get("metadata", {}).get("tags", []))
        if PRESENTATION_TAGS & set(tags):
            continue
        if "injected-parameters" in tags or "parameters" in tags:
            tags.append("hide-cell")
        elif is_setup_cell(cell.get("source", "")):
            tags.append("hide-input")
        elif is_plumbing_cell(cell.get("source", "")):
            tags.append("hide-input" if _shows_something(cell) else "hide-cell")
        else:
            continue
        cell.setdefault("metadata", {})["tags"] = tags


def format_override(name: str, value: Any) -> str:
    """``name=value`` as ``alignlib run -p`` reads it back (YAML flow style, one line; a string that would
    read back as something else is quoted)."""
    from alignlib.runner.params import parse_override

    if isinstance(value, str):
        plain = f"{name}={value}"
        return plain if "\n" not in value and parse_override(plain)[1] == value else f"{name}={json.dumps(value)}"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return f"{name}={text.removesuffix('...').strip()}"


def reproduce_command(notebook: str, parameters: dict[str, Any]) -> str:
    """The shell command that re-executes a page with exactly these parameters (``--dry-run`` in
    a dry run, :mod:`alignlib.dryrun`)."""
    from alignlib import dryrun

    profile = parameters.get("profile", "quick")
    words = ["alignlib", "run", notebook, "--profile", str(profile)]
    words += ["--dry-run"] if dryrun.active() else []
    for name, value in parameters.items():
        if name != "profile":
            words += ["-p", format_override(name, value)]
    return " ".join(shlex.quote(w) for w in words)


def result_links(output: str, written: Iterable[str | Path], results_root: str | Path) -> list[tuple[str, str]]:
    """(label, href) for each written file under ``results_root``, the href relative to the page's HTML
    (``book/executed/<output>.html``) pointing into the site's copy of ``results/``."""
    root = Path(results_root).resolve()
    page_dir = posixpath.dirname(f"book/executed/{output}")
    links = []
    for path in written:
        try:
            rel = Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        target = f"results/{rel}"
        links.append((target, posixpath.relpath(target, page_dir)))
    return links


def runs_summary(runs_read: Iterable[str | Path]) -> dict[str, Any]:
    """What a page's runs were: their names by origin ("run store" or "runs/") and how many converged
    (derived from each run's record and configuration)."""

    from alignlib.training.derived import is_derived
    from alignlib.training.store import origin, run_convergence

    by_origin: dict[str, list[str]] = {}
    derived: dict[str, list[str]] = {}
    converged = unknown = 0
    for d in map(Path, dict.fromkeys(runs_read)):
        if is_derived(d):          # a result computed from a run (alignlib.training.derived), not a run
            derived.setdefault(origin(d), []).append(d.name)
            continue
        by_origin.setdefault(origin(d), []).append(d.name)
        try:
            state = run_convergence(d)["converged"]
        except (OSError, ValueError, KeyError):
            state = None
        converged += state is True
        unknown += state is None
    n = sum(len(v) for v in by_origin.values())
    return {"n": n, "by_origin": by_origin, "converged": converged, "unknown": unknown, "derived": derived}


def runs_markdown(runs_read: Iterable[str | Path]) -> str:
    """The "Runs it read" paragraph of "Reproduce this page": each run by origin, and how to retrain."""
    s = runs_summary(runs_read)
    text = ""
    if s["n"]:
        parts = [f"{len(names)} from {where}: " + ", ".join(f"`{n}`" for n in sorted(names))
                 for where, names in sorted(s["by_origin"].items())]
        text = (f"Training runs it read ({s['n']}; {s['converged']} converged"
                + (f", {s['unknown']} without an early-stopping rule" if s["unknown"] else "") + "): "
                + "; ".join(parts) + ". Runs come from `runs/` first, then from the run store shipped with "
                "the book (`book/store/`); to train them again here add `-p force=true` where the page "
                "takes it, or retrain everything, ignoring the store, with `alignlib book --retrain`.")
    if s["derived"]:
        parts = [f"{len(names)} from {where}: " + ", ".join(f"`{n}`" for n in sorted(names))
                 for where, names in sorted(s["derived"].items())]
        text += ((" " if text else "") + f"Derived results it read (computed once from those runs and "
                 f"kept beside them, `alignlib.training.derived`): " + "; ".join(parts) + ".")
    return text


def annotate_banner(nb, runs_read: Iterable[str | Path]) -> None:
    """Add a "Runs" line to the page's provenance banner (the first Markdown output that starts with
    ``> **Profile:**``): how many runs the page read, from where, how many converged."""
    s = runs_summary(runs_read)
    if not s["n"] and not s["derived"]:
        return
    where = ", ".join(f"{len(v)} from {k}" for k, v in sorted(s["by_origin"].items()))
    n_derived = sum(len(v) for v in s["derived"].values())
    runs = f"{s['n']} ({where}; {s['converged']} converged)" if s["n"] else "none"
    line = (f"  \n> **Runs read:** {runs}"
            + (f" and {n_derived} derived result(s)" if n_derived else "")
            + ", listed under *Reproduce this page*  ")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown")
            if isinstance(text, list):
                text = "".join(text)
            if isinstance(text, str) and text.startswith("> **Profile:**"):
                out["data"]["text/markdown"] = text.rstrip("\n") + line
                return


def reproduce_markdown(notebook: str, output: str, parameters: dict[str, Any],
                       written: Iterable[str | Path], results_root: str | Path,
                       runs_read: Iterable[str | Path] = ()) -> str:
    lines = [REPRODUCE_HEADING, "", "This page was produced by:", "", "```bash",
             reproduce_command(notebook, parameters), "```", ""]
    links = result_links(output, written, results_root)
    if links:
        files = ", ".join(f'<a href="{href}" download><code>{label}</code></a>' for label, href in links)
        lines.append(f"Files it wrote (download): {files}")
    else:
        lines.append("It wrote no result files.")
    runs = runs_markdown(runs_read)
    if runs:
        lines += ["", runs]
    return "\n".join(lines)


def read_outputs_log(path: str | Path) -> list[str]:
    """Files registered by :func:`alignlib.report.register_output` during a run, in order, once each."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    return list(dict.fromkeys(line for line in lines if line.strip()))


def finish_page(nb, notebook: str, output: str, parameters: dict[str, Any], written: Iterable[str | Path],
                results_root: str | Path, runs_read: Iterable[str | Path] = ()) -> None:
    """Tag the cells, name the training runs it read in the banner, and append the "Reproduce this page"
    cell (replacing an earlier one), in place."""
    import nbformat

    runs_read = list(runs_read)
    tag_cells(nb)
    annotate_banner(nb, runs_read)
    nb.cells = [c for c in nb.cells if not (c.get("cell_type") == "markdown"
                                            and c.get("source", "").startswith(REPRODUCE_HEADING))]
    cell = nbformat.v4.new_markdown_cell(reproduce_markdown(notebook, output, parameters, written, results_root,
                                                            runs_read))
    cell.metadata["tags"] = ["alignlib-reproduce"]
    if nb.get("nbformat", 4) == 4 and nb.get("nbformat_minor", 0) < 5:
        cell.pop("id", None)  # cell ids exist from nbformat 4.5 on
    nb.cells.append(cell)


@dataclass(frozen=True)
class LeakedWarning:
    """A warning printed to stderr in an executed page."""
    page: str
    cell: int
    text: str


WARNING_RE = re.compile(r"\b\w*Warning\b")


def leaked_warnings(executed_dir: str | Path) -> list[LeakedWarning]:
    """Every stderr output containing "Warning" in the executed pages under ``executed_dir`` (failed runs
    excluded): page (relative, no suffix), cell index and the first offending line."""
    root = Path(executed_dir)
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        if "_failed" in path.relative_to(root).parts:
            continue
        nb = json.loads(path.read_text())
        for index, cell in enumerate(nb.get("cells", [])):
            for out in cell.get("outputs", []) or []:
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    text = "".join(out.get("text", ""))
                    line = next((ln for ln in text.splitlines() if WARNING_RE.search(ln)), None)
                    if line is not None:
                        found.append(LeakedWarning(path.relative_to(root).with_suffix("").as_posix(), index,
                                                   line.strip()))
    return found
