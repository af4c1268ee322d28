"""What a scenario sets: the values that differ from the schema's defaults, as ``--set`` paths.

A report heads its figures with these, so a reader sees what was simulated
without reading the resolved scenario.toml (where every default is written out).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from simweb.scenario.models import Scenario

__all__ = ["changed_settings", "literal"]

_REQUIRED = object()  # a field without a default: whatever it holds was set


def changed_settings(scenario: Scenario) -> list[tuple[str, Any]]:
    """``(path, value)`` for every value that is not its default, in schema order.

    Paths are those ``--set`` takes, with labs and publishers by name
    (``labs.careful.reserve_fraction``) and filters by index
    (``labs.careful.filters[0].tpr``). A table of another family than the
    default (``language.family = "gaussian"``) is compared with that family's
    own defaults; a filter or a lab, which has no default, shows its required
    keys and whatever else differs from its class's defaults.
    """
    return _diff(scenario, None, "")


def _diff(value: BaseModel, default: BaseModel | None, path: str, skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, field in type(value).model_fields.items():
        if name in skip:
            continue
        here = f"{path}.{name}" if path else name
        v = getattr(value, name)
        if default is not None:
            d = getattr(default, name)
        elif name in ("kind", "family"):  # which plugin a table is: always said when it has no default to match
            d = _REQUIRED
        else:
            d = _REQUIRED if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(v, BaseModel) and set(type(v).model_fields) == {"kind"}:  # a plugin named, no keys of its own
            v, d = v.kind, getattr(d, "kind", d)
        if isinstance(v, BaseModel):
            # the same family as the default: compare with it; another family: with that family's defaults
            out += _diff(v, d if type(d) is type(v) else None, here)
        elif isinstance(v, tuple) and v and all(isinstance(e, BaseModel) for e in v):
            if v != d:
                for i, entry in enumerate(v):
                    named = isinstance(getattr(entry, "name", None), str)
                    out += _diff(entry, None, f"{here}.{entry.name}" if named else f"{here}[{i}]",
                                 skip=("name",) if named else ())
        elif d is _REQUIRED or v != d:
            out.append((here, v))
    return out


def literal(value: Any) -> str:
    """A value as a TOML literal, as ``--set`` reads it back: ``0.3``, ``true``, ``"x"``, ``[1, 2]``, ``{a = 1.5}``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return literal(value.model_dump(exclude_none=True))
    if value is None:
        return "none"
    return str(value)
