"""The pipeline declared in ``pipeline.yml``: notebooks, their order, per-profile parameters, what each
page needs (upstream pages, input data), and how the pages form the book."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import yaml

from alignlib.paths import REPO_ROOT, OutsideFolder, check_name
from alignlib.runner.params import ParameterError, read_parameters, validate_parameters

PIPELINE_FILE = REPO_ROOT / "pipeline.yml"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
STEP_KEYS = {"notebook", "output", "foreach", "params", "needs", "inputs", "title", "chapter", "choices",
             "ranges"}


@dataclass(frozen=True)
class PlannedRun:
    """One notebook execution: its name, output name (relative, no suffix), parameters, source file, the
    outputs it needs (upstream pages), its input data patterns (relative to ``$ALIGNLIB_DATA_DIR``), and
    the values its parameters may take (``choices``: allowed values, a ``foreach`` key's list by default;
    ``ranges``: ``[min, max]``, either ``None``), checked by :func:`validate_runs`."""
    notebook: str
    output: str
    parameters: dict[str, Any]
    source: Path
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    choices: Mapping[str, tuple] = field(default_factory=dict)
    ranges: Mapping[str, tuple] = field(default_factory=dict)


@dataclass
class Step:
    notebook: str
    output: str
    foreach: dict[str, list] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    title: str | None = None
    chapter: str = ""
    choices: dict[str, list] = field(default_factory=dict)
    ranges: dict[str, list] = field(default_factory=dict)

    def allowed(self) -> dict[str, tuple]:
        """The values each parameter may take: its ``choices``, for a ``foreach`` key its list unless
        ``choices`` names it."""
        return {**{k: tuple(v) for k, v in self.foreach.items()}, **{k: tuple(v) for k, v in self.choices.items()}}

    def loops(self, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One dict of loop values per run; an override of a ``foreach`` key replaces that loop."""
        overrides = overrides or {}
        loops = {k: ([overrides[k]] if k in overrides else list(v)) for k, v in self.foreach.items()}
        return [dict(zip(loops, combo)) for combo in itertools.product(*loops.values())]

    def outputs(self) -> list[tuple[str, dict[str, Any]]]:
        """(output, loop values) of each page the step makes, with its declared ``foreach`` values."""
        return [(self.fill(self.output, looped, "output"), looped) for looped in self.loops()]

    def fill(self, template: str, values: dict[str, Any], what: str) -> str:
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise ParameterError(f"step {self.notebook}: cannot fill {what} {template!r} ({err!r})") from None


@dataclass(frozen=True)
class BookPart:
    """A part of the book: a chapter (its index page, then the pages of its steps) or plain pages."""
    caption: str
    chapter: str | None = None
    index: str | None = None
    pages: tuple[str, ...] = ()


@dataclass(frozen=True)
class BookSpec:
    root: str
    parts: tuple[BookPart, ...]


@dataclass
class Pipeline:
    profiles: dict[str, str]
    steps: list[Step]
    book: BookSpec | None = None
    notebooks_dir: Path = NOTEBOOKS_DIR

    def check_profile(self, profile: str) -> None:
        if profile not in self.profiles:
            raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(self.profiles)}")

    def _resolve_needs(self, step: Step, looped: dict[str, Any], before: dict[str, list[str]]) -> tuple[str, ...]:
        """Upstream outputs: a need is an earlier step's notebook (all its pages) or one output."""
        found: list[str] = []
        for entry in step.needs:
            name = step.fill(entry, looped, "need")
            outputs = before.get(name) or ([name] if any(name in o for o in before.values()) else None)
            if outputs is None:
                raise ParameterError(f"step {step.notebook} needs {name!r}, which is no earlier step's notebook "
                                     f"or output; known: {', '.join(sorted(before))}")
            found += [o for o in outputs if o not in found]
        return tuple(found)

    def expand(self, profile: str, overrides: dict[str, Any] | None = None) -> list[PlannedRun]:
        """Every run of the pipeline under ``profile`` (``foreach`` loops expanded), in order, not yet
        validated. ``overrides`` apply to every run; an override of a ``foreach`` key replaces the loop."""
        self.check_profile(profile)
        overrides = dict(overrides or {})
        runs: list[PlannedRun] = []
        before: dict[str, list[str]] = {}  # notebook -> outputs of the steps seen so far
        for step in self.steps:
            for looped in step.loops(overrides):
                params = {"profile": profile, **step.params.get("common", {}),
                          **step.params.get(profile, {}), **dry_run_params(step, profile), **looped,
                          **overrides}
                runs.append(PlannedRun(
                    step.notebook, step.fill(step.output, looped, "output"), params,
                    self.notebooks_dir / f"{step.notebook}.py", self._resolve_needs(step, looped, before),
                    tuple(step.fill(p, params, "input") for p in step.inputs), step.allowed(),
                    {k: tuple(v) for k, v in step.ranges.items()}))
            before.setdefault(step.notebook, []).extend(o for o, _ in step.outputs())
        return runs

    def plan(self, profile: str, targets: list[str] | None = None,
             overrides: dict[str, Any] | None = None) -> list[PlannedRun]:
        """The runs to execute (all, or those whose notebook or output is in ``targets``), with every
        parameter checked against its notebook, so that nothing runs when anything is wrong.

        ``alignlib run dina/train -p mouse=M2`` runs that one mouse.
        """
        runs = self.expand(profile, overrides)
        if targets:
            known = {r.notebook for r in runs} | {r.output for r in runs}
            missing = sorted(set(targets) - known)
            if missing:
                self._explain_renamed(profile, missing, overrides or {})
                raise ParameterError(f"unknown notebook(s) {', '.join(missing)}; known: {', '.join(sorted(known))}")
            runs = [r for r in runs if r.notebook in targets or r.output in targets]
        validate_runs(runs)
        return runs

    def _explain_renamed(self, profile: str, missing: list[str], overrides: dict[str, Any]) -> None:
        """Raise a clear error when a target is a page of a ``foreach`` step that an override of its loop
        key renamed (``alignlib run dina/train_M1 -p mouse=M2``)."""
        steps = {s.notebook: s for s in self.steps}
        for run in self.expand(profile):
            step = steps[run.notebook]
            renaming = sorted(set(step.foreach) & set(overrides))
            if run.output in missing and renaming:
                names = ", ".join(f"{k}={overrides[k]}" for k in renaming)
                page = step.fill(step.output, {**{k: run.parameters[k] for k in step.foreach},
                                               **{k: overrides[k] for k in renaming}}, "output")
                sets = ", ".join(f"{k}={run.parameters[k]}" for k in renaming)
                raise ParameterError(
                    f"{run.output} is the page of {step.notebook} for {sets}; -p {names} renames the page "
                    f"(to {page}), so it no longer matches {run.output}. Type `alignlib run {step.notebook} "
                    + " ".join(f"-p {k}={overrides[k]}" for k in renaming)
                    + f"` (page {page}), or drop -p {', '.join(renaming)} to re-run {run.output}")

    def schedule(self, profile: str, targets: list[str] | None = None,
                 overrides: dict[str, Any] | None = None) -> list[tuple[PlannedRun, str]]:
        """(run, role) in execution order, validated but for ``downstream`` runs (only those already executed
        can run: :func:`~alignlib.runner.execute.run_pipeline` checks them). Without targets every run is a
        ``target``.

        With targets (which get ``overrides``), the pages they need, transitively, come first as
        ``upstream`` and the pages that need them, transitively, follow as ``downstream``; those two keep
        the pipeline's parameters (``between`` if both). The roles say when a page runs.
        """
        if not targets:
            return [(run, "target") for run in self.plan(profile, None, overrides)]
        chosen = self.plan(profile, targets, overrides)
        graph = self.expand(profile)
        chosen_outputs = {r.output for r in chosen}
        by_output = {r.output: r for r in graph}
        up: set[str] = set()
        stack = [n for r in chosen for n in r.needs]
        while stack:
            name = stack.pop()
            if name not in up and name not in chosen_outputs:
                up.add(name)
                stack.extend(by_output[name].needs)
        down: set[str] = set()
        for run in graph:  # in order: upstream pages come before the pages that need them
            if run.output not in chosen_outputs and any(n in chosen_outputs or n in down for n in run.needs):
                down.add(run.output)
        order = {r.output: i for i, r in enumerate(graph)}
        for run in chosen:  # an output the pipeline does not list (e.g. mouse=M5) goes after its step's pages
            order.setdefault(run.output, max((order[r.output] for r in graph if r.notebook == run.notebook),
                                             default=len(graph)) + 0.5)
        roles: dict[str, tuple[PlannedRun, str]] = {r.output: (r, "target") for r in chosen}
        for name in up | down:
            if name not in roles:
                roles[name] = (by_output[name], "upstream" if name not in down else
                               "downstream" if name not in up else "between")
        scheduled = sorted(roles.values(), key=lambda rr: order[rr[0].output])
        validate_runs([r for r, role in scheduled if role in ("upstream", "between")])
        return scheduled


#: a step's parameters under ``params: dry_run:`` apply on top of the paper profile's in a dry run
DRY_RUN_PARAMS = "dry_run"


def dry_run_params(step: Step, profile: str) -> dict[str, Any]:
    """The step's ``params: dry_run:`` when the pipeline is planned for a dry run of the paper
    profile (:mod:`alignlib.dryrun`): the page's own loops cut to a few (bootstrap resamples,
    permutations, occluded images); else {}. They are written for the paper profile's sizes: the
    other profiles' own loops are already small, and their dry runs keep them."""
    from alignlib import dryrun

    if not dryrun.active() or profile != "paper":
        return {}
    return dict(step.params.get(DRY_RUN_PARAMS) or {})


def validate_runs(runs: list[PlannedRun]) -> None:
    """Check, before anything runs, that each run's notebook exists and takes its parameters (names and
    types; each source read once), that their values are among the step's ``choices`` and within its
    ``ranges``, and that its output name and input patterns stay inside their folders."""
    declared: dict[Path, Any] = {}
    for run in runs:
        if not run.source.exists():
            raise ParameterError(f"pipeline names {run.notebook!r} but {run.source} does not exist")
        if run.source not in declared:
            declared[run.source] = read_parameters(run.source)
        undeclared = sorted((set(run.choices) | set(run.ranges)) - set(declared[run.source]))
        if undeclared:
            raise ParameterError(f"{run.notebook}: pipeline.yml declares choices or ranges for "
                                 f"{', '.join(undeclared)}, which the notebook does not take")
        validate_parameters(run.notebook, declared[run.source], run.parameters)
        check_values(run)
        check_output_name(run.output)
        for pattern in run.inputs:
            if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
                raise ParameterError(f"{run.notebook}: input {pattern!r} must be a pattern under "
                                     f"$ALIGNLIB_DATA_DIR (relative, no '..')")


def check_output_name(output: str) -> None:
    """An output name is folders and a file name, each a plain name (:func:`alignlib.paths.check_name`):
    it cannot leave the executed folder, nor its ``_failed/`` copy leave ``_failed/``."""
    try:
        for part in output.split("/"):
            check_name(part, f"page name {output!r}: part")
    except OutsideFolder as err:
        raise ParameterError(str(err)) from None


def _each(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_values(run: PlannedRun) -> None:
    """Refuse a parameter value outside its declared ``choices`` or ``ranges`` (``None``, the profile's
    default, is always allowed; a list is checked element by element)."""
    for name, allowed in run.choices.items():
        value = run.parameters.get(name)
        if value is None:
            continue
        scalar_choices = not any(isinstance(a, (list, tuple)) for a in allowed)
        for v in (_each(value) if scalar_choices else [value]):
            if not any(v == a and isinstance(v, bool) == isinstance(a, bool) for a in allowed):
                what = "" if v is value else f" (in {value!r})"
                raise ParameterError(f"{run.notebook}: parameter {name!r} must be one of "
                                     f"{', '.join(map(str, allowed))}, got {v!r}{what}")
    for name, (low, high) in run.ranges.items():
        value = run.parameters.get(name)
        if value is None:
            continue
        for v in _each(value):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue  # the type check speaks for it
            if (low is not None and v < low) or (high is not None and v > high):
                bound = (f"between {low} and {high}" if low is not None and high is not None
                         else f"at least {low}" if low is not None else f"at most {high}")
                what = "" if v is value else f" (in {value!r})"
                raise ParameterError(f"{run.notebook}: parameter {name!r} must be {bound}, got {v!r}{what}")


def _load_book(raw: Any, steps: list[Step], path: Path) -> BookSpec | None:
    if raw is None:
        return None
    try:
        parts = []
        for part in raw["parts"]:
            unknown = set(part) - {"caption", "chapter", "index", "pages"}
            if unknown or ("chapter" in part) == ("pages" in part):
                extra = f" (unknown keys: {', '.join(sorted(unknown))})" if unknown else ""
                raise ParameterError(f"{path}: book part {part.get('caption')!r} needs either `chapter:` or "
                                     f"`pages:`{extra}")
            chapter = part.get("chapter")
            parts.append(BookPart(str(part["caption"]), chapter,
                                  part.get("index", f"book/{chapter}/index") if chapter else None,
                                  tuple(part.get("pages", ()))))
        book = BookSpec(str(raw["root"]), tuple(parts))
    except (KeyError, TypeError) as err:
        raise ParameterError(f"{path}: malformed book section ({err!r})") from None
    chapters = [p.chapter for p in book.parts if p.chapter]
    if len(set(chapters)) < len(chapters):
        raise ParameterError(f"{path}: a chapter is listed twice in the book section: {', '.join(chapters)}")
    for step in steps:
        if step.chapter not in chapters:
            raise ParameterError(f"{path}: step {step.notebook} belongs to chapter {step.chapter!r}, which the "
                                 f"book section does not list (chapters: {', '.join(sorted(chapters))})")
    return book


def _check_declarations(step: Step, path: Path) -> None:
    """``choices`` are lists (a ``foreach`` key's include its loop values); ``ranges`` are ``[min, max]``."""
    for name, values in step.choices.items():
        if not isinstance(values, list) or not values:
            raise ParameterError(f"{path}: step {step.notebook}: choices of {name!r} must be a non-empty list")
        left_out = [v for v in step.foreach.get(name, []) if v not in values]
        if left_out:
            raise ParameterError(f"{path}: step {step.notebook}: choices of {name!r} leave out its foreach "
                                 f"value(s) {', '.join(map(str, left_out))}")
    for name, bounds in step.ranges.items():
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(b is None or (isinstance(b, (int, float)) and not isinstance(b, bool)) for b in bounds)):
            raise ParameterError(f"{path}: step {step.notebook}: range of {name!r} must be [min, max] "
                                 f"(numbers or null), got {bounds!r}")


def load_pipeline(path: str | Path = PIPELINE_FILE, notebooks_dir: str | Path | None = None) -> Pipeline:
    """Read ``pipeline.yml``; notebooks are looked up in ``notebooks_dir`` (default: ``notebooks/`` beside it)."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    try:
        steps = []
        for s in raw["steps"]:
            unknown = set(s) - STEP_KEYS
            if unknown:
                raise ParameterError(f"{path}: step {s.get('notebook')!r} has unknown key(s) "
                                     f"{', '.join(sorted(unknown))}; allowed: {', '.join(sorted(STEP_KEYS))}")
            steps.append(Step(notebook=s["notebook"], output=s.get("output", s["notebook"]),
                              foreach=s.get("foreach") or {}, params=s.get("params") or {},
                              needs=list(s.get("needs") or []), inputs=list(s.get("inputs") or []),
                              title=s.get("title"), chapter=s.get("chapter", s["notebook"].split("/")[0]),
                              choices=dict(s.get("choices") or {}), ranges=dict(s.get("ranges") or {})))
            _check_declarations(steps[-1], path)
        pipeline = Pipeline(profiles=dict(raw["profiles"]), steps=steps,
                            book=_load_book(raw.get("book"), steps, path),
                            notebooks_dir=Path(notebooks_dir) if notebooks_dir else path.parent / "notebooks")
    except (KeyError, TypeError, AttributeError) as err:
        raise ParameterError(f"{path}: malformed pipeline ({err!r})") from None
    pipeline.expand(next(iter(pipeline.profiles)))  # checks needs and placeholders
    return pipeline
