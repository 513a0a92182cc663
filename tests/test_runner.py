"""Runner: parameter reading and checking, pipeline planning, atomic execution, the CLI."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alignlib.runner import NotebookFailed, ParameterError, execute_notebook, load_pipeline, read_parameters
from alignlib.runner.params import parse_override, validate_parameters
from alignlib.runner.pipeline import PlannedRun

NOTEBOOK = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "quick"
    epochs = 3
    rate: float = 0.5
    mice = ["M1"]
    fail = False

    # %%
    print("epochs", epochs)

    # %%
    if fail:
        raise ValueError("planted failure")
    ''')


@pytest.fixture
def toy_notebook(tmp_path) -> Path:
    path = tmp_path / "toy.py"
    path.write_text(NOTEBOOK)
    return path


def test_read_parameters_types(toy_notebook):
    params = read_parameters(toy_notebook)
    assert {k: p.type_name for k, p in params.items()} == {
        "profile": "str", "epochs": "int", "rate": "float", "mice": "list", "fail": "bool"}
    assert params["epochs"].default == 3


@pytest.mark.parametrize("text,expected", [("epochs=30", ("epochs", 30)), ("rate=1e-3", ("rate", 1e-3)),
                                           ("mice=[M1, M2]", ("mice", ["M1", "M2"])), ("mouse=M2", ("mouse", "M2")),
                                           ("fail=true", ("fail", True))])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_validation_refuses_unknown_and_wrong_type(toy_notebook):
    declared = read_parameters(toy_notebook)
    validate_parameters("toy", declared, {"epochs": 5, "rate": 1, "mice": ["M2"]})  # int is a valid float
    with pytest.raises(ParameterError, match="unknown parameter.*epoch\\b.*takes: epochs"):
        validate_parameters("toy", declared, {"epoch": 5})
    with pytest.raises(ParameterError, match="'epochs' expects int.*got str 'ten'"):
        validate_parameters("toy", declared, {"epochs": "ten"})
    with pytest.raises(ParameterError, match="'epochs' expects int.*got bool"):
        validate_parameters("toy", declared, {"epochs": True})
    with pytest.raises(ParameterError, match="'fail' expects bool"):
        validate_parameters("toy", declared, {"fail": 1})


@pytest.mark.parametrize("profile", ["quick", "paper", "smoke"])
def test_declared_pipeline_is_valid_for_every_profile(profile):
    runs = load_pipeline().plan(profile)
    assert runs and all(r.parameters["profile"] == profile for r in runs)
    outputs = [r.output for r in runs]
    assert len(outputs) == len(set(outputs)), "two runs would overwrite each other"


def test_foreach_override_selects_one_output():
    runs = load_pipeline().plan("quick", ["dina/train"], {"mouse": "M2", "epochs": 30})
    assert [(r.output, r.parameters["mouse"], r.parameters["epochs"]) for r in runs] == [("dina/train_M2", "M2", 30)]
    assert [r.output for r in load_pipeline().plan("quick", ["dina/train_M3"])] == ["dina/train_M3"]


def test_declared_needs_and_inputs():
    runs = {r.output: r for r in load_pipeline().expand("smoke")}
    assert runs["dina/data"].needs == () and runs["dina/methods"].needs == ("dina/data",)
    assert runs["dina/train_M2"].needs == ("dina/data",)
    assert runs["dina/results"].needs == tuple(f"dina/train_M{i}" for i in range(1, 5))
    assert runs["dina/train_M2"].inputs == ("stringer2019/*.mat",)
    assert not hasattr(load_pipeline(), "notebooks")


def test_unknown_target_and_profile():
    with pytest.raises(ParameterError, match="unknown notebook.*dina/trian"):
        load_pipeline().plan("quick", ["dina/trian"])
    with pytest.raises(ParameterError, match="unknown profile 'fast'"):
        load_pipeline().plan("fast")


def test_cli_refuses_bad_parameter_before_running():
    proc = subprocess.run([sys.executable, "-m", "alignlib", "run", "dina/train", "-p", "epochs=many"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "'epochs' expects int" in proc.stderr and "running" not in proc.stdout


def test_execute_success_then_failure_keeps_previous_output(toy_notebook, tmp_path):
    executed = tmp_path / "executed"
    ok = PlannedRun("toy", "chapter/toy", {"epochs": 7}, toy_notebook)
    out = execute_notebook(ok, executed, log=lambda *_: None)
    text = out.read_text()
    assert "epochs 7" in text and '"parameters"' in text
    bad = PlannedRun("toy", "chapter/toy", {"fail": True}, toy_notebook)
    with pytest.raises(NotebookFailed) as info:
        execute_notebook(bad, executed, log=lambda *_: None)
    message = str(info.value)
    assert "toy.py" in message and "ValueError: planted failure" in message and "cell" in message
    assert out.read_text() == text, "a failed run must not overwrite the last good executed notebook"
    assert info.value.partial is not None and "planted failure" in info.value.partial.read_text()
    assert not list(executed.rglob("*.partial"))
