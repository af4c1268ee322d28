"""Publisher behaviours: how a population turns a released model's draft into a page. Registered plugins.

A behaviour rewrites the AI drafts of one (population, tick, block of sites) in place, before they
are published; its randomness comes from the stream (behaviour name, population, tick, block), so
the web stays the same for any number of shards and a behaviour never touches another's draws.
The built-in ``edit`` is what a population's ``edit_fraction`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import ConfigDict, Field

import simweb.plugins as plugins

__all__ = ["Drafts"]


@dataclass(frozen=True)
class Drafts:
    """One group of pages being written: ``content`` rows (write into them), and which are AI drafts."""

    content: np.ndarray  # (n, width), writable: the group's pages, human ones included
    is_draft: np.ndarray  # bool (n,): an AI draft a behaviour may rewrite (human pages and copies are not)
    lab: np.ndarray  # index of the lab whose model wrote each draft (-1 for human pages)
    site_id: np.ndarray  # read-only
    tick: int
    population: str
    language: object  # the true language (the human writers)
    models: dict  # lab index → that lab's released model (what a humaniser may rewrite with)
    lab_names: tuple = ()  # lab index → its name

    def __len__(self) -> int:
        return len(self.content)


def launder_config(launder):
    """The ``launder`` behaviour's config for a publisher's ``launder`` key, a shorthand for it: published,
    and checked, as that behaviour."""
    return plugins.parse_config("behaviour", {"kind": "launder", "fraction": launder.fraction,
                                              "with": launder.paraphraser})


def _needs_tokens(scenario, where: str, what: str, fail) -> None:
    """A behaviour that rewrites tokens is refused, in one line, on a language that has none."""
    from simweb.scenario.models import TOKEN_LANGUAGES

    family = scenario.language.family
    if family not in TOKEN_LANGUAGES:
        fail(where, f"{what} and needs a markov language, got {family}")


@plugins.publisher_behaviour("edit")
class Edit:
    """Human edits of AI drafts: each token rewritten with probability ``fraction``, by a token humans use
    (drawn from the true unigram law)."""

    class Config(plugins.PluginConfig):
        """Human edits of AI drafts."""

        fraction: float = Field(0.0, ge=0.0, le=1.0)  # share of a draft's tokens rewritten

        def check(self, scenario, where: str, fail) -> None:
            _needs_tokens(scenario, where, "edits rewrite tokens", fail)

    def __init__(self, config):
        self.config = config

    def apply(self, drafts: Drafts, *, rng: np.random.Generator) -> None:
        from simweb.language.simple import inverse_cdf

        f = np.where(drafts.is_draft, self.config.fraction, 0.0)
        if not np.any(f > 0):
            return
        content = drafts.content
        u = rng.random((2,) + content.shape)
        where = u[0] < f[:, None]
        content[where] = inverse_cdf(drafts.language.unigram(), u[1][where]).astype(content.dtype)


@plugins.publisher_behaviour("launder")
class Launder:
    """Paraphrase of AI drafts before publishing (``publishers[].launder``): each token resampled with
    probability ``fraction`` (ρ) by the paraphraser — a human rewrite (``with = "truth"``: a document of
    the true language of the tick) or another lab's released model (an AI humaniser, unwatermarked) —
    at the same position. Until the humaniser's lab has released a model, drafts pass unchanged.

    For the green-list watermark the detector scores each (previous, token) pair: a pair survives only
    when both its tokens do, so the share of scored tokens still carrying the bias is
    f = (1 − ρ)(1 + (T − 1)(1 − ρ)) / T (the first token is scored against the start symbol), and
    E[z] = √T · f · (g − γ) / √(γ(1 − γ)) with g the green probability of the watermarked sampler.
    """

    class Config(plugins.PluginConfig):
        """Paraphrase of AI drafts."""

        fraction: float = Field(0.0, ge=0.0, le=1.0)  # ρ: share of a draft's tokens resampled
        paraphraser: str = Field("truth", alias="with", min_length=1)  # "truth" or a lab's name

        # written back as "with" (the key a scenario reads), so a run's resolved scenario.toml parses again
        model_config = ConfigDict(serialize_by_alias=True)

        def check(self, scenario, where: str, fail) -> None:
            from simweb.scenario.load import _did_you_mean

            names = [lab.name for lab in scenario.labs]
            if self.paraphraser != "truth" and self.paraphraser not in names:
                fail(f"{where}.with", f'expected "truth" or a lab\'s name, got {self.paraphraser!r}'
                     f"{_did_you_mean(self.paraphraser, names + ['truth'])}")
            _needs_tokens(scenario, where, "laundering rewrites tokens", fail)

    def __init__(self, config):
        self.config = config

    def apply(self, drafts: Drafts, *, rng: np.random.Generator) -> None:
        rho = self.config.fraction
        rows = np.flatnonzero(drafts.is_draft)
        if rho <= 0 or len(rows) == 0:
            return
        who = self.config.paraphraser
        if who == "truth":
            source, _ = drafts.language.sample(len(rows), rng=rng)
        else:
            lab = list(drafts.lab_names).index(who)
            try:
                model = drafts.models[lab]
            except KeyError:
                return  # the humaniser has no model yet
            source = model.sample(len(rows), rng=rng, watermark=None)
        content = drafts.content
        where = rng.random((len(rows), content.shape[1])) < rho
        block = content[rows]
        block[where] = np.asarray(source, dtype=content.dtype)[where]
        content[rows] = block
