"""Every numeric field has an upper bound; each validates at its maximum, is refused one above it with one
line, and the integer widths that store the fields hold their validated maxima (issue 14)."""

from __future__ import annotations

import annotated_types as at
import numpy as np
import pytest
from pydantic import BaseModel

from simweb.errors import ScenarioError
from simweb.plugins import registry
from simweb.scenario import models as m
from simweb.scenario.load import validate
from simweb.web.store import PAGE_COLUMNS

BASE = {"run": {"ticks": 3, "executor": "local"}, "publishers": [{"name": "p", "site_share": 1.0}],
        "labs": [{"name": "a"}]}

# where each table lives, how to make it present, and what else its maximum needs to validate
TABLES = [
    ("run", m.Run, {}), ("language", m.MarkovLanguage, {}), ("web", m.Web, {}),
    ("publishers[0]", m.Publisher, {}), ("publishers[0].ai_adoption", m.Adoption, {}),
    ("labs[0]", m.Lab, {}), ("evaluation", m.Evaluation, {}),
    ("labs[0].prior", m.PriorConfig, {"labs[0].prior": {"strength": 1.0}}),
    ("labs[0].watermark", m.WatermarkConfig, {"labs[0].watermark": {}}),
    ("language", m.GaussianLanguage, {"language": {"family": "gaussian"}, "labs[0].model": {"family": "gaussian"}}),
    ("language", m.CategoricalLanguage, {"language": {"family": "categorical"},
                                         "labs[0].model": {"family": "categorical"}}),
]
for entry in registry.entries("model"):
    if entry.builtin and entry.name in ("ngram", "transformer"):
        TABLES.append(("labs[0].model", entry.config, {"labs[0].model": {"family": entry.name}}))
for entry in registry.entries("filter"):
    if entry.builtin:
        required = {"date_cutoff": {"tick": 0}, "allowlist": {"top_k": 1}}.get(entry.name, {})
        TABLES.append(("labs[0].filters[0]", entry.config, {"labs[0].filters": [{"kind": entry.name, **required}]}))

# what a field's maximum needs besides (a cross-table check that holds below the maximum)
COMPANIONS = {
    "language.vocab_size": {"labs[0].model": {"family": "transformer"}},  # an ngram's table would be too big
    "labs[0].first_release": {"run.ticks": 32_767},  # must be < run.ticks
    "labs[0].model.order": {"language.vocab_size": 2},
    "labs[0].reserve_fraction": {"labs[0].reserve_docs": 1},
    "evaluation.forensics_tokens": {"labs[0].watermark": {}},  # a key to test for
}


def _put(data: dict, path: str, value) -> None:
    import re

    node, parts = data, re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        key = int(part[1:-1]) if part.startswith("[") else part
        if last:
            node[key] = value
        else:
            if isinstance(key, str) and key not in node:
                node[key] = {}
            node = node[key]


def _scenario(settings: dict) -> dict:
    import copy

    data = copy.deepcopy(BASE)
    for path, value in copy.deepcopy(settings).items():
        _put(data, path, value)
    return data


def _upper(info) -> tuple[str, float] | None:
    for meta in info.metadata:
        if isinstance(meta, at.Le):
            return "le", meta.le
        if isinstance(meta, at.Lt):
            return "lt", meta.lt
    return None


def _numeric(info) -> bool:
    ann = info.annotation
    return ann in (int, float, int | None, float | None)


CASES = [(prefix, model, setup, name, info) for prefix, model, setup in TABLES
         for name, info in model.model_fields.items() if _numeric(info)]


@pytest.mark.parametrize("prefix,model,setup,name,info", CASES,
                         ids=[f"{c[1].__name__}.{c[3]}" for c in CASES])
def test_every_numeric_field_validates_at_its_maximum_and_is_refused_above(prefix, model, setup, name, info):
    bound = _upper(info)
    path = f"{prefix}.{name}"
    assert bound is not None, f"{path} has no upper bound"
    kind, top = bound
    is_int = info.annotation in (int, int | None)
    at_max = top if kind == "le" else (top - 1 if is_int else float(np.nextafter(top, -np.inf)))
    settings = {**setup, **COMPANIONS.get(path, {}), path: at_max}
    validate(_scenario(settings))  # the maximum is valid
    over = top + 1 if is_int else top * 1.5 + 1.0
    with pytest.raises(ScenarioError) as err:
        validate(_scenario({**settings, path: over}))
    message = str(err.value)
    assert "\n" not in message and path in message and ("<=" in message or "<" in message), message


def test_list_lengths_are_bounded():
    for name in ("publishers", "labs"):
        field = m.Scenario.model_fields[name]
        assert any(isinstance(meta, at.MaxLen) for meta in field.metadata), name


def _max(model: type[BaseModel], name: str) -> int:
    kind, top = _upper(model.model_fields[name])
    return int(top) if kind == "le" else int(top) - 1


def _max_len(name: str) -> int:
    return next(meta.max_length for meta in m.Scenario.model_fields[name].metadata if isinstance(meta, at.MaxLen))


def test_integer_widths_hold_every_field_at_its_maximum():
    ticks = _max(m.Run, "ticks")
    pages_per_publisher = _max(m.Publisher, "initial_pages") + _max(m.Publisher, "pages_per_tick") * ticks
    widths = [
        # (what, its largest validated value, the dtype that stores it)
        ("tick (page column)", ticks, PAGE_COLUMNS["tick"]),
        ("generation: a lab releasing every tick", ticks, PAGE_COLUMNS["generation"]),
        ("topic", _max(m.MarkovLanguage, "topics") - 1, PAGE_COLUMNS["topic"]),
        ("population", _max_len("publishers") - 1, PAGE_COLUMNS["population"]),
        ("lab", _max_len("labs") - 1, PAGE_COLUMNS["lab"]),
        ("site_id", _max(m.Web, "initial_sites") + _max(m.Web, "sites_per_tick") * ticks, PAGE_COLUMNS["site_id"]),
        ("site created tick", ticks, np.dtype(np.int32)),
        ("token (markov content)", _max(m.MarkovLanguage, "vocab_size") - 1, np.dtype(np.uint16)),
        ("categorical outcome", _max(m.CategoricalLanguage, "outcomes") - 1, np.dtype(np.int32)),
        ("page id, copied_from", _max_len("publishers") * pages_per_publisher, PAGE_COLUMNS["copied_from"]),
        ("pool crawl (generation)", ticks, np.dtype(np.int32)),
    ]
    for what, value, dtype in widths:
        assert value <= np.iinfo(dtype).max, f"{what}: {value:,} does not fit {dtype}"
