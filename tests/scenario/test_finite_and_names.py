"""Every float of the schema refuses nan and inf; no name can leave its parent directory.

The float fields are found by walking the models, so a field added later is tested without being listed.
"""

from __future__ import annotations

import subprocess
import sys
import types
import typing

import pytest
from pydantic import BaseModel

from simweb.errors import ScenarioError
from simweb.plugins import registry
from simweb.scenario import models, parse_scenario
from tests.helpers import MINIMAL

# Where each table lives in a scenario, and the overrides that make it the one there (a family, a filter kind,
# a required key). A table with a float field and no entry here fails test_every_table_has_a_home.
HOMES: dict[type[BaseModel], tuple[str, list[str]]] = {
    models.Run: ("run", []),
    models.MarkovLanguage: ("language", []),
    models.GaussianLanguage: ("language", ["language={family='gaussian'}", "labs[0].model={family='gaussian'}"]),
    models.MarkovDrift: ("language.drift", ["language={drift={}}"]),
    models.Event: ("language.drift.events[0]",
                   ["run.ticks=3", "language={drift={events=[{tick=1, topic=0, surge=2.0}], half_life=1.0}}"]),
    models.GaussianDrift: ("language.drift", ["language={family='gaussian', drift={}}",
                                              "labs[0].model={family='gaussian'}"]),
    models.CategoricalDrift: ("language.drift", ["language={family='categorical', drift={}}",
                                                 "labs[0].model={family='categorical'}"]),
    models.CategoricalLanguage: ("language", ["language={family='categorical'}",
                                              "labs[0].model={family='categorical'}"]),
    models.Web: ("web", []),
    models.Adoption: ("publishers[0].ai_adoption", []),
    models.Publisher: ("publishers[0]", []),
    models.OptOut: ("publishers[0].opt_out", ["publishers[0].opt_out={}"]),
    models.Imitation: ("publishers[0].imitation", ["publishers[0].imitation={}"]),
    models.Launder: ("publishers[0].launder", ["publishers[0].launder={fraction=0.5}"]),
    models.Licence: ("labs[0].licences[0]", ["labs[0].licences=[{population='pub', docs_per_generation=1, price=0.0}]"]),
    models.WatermarkConfig: ("labs[0].watermark", ["labs[0].watermark={}"]),
    models.PriorConfig: ("labs[0].prior", ["labs[0].prior={strength=1.0}"]),
    models.Lab: ("labs[0]", []),
    models.Evaluation: ("evaluation", []),
}
# every registered plugin's config: a filter, a model family, a regime or a publisher behaviour
_PLUGIN_HOME = {"filter": ("labs[0].filters[0]", "labs[0].filters=[{{kind='{}'}}]"),
                "model": ("labs[0].model", "labs[0].model={{family='{}'}}"),
                "regime": ("labs[0].regime", "labs[0].regime={{kind='{}'}}"),
                "behaviour": ("publishers[0].behaviours[0]", "publishers[0].behaviours=[{{kind='{}'}}]")}
for _kind, (_path, _set) in _PLUGIN_HOME.items():
    for _entry in registry.entries(_kind):
        if _entry.builtin:
            HOMES[_entry.config] = (_path, [_set.format(_entry.name)])


def _tables() -> list[type[BaseModel]]:
    found, todo = [], [models._Table]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not models._Table:
            found.append(cls)
    return found + [e.config for kind in _PLUGIN_HOME for e in registry.entries(kind) if e.builtin]


def _float_shape(annotation) -> str | None:
    """"float", "dict" (str -> float) or "tuple" (of floats) when ``annotation`` holds floats, else None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation is float or (typing.get_origin(annotation) in (typing.Union, types.UnionType) and args == [float]):
        return "float"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _float_shape(args[0])
    if typing.get_origin(annotation) is dict and typing.get_args(annotation)[1] is float:
        return "dict"
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation)[0] is float:
        return "tuple"
    return None


FLOAT_FIELDS = [(cls, name, shape) for cls in _tables() for name, field in cls.model_fields.items()
                if (shape := _float_shape(field.annotation)) is not None]


def test_the_walk_finds_the_float_fields_we_know_of():
    found = {f"{cls.__name__}.{name}" for cls, name, _ in FLOAT_FIELDS}
    for known in ("Adoption.midpoint", "NgramModelConfig.alpha", "PriorConfig.strength", "Lab.market_share",
                  "WatermarkDetectorConfig.z_threshold", "VerifierConfig.noise", "GaussianLanguage.mean",
                  "GaussianLanguage.std", "ClassifierConfig.fpr_multiplier", "CategoricalLanguage.probs",
                  "Run.page_memory_mb", "TransformerModelConfig.lr", "EditConfig.fraction", "OptOut.by_reputation",
                  "Lab.compliance", "Lab.budget", "Licence.price"):
        assert known in found
    assert len(FLOAT_FIELDS) >= 39


def test_every_table_has_a_home():
    assert not {cls.__name__ for cls, _, _ in FLOAT_FIELDS} - {cls.__name__ for cls in HOMES}


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("cls, name, shape", FLOAT_FIELDS, ids=[f"{c.__name__}.{n}" for c, n, _ in FLOAT_FIELDS])
def test_a_non_finite_value_is_refused_naming_the_field(cls, name, shape, bad):
    home, setup = HOMES[cls]
    path = f"{home}.{name}"
    value = {"float": bad, "dict": f"{{pub={bad}}}", "tuple": f"[{bad}, 1.0]"}[shape]
    where = {"float": path, "dict": f"{path}.pub", "tuple": f"{path}[0]"}[shape]
    parse_scenario(MINIMAL, setup)  # the host is valid without the bad value
    with pytest.raises(ScenarioError) as info:
        parse_scenario(MINIMAL, [*setup, f"{path}={value}"])
    assert info.value.path == where
    assert str(info.value) == f"{where}: expected a finite number, got {bad.lstrip('+')}"


def test_a_non_finite_value_in_the_file_itself_is_refused_by_the_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "\n[evaluation]\nprob_floor = nan\n")
    proc = subprocess.run([sys.executable, "-m", "simweb", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"simweb: error: {bad}: evaluation.prob_floor: expected a finite number, got nan"]


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("path", ["run.name", "publishers[0].name", "labs[0].name"])
@pytest.mark.parametrize("name", [".", ".."])
def test_a_name_that_is_a_directory_of_its_own_is_refused(path, name):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(MINIMAL, [f'{path}="{name}"'])
    assert str(info.value) == f"{path}: expected letters, digits, '_', '-' or '.' (not '.' or '..' alone), got {name!r}"


@pytest.mark.parametrize("name", ["a.b", ".hidden", "v1.0", "...", "x..", "-_-"])
def test_names_with_dots_that_stay_in_their_directory_are_fine(name):
    assert parse_scenario(MINIMAL, [f'run.name="{name}"']).run.name == name


@pytest.mark.parametrize("name", ["a/b", "../x", "/etc", "a\\b", ""])
def test_names_with_separators_are_refused(name):
    with pytest.raises(ScenarioError, match=r"^run\.name: "):
        parse_scenario(MINIMAL, [f'run.name="{name}"'])
