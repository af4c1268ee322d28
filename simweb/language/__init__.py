"""Ground-truth languages: the human writers of the simulated web.

Every language offers ``sample(n, *, rng, topics=None) -> (content, topics)``,
exact ``log_prob(content)`` in nats per document, and ``entropy``; ``at(tick)``
is the truth of a tick (the same object when the language does not drift). Content is a
fixed-width row per document: tokens for ``markov``, reals for ``gaussian``,
one outcome for ``categorical``.
"""

from __future__ import annotations

from simweb import rng as rngs
from simweb.language.markov import MarkovLanguage
from simweb.language.simple import CategoricalLanguage, GaussianLanguage

__all__ = ["build_language", "MarkovLanguage", "GaussianLanguage", "CategoricalLanguage"]

_FAMILIES = {"markov": MarkovLanguage, "gaussian": GaussianLanguage, "categorical": CategoricalLanguage}


def build_language(cfg, seed: int):
    """The scenario's language; its random structure comes from the stream ("language",), its drift (if any)
    from the streams ("drift", …) (:mod:`simweb.language.drift`)."""
    return _FAMILIES[cfg.family].from_config(cfg, rng=rngs.stream(seed, "language"), seed=seed)
