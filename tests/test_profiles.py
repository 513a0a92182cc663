"""Every chapter resolves its settings by one rule (alignlib.experiments.profiles.resolve_settings)."""
import pytest

from alignlib.experiments.dina import settings as dina
from alignlib.experiments.profiles import resolve_settings
from alignlib.experiments.vist import settings as vist
from alignlib.experiments.vna import settings as vna

PROFILES = {"paper": {"epochs": 10, "lr": 1e-3, "residual": False, "name": "a", "sizes": [1, 2]},
            "quick": {"epochs": 2, "lr": 1e-3, "residual": True, "name": "b", "sizes": [1]}}


def test_overrides_apply_and_cast_to_the_settings_type():
    out = resolve_settings(PROFILES, "quick", {"epochs": 4.0, "lr": 1, "name": None, "sizes": [3]}, "Toy")
    assert out == {"epochs": 4, "lr": 1.0, "residual": True, "name": "b", "sizes": [3]}
    assert type(out["epochs"]) is int and type(out["lr"]) is float
    assert PROFILES["quick"]["epochs"] == 2, "the profile itself is not changed"


@pytest.mark.parametrize("overrides, error, text", [
    ({"epoch": 3}, ValueError, "unknown Toy setting(s) epoch"),
    ({"residual": 1}, TypeError, "'residual' must be true or false"),
    ({"epochs": 2.5}, TypeError, "'epochs' must be an integer"),
    ({"epochs": True}, TypeError, "'epochs' must be an integer"),
])
def test_bad_overrides_are_refused_by_name(overrides, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        resolve_settings(PROFILES, "quick", overrides, "Toy")


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        resolve_settings(PROFILES, "laptop", {}, "Toy")


@pytest.mark.parametrize("module, name", [(dina, "DINA"), (vna, "VNA"), (vist, "Vi-ST")])
def test_each_chapter_uses_the_rule(module, name):
    assert module.resolve("quick") == dict(module.PROFILES["quick"])
    with pytest.raises(ValueError, match=f"unknown {name} setting"):
        module.resolve("quick", no_such_setting=1)
