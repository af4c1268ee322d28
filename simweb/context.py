"""What every agent of a run shares: the scenario, the seed's streams, the language, plugins and models.

One :class:`AgentContext` is made by the engine and handed to every agent. It travels as text — the
resolved scenario and the plugins' sources — so an agent on any Ray node loads the same plugins
and validates the same scenario; everything built from it (the language, model objects rebuilt
from released states, the evaluator's human sample) is built once per process, on first use.
"""

from __future__ import annotations

import weakref

import numpy as np

from simweb import rng as rngs

__all__ = ["AgentContext"]


_IN_PROCESS: "weakref.WeakValueDictionary[tuple, AgentContext]" = weakref.WeakValueDictionary()


class AgentContext:
    def __init__(self, scenario_toml: str, plugins=(), *, scenario=None):
        self.scenario_toml = scenario_toml
        self.plugins = tuple(plugins)  # PluginSource s
        self._scenario = scenario
        self._cache: dict = {}

    def __getstate__(self):  # only the text travels; the rest is rebuilt where it lands
        return {"scenario_toml": self.scenario_toml, "plugins": self.plugins}

    def __setstate__(self, state):
        self.__init__(state["scenario_toml"], state["plugins"])
        # agents of one run in one process (a Ray host) share what is built from the text: built once there
        key = (self.scenario_toml, tuple(p.sha256 for p in self.plugins))
        twin = _IN_PROCESS.get(key)
        if twin is None:
            _IN_PROCESS[key] = self
        else:
            self._cache, self._scenario = twin._cache, twin.scenario

    @property
    def scenario(self):
        if self._scenario is None:
            from simweb.plugins import load_plugins
            from simweb.scenario import parse_scenario

            load_plugins(self.plugins)
            self._scenario = parse_scenario(self.scenario_toml)
        return self._scenario

    @property
    def seed(self) -> int:
        return self.scenario.run.seed

    def stream(self, *key) -> np.random.Generator:
        """The named random stream ``key`` of this run (:func:`simweb.rng.stream`)."""
        return rngs.stream(self.seed, *key)

    @property
    def language(self):
        if "language" not in self._cache:
            from simweb.language import build_language

            self._cache["language"] = build_language(self.scenario.language, self.seed)
        return self._cache["language"]

    @property
    def evaluator(self):
        """The evaluator (its fresh human sample is the same for every lab): built once per process."""
        if "evaluator" not in self._cache:
            from simweb.agents.evaluator import Evaluator

            self._cache["evaluator"] = Evaluator(self.scenario.evaluation, self.language, self.seed)
        return self._cache["evaluator"]

    def model(self, lab: int, generation: int, state: dict, tables=None):
        """Lab ``lab``'s released model of ``generation``, rebuilt from ``state`` once per process.

        Publishers and scrapers in one process share it, and with it its sampling tables: ``tables`` (built by
        its trainer at release, for a family with the ``sampling_tables`` hook) are adopted, not rebuilt.
        """
        models = self._cache.setdefault("models", {})
        cached = models.get(lab)
        if cached is None or cached[0] != generation:
            from simweb.models import build_model

            model = build_model(self.scenario.labs[lab].model, self.language).load_state_dict(state)
            models[lab] = cached = [generation, model, False]
        if tables is not None and not cached[2]:
            cached[1].adopt_tables(tables)
            cached[2] = True
        return cached[1]

    def watermark_keys(self) -> dict[str, tuple[int, float]]:
        """Lab name → (key, γ) for every lab that watermarks; a detector uses those it is given."""
        from simweb.watermark import key_of

        return {lab.name: (key_of(self.seed, lab.name), lab.watermark.gamma) for lab in self.scenario.labs
                if lab.watermark is not None}
