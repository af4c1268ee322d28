"""Model families: what a lab trains.

One interface for every family (the torch transformer will fit it too):

- ``fit(content, *, rng, prior=None) -> self`` on a corpus of fixed-width rows (``prior``: a :class:`Prior`);
- ``sample(n, *, rng, temperature=1.0, top_p=1.0, watermark=None) -> content``;
- ``log_prob(content) -> (n,)`` nats per document (token families also give
  ``token_log_prob(content) -> (n, L)``);
- ``state_dict() -> dict[str, ndarray]`` and ``load_state_dict(state)``: plain arrays only.
"""

from __future__ import annotations

from simweb.models.ngram import NgramModel
from simweb.models.prior import Prior
from simweb.models.simple import CategoricalModel, GaussianModel

__all__ = ["build_model", "NgramModel", "GaussianModel", "CategoricalModel", "Prior"]

_FAMILIES = {"ngram": NgramModel, "gaussian": GaussianModel, "categorical": CategoricalModel}


def _family(name: str):
    if name == "transformer":  # torch is imported only by labs that train one
        from simweb.models.transformer import TransformerModel

        return TransformerModel
    return _FAMILIES[name]


def build_model(cfg, language):
    """An unfitted model of the family ``cfg`` names, shaped for ``language``."""
    return _family(cfg.family).from_config(cfg, language)
