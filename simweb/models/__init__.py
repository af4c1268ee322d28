"""Model families: what a lab trains. Each is a registered plugin (``@simweb.model``) with one interface:

- ``Config`` (its TOML keys), ``languages`` (the language families it can model), ``from_config(cfg, language)``;
- ``fit(content, *, rng, prior=None) -> self`` on a corpus of fixed-width rows (``prior``: a :class:`Prior`);
- ``noise(n, *, rng)`` and ``draw(noise, *, temperature, top_p, watermark)``: row i of the noise alone
  decides document i, so the web does not depend on who writes it; ``sample(n, *, rng, ...)`` = both;
- ``log_prob(content) -> (n,)`` nats per document (token families also give ``token_log_prob -> (n, L)``);
- ``state_dict() -> dict[str, ndarray]`` and ``load_state_dict(state)``: plain arrays only;
- optionally ``resources(cfg, cluster) -> {"gpus": n}`` (what its trainer reserves);
- optionally ``sampling_tables(settings)`` and ``adopt_tables(tables)``: what it draws with, derived from the state,
  for each (temperature, top_p, watermark) in ``settings``; the trainer builds them once at release and every
  process that rebuilds the released model adopts them (the ngram family's alias tables).

The transformer family imports torch only when a lab trains one.
"""

from __future__ import annotations

from simweb.models import ngram, simple, transformer  # noqa: F401 - each registers its family
from simweb.models.ngram import NgramModel
from simweb.models.prior import Prior
from simweb.models.simple import CategoricalModel, GaussianModel

__all__ = ["build_model", "resources", "NgramModel", "GaussianModel", "CategoricalModel", "Prior"]


def build_model(cfg, language):
    """An unfitted model of the family ``cfg`` names, shaped for ``language``."""
    from simweb.plugins import registry

    return registry.get("model", cfg.family).cls.from_config(cfg, language)


def resources(cfg, cluster: dict) -> dict[str, float]:
    """What a trainer of this model reserves (e.g. a GPU)."""
    from simweb.plugins import registry

    family = registry.get("model", cfg.family).cls
    return dict(family.resources(cfg, cluster)) if hasattr(family, "resources") else {}
