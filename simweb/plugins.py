"""simweb's plugin API: filters, model families, trainer regimes and publisher behaviours as registered classes.

A policy is a class registered under a kind name; a scenario names it exactly as it names a built-in
(``filters = [{ kind = "odd_sites" }]``), and simweb's own policies are registered through the same
decorators. Each plugin declares a pydantic ``Config`` (its TOML keys, validated like every other
table) and what it ``needs``::

    import numpy as np, simweb

    @simweb.filter("odd_sites")
    class OddSites:
        class Config(simweb.PluginConfig):
            modulus: int = 2
        needs = ("history",)
        def __init__(self, config): self.config, self.seen = config, 0
        def keep(self, batch, *, rng):
            self.seen += len(batch)
            return np.asarray(batch.site_id) % self.config.modulus == 0
        def state(self): return {"seen": np.array(self.seen)}
        def restore(self, state): self.seen = int(state["seen"])

Any plugin class may also declare a classmethod ``memory_bytes(cfg, scenario) -> int``: the peak bytes it
needs in a process beyond the data simweb already counts (a model family: one model, fitted, scored and
sampled from; a filter, regime or behaviour: what it keeps and builds). :mod:`simweb.cost` adds it to the
estimate it checks before a run; a plugin without it counts as nothing (and ``simweb validate`` says so
for a model family).

Plugins come from ``--plugin FILE.py|module`` or ``simweb.run(..., plugins=[...])``; scenario files
stay data. A plugin's source travels with the run (:class:`PluginSource`), so every Ray worker
loads the same code, and the manifest records its hash.

The registry is the one piece of module state in simweb: like a class definition, it is filled when
a module that declares plugins is imported, and never changes during a run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from simweb.errors import SimwebError

__all__ = ["PluginConfig", "PluginError", "PluginSource", "filter", "model", "regime", "publisher_behaviour",
           "registry", "load_plugins", "plugin_sources", "NEEDS"]


class PluginConfig(BaseModel):
    """Base of every plugin's ``Config``: its TOML keys; unknown keys and non-finite numbers are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class PluginError(SimwebError):
    """A plugin broke its contract (a missing method, a wrong result, an import that failed)."""


# what each kind may declare in ``needs``
NEEDS = {
    "filter": {"tokens", "model", "calibration", "graph", "history", "truth"},
    "model": set(),
    "regime": {"pool"},
    "behaviour": set(),
}
# the methods a class of each kind must have
REQUIRED = {
    "filter": ("keep",),
    "model": ("fit", "noise", "draw", "sample", "log_prob", "state_dict", "load_state_dict"),
    "regime": ("select",),
    "behaviour": ("apply",),
}
TAG = {"filter": "kind", "model": "family", "regime": "kind", "behaviour": "kind"}
WORD = {"filter": "filter", "model": "model family", "regime": "regime", "behaviour": "publisher behaviour"}


@dataclass(frozen=True)
class Entry:
    """One registered plugin: its class, the config model a scenario table is validated with, what it needs."""

    kind: str
    name: str
    cls: type
    config: type[BaseModel]  # the plugin's Config plus the tag field (kind / family)
    needs: frozenset[str]
    origin: str  # "simweb", or the plugin source that registered it

    @property
    def builtin(self) -> bool:
        return self.origin == "simweb"


class Registry:
    def __init__(self):
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in NEEDS}
        self._builtins_loaded = False

    def add(self, kind: str, name: str, cls: type, origin: str) -> Entry:
        word = WORD[kind]
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise PluginError(f"{word} name {name!r}: expected letters, digits and '_'")
        missing = [m for m in REQUIRED[kind] if not callable(getattr(cls, m, None))]
        needs = frozenset(getattr(cls, "needs", ()) or ())
        unknown = sorted(needs - NEEDS[kind])
        if unknown:
            raise PluginError(f"{word} {name!r}: unknown needs {unknown}; a {word} may need {sorted(NEEDS[kind])}")
        if "history" in needs:
            missing += [m for m in ("state", "restore") if not callable(getattr(cls, m, None))]
        if missing:
            raise PluginError(f"{word} {name!r} ({cls.__qualname__}) lacks {', '.join(missing)}")
        base = getattr(cls, "Config", PluginConfig)
        if not (isinstance(base, type) and issubclass(base, BaseModel)):
            raise PluginError(f"{word} {name!r}: Config must subclass simweb.PluginConfig")
        tag = TAG[kind]
        config = create_model(f"{cls.__name__}Config", __base__=base, __module__=cls.__module__,
                              **{tag: (Literal[name], name)})
        config.__doc__ = base.__doc__ or cls.__doc__
        known = self._entries[kind].get(name)
        if known is not None and known.origin != origin and not _same_source(known.cls, cls):
            raise PluginError(f"{word} {name!r} is already registered by {known.origin}; choose another name")
        entry = Entry(kind, name, cls, config, needs, origin)
        self._entries[kind][name] = entry
        return entry

    def get(self, kind: str, name: str) -> Entry:
        self.load_builtins()
        try:
            return self._entries[kind][name]
        except KeyError:
            raise PluginError(f"no {WORD[kind]} named {name!r}") from None

    def names(self, kind: str) -> list[str]:
        self.load_builtins()
        return list(self._entries[kind])

    def entries(self, kind: str) -> list[Entry]:
        self.load_builtins()
        return list(self._entries[kind].values())

    def load_builtins(self) -> None:
        """Import simweb's own plugins (once): they register themselves like any other."""
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for module in ("simweb.filters", "simweb.models", "simweb.regimes", "simweb.behaviours"):
                importlib.import_module(module)


registry = Registry()


def _same_source(a: type, b: type) -> bool:
    """The same class loaded twice (a user's script, and its source shipped as a plugin)."""
    try:
        return a.__qualname__ == b.__qualname__ and inspect.getsource(a) == inspect.getsource(b)
    except (OSError, TypeError):
        return False


def _origin(cls: type) -> str:
    module = getattr(cls, "__module__", "")
    if module == "simweb" or module.startswith("simweb."):
        return "simweb"
    return getattr(sys.modules.get(module), "__simweb_plugin__", module)


def _decorator(kind: str, name: str):
    def register(cls: type) -> type:
        registry.add(kind, name, cls, _origin(cls))
        return cls
    return register


def filter(name: str):  # noqa: A001 - the public name the API promises (simweb.filter)
    """Register a filter: ``Config``, ``needs`` (tokens, model, calibration, graph, history, truth),
    ``keep(batch, *, rng) -> bool array``; with ``history``, ``state()`` / ``restore(state)``; optionally
    ``after_crawl(kept)`` to see what the whole chain kept."""
    return _decorator("filter", name)


def model(name: str):
    """Register a model family: ``Config``, ``languages`` (language families it fits), ``from_config(cfg,
    language)``, ``fit(docs, *, rng, prior)``, ``noise``/``draw``/``sample``, ``log_prob``, ``state_dict`` /
    ``load_state_dict``; optionally ``resources(cfg, cluster) -> {"gpus": n}``, ``check(cfg, scenario, where)``
    and ``memory_bytes(cfg, scenario) -> int`` (peak bytes of one model, for the cost estimate), and
    ``sampling_tables(settings)`` / ``adopt_tables(tables)``: tables derived from the state for each (temperature,
    top_p, watermark) in ``settings``, built once by the trainer at release and adopted by every process that
    rebuilds the released model."""
    return _decorator("model", name)


def regime(name: str):
    """Register a trainer regime: ``Config``, ``needs`` (``pool``: every page kept so far, else the latest
    crawl only), ``select(pool, *, generation, rng) -> row indices`` of the pages to train on."""
    return _decorator("regime", name)


def publisher_behaviour(name: str):
    """Register a publisher behaviour: ``Config`` and ``apply(drafts, *, rng)``, which rewrites the AI
    drafts of one (population, tick, block of sites) in place before they are published."""
    return _decorator("behaviour", name)


# ---------------------------------------------------------------- where plugins come from
@dataclass(frozen=True)
class PluginSource:
    """A plugin module's source, as it travels with a run: loaded the same way in every process."""

    name: str  # the file's stem or the module's name
    source: str
    path: str  # where it was read from (for messages)
    module: str | None = None  # the module it came from, when it is imported in this process already

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def module_name(self) -> str:
        return f"simweb_plugin_{self.name}_{self.sha256[:12]}"

    def load(self) -> types.ModuleType:
        """Execute the source as a module (once per process); its decorators register its plugins."""
        here = sys.modules.get(self.module) if self.module else None
        if here is not None and getattr(here, "__file__", None) == self.path:
            return here  # the user's own module, imported here already: its plugins are registered
        module = sys.modules.get(self.module_name)
        if module is not None:
            return module
        module = types.ModuleType(self.module_name)
        module.__file__ = self.path
        module.__simweb_plugin__ = f"plugin {self.name!r}"
        module.__simweb_source__ = self
        sys.modules[self.module_name] = module
        try:
            exec(compile(self.source, self.path, "exec"), module.__dict__)
        except PluginError as err:
            del sys.modules[self.module_name]
            raise PluginError(f"--plugin {self.path}: {err}") from None
        except BaseException as err:
            del sys.modules[self.module_name]
            raise PluginError(f"--plugin {self.path}: cannot import it: {type(err).__name__}: "
                              f"{_first_line(err)}") from None
        return module

    def record(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256}


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else ""


def plugin_sources(plugins) -> tuple[PluginSource, ...]:
    """Turn what a user names — file paths, module names, module objects, or classes defined in one — into
    sources. A module is re-executed under its own name (never ``__main__``), so a script that defines
    plugins must keep its work under ``if __name__ == "__main__":``."""
    out: list[PluginSource] = []
    for item in plugins or ():
        if isinstance(item, PluginSource):
            out.append(item)
            continue
        if isinstance(item, type):
            item = sys.modules.get(item.__module__)
            if item is None:
                raise PluginError(f"--plugin: the module of {item!r} cannot be found")
        if isinstance(item, types.ModuleType):
            out.append(_from_module(item))
            continue
        text = str(item)
        path = Path(text)
        if text.endswith(".py") or path.is_file():
            if not path.is_file():
                raise PluginError(f"--plugin {text}: no such file")
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise PluginError(f"--plugin {text}: cannot read it: {err}") from None
            out.append(PluginSource(path.stem, source, str(path)))
            continue
        try:
            spec = importlib.util.find_spec(text)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            raise PluginError(f"--plugin {text}: no such file or importable module")
        out.append(PluginSource(text.replace(".", "_"), Path(spec.origin).read_text(encoding="utf-8"), spec.origin))
    names = [p.name for p in out]
    for name in names:
        if names.count(name) > 1:
            raise PluginError(f"--plugin: two plugins are named {name!r}")
    return tuple(out)


def _from_module(module: types.ModuleType) -> PluginSource:
    if isinstance(getattr(module, "__simweb_source__", None), PluginSource):  # loaded from a source already
        return module.__simweb_source__
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        raise PluginError(f"--plugin: the source of module {module.__name__!r} cannot be read") from None
    path = getattr(module, "__file__", None) or module.__name__
    stem = Path(path).stem if module.__name__ == "__main__" else module.__name__.replace(".", "_")
    return PluginSource(stem, source, path, module.__name__)


def load_plugins(sources) -> tuple[PluginSource, ...]:
    """Load plugin sources into this process (idempotent); returns them."""
    sources = plugin_sources(sources)
    for src in sources:
        src.load()
    return sources


def config_model(kind: str, name: str) -> type[BaseModel]:
    return registry.get(kind, name).config


def parse_config(kind: str, value: Any, *, default: str | None = None) -> BaseModel:
    """Validate one scenario table of a plugin kind (or a bare name) against the registered config model."""
    if isinstance(value, BaseModel):
        return value
    tag = TAG[kind]
    bare = isinstance(value, str) and kind == "regime"
    if bare:
        value = {tag: value}
    if not isinstance(value, dict):
        raise _tag_error(kind, value, None)
    name = value.get(tag, default)
    if name is None:
        raise _tag_error(kind, None, None, missing=True)
    if not isinstance(name, str) or name not in registry.names(kind):
        raise _tag_error(kind, name, value, bare=bare)
    return registry.get(kind, name).config.model_validate(value)


def _tag_error(kind: str, got, value, *, missing: bool = False, bare: bool = False):
    from pydantic_core import PydanticCustomError

    names = registry.names(kind)
    if missing:
        return PydanticCustomError("plugin_missing", "required, but missing: one of {names}",
                                   {"names": names, "tag": TAG[kind]})
    if value is None:
        return PydanticCustomError("plugin_table", "expected a table, got {got}", {"got": got})
    return PydanticCustomError("plugin_unknown", "{names}", {"names": names, "got": got, "what": WORD[kind],
                                                             "tag": "" if bare else TAG[kind]})
