"""Reading scenario files: TOML → overrides → validation → one clear error.

Every error names the field path and the bad value, suggests the closest key
for a typo, and is raised as :class:`~simweb.errors.ScenarioError`.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from simweb.errors import ScenarioError, SimwebError
from simweb.scenario.models import TOKEN_LANGUAGES, PluginField, Scenario, _freeze

__all__ = ["load_scenario", "parse_scenario", "apply_overrides", "dump_scenario"]


def load_scenario(path: str | Path, overrides: typing.Sequence[str] = (), *, seed: int | None = None) -> Scenario:
    """Read, override and validate a scenario file."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ScenarioError("", f"no such scenario file: {source!r}" if not path.exists() else f"not a file: {source!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError("", f"cannot read {source!r}: {err}") from None
    return parse_scenario(text, overrides, seed=seed, source=source)


def parse_scenario(text: str, overrides: typing.Sequence[str] = (), *, seed: int | None = None,
                   source: str | None = None) -> Scenario:
    """Validate scenario text (TOML) with ``--set`` style overrides applied first."""
    if not text.strip():
        raise ScenarioError("", "the scenario is empty; it needs at least [[publishers]] and [[labs]]", source=source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError("", f"not valid TOML: {err}", source=source) from None
    data = apply_overrides(data, overrides)
    if seed is not None:
        data = apply_overrides(data, [f"run.seed={seed}"])
    return validate(data, source=source)


def validate(data: dict[str, Any], *, source: str | None = None) -> Scenario:
    try:
        return Scenario.model_validate(_freeze(data))
    except ValidationError as err:
        raise _translate(err, data, source) from None
    except ScenarioError as err:  # from the checks across tables: say which file
        raise ScenarioError(err.path, err.message, source=source) from None
    except SimwebError as err:  # a plugin that cannot be loaded or registered
        raise ScenarioError("", str(err), source=source) from None


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as TOML (every default written out); plugin tables lead with their kind."""
    return tomli_w.dumps(_tag_first(_thaw(scenario.model_dump(exclude_none=True))))


def _tag_first(value: Any) -> Any:
    if isinstance(value, dict):
        tags = [k for k in ("kind", "family") if k in value]
        return {k: _tag_first(value[k]) for k in tags + [k for k in value if k not in tags]}
    if isinstance(value, list):
        return [_tag_first(v) for v in value]
    return value


# ---------------------------------------------------------------- overrides
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_overrides(data: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Apply ``path=value`` overrides; lists are indexed as ``labs[0]`` or by name as ``labs.naive``.

    Values are read as TOML literals (``500``, ``0.3``, ``true``, ``[1, 2]``, ``"x"``);
    anything that is not one is taken as a bare string (``regime=accumulate``).
    """
    data = _copy(data)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError("--set", f"expected path=value, got {item!r}")
        path, raw = item.split("=", 1)
        path = path.strip()
        segments = _split_path(path)
        value = _parse_value(raw.strip())
        node: Any = data
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            where = _join(segments[: i + 1])
            if isinstance(node, list):
                index = _list_index(node, seg, where)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if not isinstance(seg, str):
                    parent = _join(segments[:i]) or "the scenario"
                    raise ScenarioError(where, f"{parent} is a table, not a list")
                if last:
                    node[seg] = value
                else:
                    node = node.setdefault(seg, {})
            else:
                raise ScenarioError(_join(segments[:i]), f"is a value ({node!r}), not a table or list")
    return data


def _split_path(path: str) -> list[str | int]:
    if not path:
        raise ScenarioError("--set", "empty path before '='")
    segments: list[str | int] = []
    pos = 0
    for match in _SEGMENT.finditer(path):
        if match.start() != pos and path[pos:match.start()] != ".":
            raise ScenarioError("--set", f"cannot read the path {path!r}")
        segments.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if pos != len(path) or not segments:
        raise ScenarioError("--set", f"cannot read the path {path!r}")
    return segments


def _list_index(node: list, seg: str | int, where: str) -> int:
    if isinstance(seg, int):
        if seg >= len(node):
            raise ScenarioError(where, f"index out of range: the list has {len(node)} entries")
        return seg
    names = [entry.get("name") for entry in node if isinstance(entry, dict)]
    if seg in names:
        return names.index(seg)
    if seg.isdigit() and int(seg) < len(node):
        return int(seg)
    raise ScenarioError(where, f"no entry named {seg!r}{_did_you_mean(seg, [n for n in names if n])}")


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _join(segments: typing.Sequence[str | int]) -> str:
    out = ""
    for seg in segments:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


# ---------------------------------------------------------------- errors
def _translate(err: ValidationError, data: dict[str, Any], source: str | None) -> ScenarioError:
    # a list whose entries failed is also "too short"; that echo is not a problem of its own
    errors = [e for e in err.errors(include_url=False)
              if not (e["type"] == "too_short" and e["ctx"].get("actual_length", 0) < len(e.get("input") or ()))]
    first = errors[0]
    path, parent_model = _resolve(first["loc"], data)
    if first["type"].startswith("plugin_"):  # a plugin table whose kind is missing or unknown
        return ScenarioError(*_plugin_problem(first, path), source=source)
    if first["type"] == "union_tag_invalid":
        key = str(first["ctx"]["discriminator"]).strip("'()")
        path += "." + key
        if first["ctx"]["tag"] == "":
            first = {**first, "type": "missing_tag"}
        first = {**first, "input": first["ctx"]["tag"]}
    message = _describe(first, parent_model)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ScenarioError(path, message, source=source)


def _plugin_problem(error: dict, path: str) -> tuple[str, str]:
    ctx = error.get("ctx") or {}
    names = ctx.get("names", [])
    if error["type"] == "plugin_unknown":
        got = ctx.get("got")
        close = _did_you_mean(got, names) if isinstance(got, str) else ""
        return f"{path}.{ctx['tag']}" if ctx["tag"] else path, f"no {ctx['what']} named {_show(got)}{close}; known: {', '.join(map(repr, names))}"
    if error["type"] == "plugin_missing":
        return f"{path}.{ctx['tag']}", f"required, but missing: one of {names}"
    return path, error["msg"]


def _resolve(loc: tuple, data: Any = None) -> tuple[str, type[BaseModel] | None]:
    """Turn a pydantic location into ``labs[1].crawl_budget``, dropping union tags, and find the parent model.

    A plugin table (a filter, model, regime or behaviour) is followed into its registered config model.
    """
    model: Any = Scenario
    parent: type[BaseModel] | None = Scenario
    parts: list[str | int] = []
    for item in loc:
        parent = model if _is_model(model) else None
        model = _plugin_model(model, data)
        if _is_model(model):
            parent = model
        if isinstance(item, int):
            parts.append(item)
            model = _element_type(model)
            data = data[item] if isinstance(data, (list, tuple)) and item < len(data) else None
            continue
        data = data.get(item) if isinstance(data, dict) else None
        member = _union_member(model, item)
        if member is not None:  # a discriminator tag, not a key the user wrote
            model = member
            continue
        parts.append(item)
        if _is_model(model) and item in model.model_fields:
            field = model.model_fields[item]
            model = next((m for m in field.metadata if isinstance(m, PluginField)), field.annotation)
        else:
            model = None
    return _join(parts), parent


def _plugin_model(tp: Any, data: Any) -> Any:
    """The config model of the plugin table ``data`` when ``tp`` is a plugin field; else ``tp``."""
    marker = tp if isinstance(tp, PluginField) else _marker(tp)
    if marker is None:
        return tp
    from simweb.plugins import TAG, registry

    name = data if isinstance(data, str) else data.get(TAG[marker.kind], marker.default) if isinstance(data, dict) else None
    try:
        return registry.get(marker.kind, name).config
    except Exception:
        return None


def _marker(tp: Any) -> PluginField | None:
    return next((m for m in getattr(tp, "__metadata__", ()) if isinstance(m, PluginField)), None)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _element_type(tp: Any) -> Any:
    tp = _strip(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [_element_type(a) for a in args]
        return args[0] if args else None
    return (_marker(args[0]) or _strip(args[0])) if args else None


def _union_member(tp: Any, tag: str) -> type[BaseModel] | None:
    tp = _strip(tp)
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for arg in typing.get_args(tp):
        arg = _strip(arg)
        if _is_model(arg):
            for key in ("family", "kind"):
                field = arg.model_fields.get(key)
                if field is not None and typing.get_args(field.annotation) == (tag,):
                    return arg
    return None


def _describe(error: dict[str, Any], parent: type[BaseModel] | None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = _show(error.get("input"))
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        fields = list(parent.model_fields) if parent is not None else []
        return f"unknown key {key!r}{_did_you_mean(key, fields)}"
    if kind == "missing":
        return "required, but missing"
    if kind in ("union_tag_invalid", "literal_error"):
        expected = ctx.get("expected_tags") or ctx.get("expected")
        return f"expected one of {expected}, got {got}"
    if kind == "missing_tag":
        return f"required, but missing: one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        if not isinstance(error.get("input"), dict):
            return f"expected a table, got {got}"
        return f"needs a {str(ctx.get('discriminator', 'kind')).strip(chr(39) + '()')!r} key"
    noun = {"int": "an integer", "float": "a number", "string": "a string", "bool": "true or false",
            "tuple": "a list", "list": "a list", "model": "a table", "dict": "a table"}
    for prefix, word in noun.items():
        if kind.startswith(prefix + "_") and kind.endswith(("_type", "_parsing", "_attributes_type")):
            return f"expected {word}, got {got}"
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        op, key = bounds[kind]
        field = parent.model_fields.get(str(error["loc"][-1])) if parent is not None else None
        word = "an integer" if field is not None and _strip(field.annotation) in (int, int | None) else "a number"
        return f"expected {word} {op} {ctx.get(key)}, got {got}"
    if kind in ("too_short", "too_long"):
        what = "entries" if isinstance(error.get("input"), (list, tuple)) else "characters"
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"expected {'at least' if kind == 'too_short' else 'at most'} {bound} {what}, got {got}"
    if kind == "string_pattern_mismatch":
        return f"expected letters, digits, '_', '-' or '.' (not '.' or '..' alone), got {got}"
    if kind == "finite_number":
        return f"expected a finite number, got {got}"
    return f"{error['msg'].lower()}, got {got}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return "a list of %d entries" % len(value)
    if isinstance(value, tuple):
        value = list(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _did_you_mean(key: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- checks across tables
def _check_references(sc: Scenario, source: str | None) -> None:
    def fail(path: str, message: str) -> None:
        raise ScenarioError(path, message, source=source)

    _check_unique([p.name for p in sc.publishers], "publishers", fail)
    _check_unique([lab.name for lab in sc.labs], "labs", fail)
    lab_names = [lab.name for lab in sc.labs]
    lang = sc.language
    for i, pub in enumerate(sc.publishers):
        for j, name in enumerate(pub.uses or ()):
            if name not in lab_names:
                fail(f"publishers[{i}].uses[{j}]", f"no lab named {name!r}{_did_you_mean(name, lab_names)}")
        if lang.family == "gaussian" and pub.top_p < 1.0:
            fail(f"publishers[{i}].top_p", f"top-p sampling needs a discrete language, got {pub.top_p} with gaussian")
    if lang.family == "categorical" and lang.probs is not None:
        if len(lang.probs) != lang.outcomes:
            fail("language.probs", f"expected {lang.outcomes} probabilities (language.outcomes), got {len(lang.probs)}")
        if any(not math.isfinite(p) or p < 0 for p in lang.probs) or not math.isclose(sum(lang.probs), 1.0, abs_tol=1e-9):
            fail("language.probs", f"expected non-negative probabilities summing to 1, got {list(lang.probs)}")
    from simweb.plugins import registry

    for i, lab in enumerate(sc.labs):
        family = registry.get("model", lab.model.family).cls
        allowed = getattr(family, "languages", ())
        if lang.family not in allowed:
            fits = [e.name for e in registry.entries("model") if lang.family in getattr(e.cls, "languages", ())]
            fail(f"labs[{i}].model.family",
                 f"a {lang.family} language needs a model of family {' or '.join(map(repr, fits))}, "
                 f"got {lab.model.family!r}")
        if lab.prior is not None and lab.prior.toward == "uniform" and lang.family == "gaussian":
            fail(f"labs[{i}].prior.toward", "a gaussian has no uniform reference; use 'first_generation', got 'uniform'")
        if lab.first_release >= sc.run.ticks:
            fail(f"labs[{i}].first_release", f"expected a tick < run.ticks ({sc.run.ticks}), got {lab.first_release}")
        first_archive = lab.snapshot_tick(lab.first_release)
        if first_archive is not None and first_archive > lab.first_release:
            fail(f"labs[{i}].snapshot", f"tick {first_archive} is in the future at the lab's first crawl "
                 f"(labs[{i}].first_release = {lab.first_release}): an archive holds only the past")
        if first_archive is not None and first_archive < 0:
            fail(f"labs[{i}].snapshot", f"{lab.snapshot!r} at the first release (tick {lab.first_release}) is "
                 f"tick {first_archive}, before the web began")
        if lab.reserve_fraction > 0 and lab.reserve_docs == 0:
            fail(f"labs[{i}].reserve_fraction",
                 f"needs labs[{i}].reserve_docs >= 1 to draw from, got reserve_fraction {lab.reserve_fraction}")
    tokens = lang.family == "markov"
    for i, pub in enumerate(sc.publishers):
        if pub.edit_fraction > 0 and not tokens:
            fail(f"publishers[{i}].edit_fraction", f"edits rewrite tokens and need a markov language, got {lang.family}")
    # every plugin table checks itself against the whole scenario (a population it names must exist, ...)
    tables = [(f"labs[{i}].model", lab.model) for i, lab in enumerate(sc.labs)]
    tables += [(f"labs[{i}].regime", lab.regime) for i, lab in enumerate(sc.labs)]
    tables += [(f"labs[{i}].filters[{j}]", f) for i, lab in enumerate(sc.labs) for j, f in enumerate(lab.filters)]
    tables += [(f"publishers[{i}].behaviours[{j}]", b) for i, p in enumerate(sc.publishers)
               for j, b in enumerate(p.behaviours or ())]
    for where, table in tables:
        if hasattr(table, "check"):
            table.check(sc, where, fail)
    for i, lab in enumerate(sc.labs):
        if lab.watermark is not None and not tokens:
            fail(f"labs[{i}].watermark", f"a watermark biases tokens and needs a markov language, got {lang.family}")
    _check_consent(sc, lab_names, fail)
    _check_humans(sc, fail)
    _check_forensics(sc, fail)
    _check_drift(sc, fail)
    if not any(lab.market_share > 0 for lab in sc.labs):
        fail("labs", "at least one lab needs market_share > 0, or no publisher could use a model")


def _check_forensics(sc: Scenario, fail) -> None:
    if sc.evaluation.forensics_tokens is not None:
        if sc.language.family not in TOKEN_LANGUAGES:
            fail("evaluation.forensics_tokens", f"watermark forensics count green tokens and need a markov language, "
                 f"got {sc.language.family}")
        if not any(lab.watermark is not None for lab in sc.labs):
            fail("evaluation.forensics_tokens", f"no lab watermarks, so there is no key to test for; set "
                 f"labs[].watermark or leave it out, got {sc.evaluation.forensics_tokens}")


def _check_humans(sc: Scenario, fail) -> None:
    """Imitation rises (or holds), and a reserve refreshed every generation has a size to refresh."""
    for i, pub in enumerate(sc.publishers):
        if pub.imitation is not None and pub.imitation.end < pub.imitation.start:
            fail(f"publishers[{i}].imitation.end", f"expected >= imitation.start ({pub.imitation.start}): humans "
                 f"who have learnt to write like models do not unlearn it, got {pub.imitation.end}")
        if pub.launder is not None:  # a shorthand for the launder behaviour: checked as that behaviour
            from simweb.behaviours import launder_config

            launder_config(pub.launder).check(sc, f"publishers[{i}].launder", fail)
    for i, lab in enumerate(sc.labs):
        if lab.reserve_vintage == "current" and lab.reserve_fraction == 0:
            fail(f"labs[{i}].reserve_vintage", f"'current' refreshes a reserve the lab draws from; needs "
                 f"labs[{i}].reserve_fraction > 0, got reserve_fraction {lab.reserve_fraction}")


def _check_consent(sc: Scenario, lab_names: list[str], fail) -> None:
    """Opt-outs name labs, licences name populations, distillation names another lab; a budget covers its licences."""
    populations = [p.name for p in sc.publishers]
    for i, pub in enumerate(sc.publishers):
        if pub.opt_out is not None and pub.opt_out.end < pub.opt_out.start:
            fail(f"publishers[{i}].opt_out.end", f"expected >= opt_out.start ({pub.opt_out.start}): a site never "
                 f"lifts its block, got {pub.opt_out.end}")
        for j, name in enumerate((pub.opt_out.labs or ()) if pub.opt_out is not None else ()):
            if name not in lab_names:
                fail(f"publishers[{i}].opt_out.labs[{j}]", f"no lab named {name!r}{_did_you_mean(name, lab_names)}")
    for i, lab in enumerate(sc.labs):
        for j, licence in enumerate(lab.licences or ()):
            if licence.population not in populations:
                fail(f"labs[{i}].licences[{j}].population",
                     f"no publisher population named {licence.population!r}{_did_you_mean(licence.population, populations)}")
        price = sum(licence.price for licence in lab.licences or ())
        if lab.budget is not None and lab.budget < price:
            fail(f"labs[{i}].budget", f"expected at least the licences' price per generation ({price:g}), got {lab.budget:g}")
        for j, d in enumerate(lab.distill or ()):
            if d.source not in lab_names:
                fail(f"labs[{i}].distill[{j}].from", f"no lab named {d.source!r}{_did_you_mean(d.source, lab_names)}")
            if d.source == lab.name:
                fail(f"labs[{i}].distill[{j}].from", f"a lab cannot distil itself (see self_augment), got {d.source!r}")
            if sc.labs[lab_names.index(d.source)].model.family != lab.model.family and sc.language.family != "markov":
                fail(f"labs[{i}].distill[{j}].from", f"samples of a {sc.labs[lab_names.index(d.source)].model.family} "
                     f"model cannot train a {lab.model.family} model")


def _check_drift(sc: Scenario, fail) -> None:
    """New topics need reserved tokens, and room for the births a run will see; events fall in the run."""
    lang, ticks = sc.language, sc.run.ticks
    drift = getattr(lang, "drift", None)
    if lang.family != "markov" or drift is None:
        return
    V, R, rate = lang.vocab_size, drift.reserved_vocab, drift.new_topics_per_tick
    if R is not None and R >= V:
        fail("language.drift.reserved_vocab", f"expected fewer than language.vocab_size ({V}) tokens, got {R}")
    if rate:
        if R is None:
            fail("language.drift.reserved_vocab", f"new topics need tokens of their own: required with "
                 f"new_topics_per_tick > 0 (got {rate:g})")
        n = drift.new_topic_tokens or 4
        room = R // n
        born = rate * (ticks - 1)  # births at ticks 1 .. ticks − 1: Poisson(born)
        need = math.ceil(born + 4 * math.sqrt(born))
        if room < need:
            fail("language.drift.new_topics_per_tick",
                 f"{rate:g} a tick over run.ticks = {ticks} is about {born:.3g} new topics (room for {need} needed, "
                 f"the mean + 4 sd), but reserved_vocab = {R} holds {room} of new_topic_tokens = {n} each")
        if lang.topics + room > 1024:
            fail("language.drift.reserved_vocab", f"room for {room} new topics ({R} // new_topic_tokens = {n}) "
                 f"and language.topics = {lang.topics} make more than 1024 topics, got {R}")
    for j, event in enumerate(drift.events or ()):
        if event.tick >= ticks:
            fail(f"language.drift.events[{j}].tick", f"expected a tick < run.ticks ({ticks}), got {event.tick}")
        if event.topic >= lang.topics:
            fail(f"language.drift.events[{j}].topic",
                 f"expected one of the initial topics, < language.topics ({lang.topics}), got {event.topic}")
    if drift.events and drift.half_life is None:
        fail("language.drift.half_life", "events need a half-life (ticks for a surge to halve): required, but missing")


def _check_unique(names: list[str], table: str, fail) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            fail(f"{table}[{i}].name", f"duplicate name {name!r} (also {table}[{seen[name]}])")
        seen[name] = i


# ---------------------------------------------------------------- plumbing
def _thaw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def _copy(value: Any) -> Any:
    return _thaw(value)
