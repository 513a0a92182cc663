"""The pipeline declared in ``pipeline.yml``: notebooks, their order, and per-profile parameters."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignlib.paths import REPO_ROOT
from alignlib.runner.params import ParameterError, read_parameters, validate_parameters

PIPELINE_FILE = REPO_ROOT / "pipeline.yml"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


@dataclass(frozen=True)
class PlannedRun:
    """One notebook execution: its name, output name (relative, no suffix), parameters and source file."""
    notebook: str
    output: str
    parameters: dict[str, Any]
    source: Path

    @classmethod
    def of(cls, notebook: str, output: str, parameters: dict[str, Any]) -> "PlannedRun":
        return cls(notebook, output, parameters, NOTEBOOKS_DIR / f"{notebook}.py")


@dataclass
class Step:
    notebook: str
    output: str
    foreach: dict[str, list] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Pipeline:
    profiles: dict[str, str]
    steps: list[Step]

    def check_profile(self, profile: str) -> None:
        if profile not in self.profiles:
            raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(self.profiles)}")

    def notebooks(self) -> list[str]:
        return [s.notebook for s in self.steps]

    def expand(self, profile: str, overrides: dict[str, Any] | None = None) -> list[PlannedRun]:
        """Every run of the pipeline under ``profile`` (``foreach`` loops expanded), not yet validated.

        An override of a ``foreach`` key (e.g. ``mouse=M2``) replaces the loop.
        """
        self.check_profile(profile)
        overrides = dict(overrides or {})
        runs = []
        for step in self.steps:
            loops = {k: ([overrides[k]] if k in overrides else list(v)) for k, v in step.foreach.items()}
            for combo in itertools.product(*loops.values()):
                looped = dict(zip(loops, combo))
                params = {"profile": profile, **step.params.get("common", {}),
                          **step.params.get(profile, {}), **looped, **overrides}
                runs.append(PlannedRun.of(step.notebook, step.output.format(**looped), params))
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
                raise ParameterError(f"unknown notebook(s) {', '.join(missing)}; known: {', '.join(sorted(known))}")
            runs = [r for r in runs if r.notebook in targets or r.output in targets]
        for run in runs:
            if not run.source.exists():
                raise ParameterError(f"pipeline names {run.notebook!r} but {run.source} does not exist")
            validate_parameters(run.notebook, read_parameters(run.source), run.parameters)
        return runs


def load_pipeline(path: str | Path = PIPELINE_FILE) -> Pipeline:
    raw = yaml.safe_load(Path(path).read_text())
    try:
        steps = [Step(notebook=s["notebook"], output=s.get("output", s["notebook"]),
                      foreach=s.get("foreach", {}), params=s.get("params", {})) for s in raw["steps"]]
        return Pipeline(profiles=dict(raw["profiles"]), steps=steps)
    except (KeyError, TypeError) as err:
        raise ParameterError(f"{path}: malformed pipeline ({err})") from None
