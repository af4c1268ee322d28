"""The scenario schema: immutable, validated models for every table of a scenario file.

Units: ticks are the simulation's time steps (think months); documents are
pages; token counts are per document. Defaults that stand on a published
figure say which; the rest are scenario assumptions.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, SerializeAsAny, Tag, WrapValidator, field_serializer,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

__all__ = [
    "Adoption", "Imitation", "Launder", "CategoricalDrift", "Event", "CategoricalLanguage", "Distill", "Licence", "OptOut",
    "Evaluation",
    "GaussianDrift", "GaussianLanguage", "PriorConfig", "Lab", "MarkovDrift", "MarkovLanguage",
    "PluginField", "Publisher", "Run", "Scenario", "Web", "TOKEN_LANGUAGES",
]


class _Table(BaseModel):
    # allow_inf_nan=False: a nan or inf passes every bound (nan compares false) and poisons a run silently;
    # it reaches every float of every table, dict values (fpr_multiplier) and tuple items (probs) included
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, value: Any) -> Any:
        """Plain Python lists are accepted where a TOML array is (tables stay immutable: tuples inside)."""
        if isinstance(value, dict):
            return {k: _freeze(v) for k, v in value.items()}
        return value


# A name becomes part of a path (runs/<run.name>-seed<seed>, sweeps/<run.name>): letters, digits, '_ - .',
# but never "." or ".." alone, which would name the directory itself or its parent.
_NAME = r"^(?:[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.{3,})$"


def _tagged(default: str, field: str = "family"):
    """A discriminator that reads ``field`` and falls back to ``default`` when it is absent."""

    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            return value.get(field, default)
        return getattr(value, field, None)

    pick.__name__ = pick.__qualname__ = field  # pydantic names the discriminator by the function
    return Discriminator(pick)


# ---------------------------------------------------------------- run
class Run(_Table):
    name: str = Field("simweb", min_length=1, max_length=100, pattern=_NAME)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    ticks: int = Field(12, ge=1, le=32_767)  # simulation steps; a lab releasing every tick makes as many generations (int16)
    executor: Literal["local", "ray"] = "ray"  # ray: agents as Ray actors (a local cluster if none is given)
    shards: int | None = Field(None, ge=1, le=1024)  # publisher shards (each a process holding the language); default: the cluster's CPUs (1 for local)
    # page content held in memory, all shards together; older ticks spill to disk past it (None: no cap)
    page_memory_mb: float | None = Field(None, gt=0, le=2**30)


# ---------------------------------------------------------------- language (the human writers)
class Event(_Table):
    """News: a topic's popularity jumps at a tick, then decays back (``language.drift.half_life``)."""

    tick: int = Field(ge=1, le=32_766)  # < run.ticks; the truth of tick 0 is the configured one
    topic: int = Field(ge=0, le=1023)  # one of the language's initial topics (< language.topics)
    surge: float = Field(gt=0.0, le=1e6)  # the popularity multiplier at the event's tick (< 1: the topic goes quiet)


class MarkovDrift(_Table):
    """The truth moves (``[language.drift]``; off when absent or every sigma, rate and event is absent or 0).

    The keys added after the walks default to None (off), so a scenario without them resolves, and runs, as before.
    """

    topic_sigma: float = Field(0.0, ge=0.0, le=5.0)  # topic popularity's log-normal walk: sd of a log step a tick
    boost_sigma: float = Field(0.0, ge=0.0, le=5.0)  # the same for each topic's token boosts: what is said about it
    new_topics_per_tick: float | None = Field(None, ge=0.0, le=1000.0)  # Poisson rate of new topics (None: none)
    reserved_vocab: int | None = Field(None, ge=1, le=65_534)  # the last token ids, kept for new topics' own tokens
    new_topic_tokens: int | None = Field(None, ge=1, le=65_534)  # reserved tokens each new topic takes (None: 4)
    events: tuple[Event, ...] | None = None  # scheduled surges of a topic's popularity
    half_life: float | None = Field(None, gt=0.0, le=1e6)  # ticks for an event's surge to halve (needed by events)


class MarkovLanguage(_Table):
    """Topic mixture of first-order Markov chains over a Zipf vocabulary."""

    family: Literal["markov"] = "markov"
    vocab_size: int = Field(256, ge=2, le=65_535)
    zipf_exponent: float = Field(1.1, ge=0.0, le=5.0)  # token frequency ∝ rank^-s; ~1 for natural text (Zipf)
    topics: int = Field(8, ge=1, le=1024)
    topic_zipf_exponent: float = Field(1.0, ge=0.0, le=5.0)  # topic popularity ∝ rank^-s
    doc_length: int = Field(64, ge=2, le=4096)  # tokens per document
    classes: int = Field(16, ge=1, le=1024)  # word classes: the next token's law depends on the class of the last
    topic_strength: float = Field(1.0, ge=0.0, le=5.0)  # log-normal sigma of each topic's token boosts
    class_strength: float = Field(1.5, ge=0.0, le=5.0)  # log-normal sigma of class-to-class affinities
    drift: MarkovDrift | None = None  # topic popularity and boosts walk; None = a stationary truth

    @property
    def width(self) -> int:
        """Values in one page: its tokens."""
        return self.doc_length

    def new_topic_room(self) -> int:
        """How many new topics the reserved vocabulary holds (0 when none are born): its tables have as many rows
        more than ``topics``."""
        d = self.drift
        if d is None or not d.new_topics_per_tick or not d.reserved_vocab:
            return 0
        return d.reserved_vocab // (d.new_topic_tokens or 4)  # 4: simweb.language.markov.NEW_TOPIC_TOKENS


class GaussianDrift(_Table):
    """The truth moves: its mean does a gaussian random walk (``[language.drift]``; off when absent or 0)."""

    mean_step_sd: float = Field(0.0, ge=0.0, le=1e6)  # τ: sd of the mean's step per tick, per dimension


class GaussianLanguage(_Table):
    """A d-dimensional normal with diagonal covariance."""

    family: Literal["gaussian"]
    dim: int = Field(1, ge=1, le=1024)
    mean: float = Field(0.0, ge=-1e6, le=1e6)
    std: float = Field(1.0, gt=0.0, le=1e6)
    drift: GaussianDrift | None = None  # the mean's random walk; None = a stationary truth

    @property
    def width(self) -> int:
        """Values in one page: its ``dim`` coordinates."""
        return self.dim


class CategoricalDrift(_Table):
    """The truth moves: its logits do a gaussian random walk (``[language.drift]``; off when absent or 0)."""

    logit_step_sd: float = Field(0.0, ge=0.0, le=100.0)  # sd of each outcome's logit step per tick


class CategoricalLanguage(_Table):
    """K outcomes with given probabilities, or Zipf probabilities when none are given."""

    family: Literal["categorical"]
    outcomes: int = Field(10, ge=2, le=1_000_000)
    probs: tuple[float, ...] | None = None
    zipf_exponent: float = Field(1.0, ge=0.0, le=5.0)
    drift: CategoricalDrift | None = None  # the logits' random walk; None = a stationary truth

    @property
    def width(self) -> int:
        """Values in one page: one outcome."""
        return 1


Language = Annotated[
    Union[
        Annotated[MarkovLanguage, Tag("markov")],
        Annotated[GaussianLanguage, Tag("gaussian")],
        Annotated[CategoricalLanguage, Tag("categorical")],
    ],
    _tagged("markov"),
]
TOKEN_LANGUAGES = ("markov",)


# ---------------------------------------------------------------- web
class Web(_Table):
    initial_sites: int = Field(200, ge=1, le=10_000_000)
    sites_per_tick: int = Field(10, ge=0, le=65_000)  # initial_sites + sites_per_tick × ticks must fit site_id (int32)
    links_per_site: int = Field(3, ge=1, le=1000)  # out-links a new site makes (preferential attachment)
    homophily: float = Field(4.0, ge=1.0, le=1000.0)  # link weight multiplier for a target of the same topic


# ---------------------------------------------------------------- publishers
class Adoption(_Table):
    """Logistic share of new pages that are AI-written: start + (end-start) / (1 + exp(-rate (t - midpoint)))."""

    start: float = Field(0.0, ge=0.0, le=1.0)
    end: float = Field(0.5, ge=0.0, le=1.0)  # ~0.5: share of new English web articles AI-written since 2025 (REFERENCES.md)
    midpoint: float = Field(6.0, ge=-1e6, le=1e6)  # tick of the steepest rise
    rate: float = Field(1.0, ge=0.0, le=100.0)  # per tick


class OptOut(_Table):
    """Logistic share of a population's sites that disallow AI crawlers (robots.txt), over ticks.

    start + (end − start) / (1 + exp(−rate · (tick − midpoint))), as ``ai_adoption``. A site never lifts its
    block, so ``end`` >= ``start``. Longpre et al. 2024 ("Consent in Crisis"): in one year robots.txt came to
    block >= 5 % of C4's tokens and >= 28 % of its most critical sources (REFERENCES.md).
    """

    start: float = Field(0.0, ge=0.0, le=1.0)
    end: float = Field(0.05, ge=0.0, le=1.0)
    midpoint: float = Field(6.0, ge=-1e6, le=1e6)  # tick of the steepest rise
    rate: float = Field(1.0, ge=0.0, le=100.0)  # per tick
    # >= 0: a site's chance to be the next to block ∝ exp(by_reputation · its PageRank percentile); 0 = uniform
    by_reputation: float = Field(0.0, ge=0.0, le=100.0)
    labs: tuple[str, ...] | None = None  # the labs its sites refuse; None = every lab


class Imitation(_Table):
    """Logistic share κ_t of a human page's tokens written under a model's influence, over ticks.

    κ_t = start + (end − start) / (1 + exp(−rate · (tick − midpoint))), as ``ai_adoption``. Each human page
    takes a Binomial(length, κ_t) number of its tokens from a released model (picked by market share) and
    the rest from the truth; it stays ``origin = human``. Humans come to write like models: ≥ 10 % of 2024
    PubMed abstracts were LLM-processed (Kobak et al.); "GPT words" rise in speech (Yakura et al.,
    arXiv 2409.01754). The figures here are scenario assumptions.
    """

    start: float = Field(0.0, ge=0.0, le=1.0)
    end: float = Field(0.1, ge=0.0, le=1.0)
    midpoint: float = Field(6.0, ge=-1e6, le=1e6)  # tick of the steepest rise
    rate: float = Field(1.0, ge=0.0, le=100.0)  # per tick


class Launder(_Table):
    """AI drafts paraphrased before publishing: a share ρ of their tokens resampled by a human rewrite
    (``with = "truth"``) or another lab's model (an AI humaniser, unwatermarked). The page keeps its AI
    origin. DetectGPT's accuracy falls from 70.3 % to 4.6 % after DIPPER paraphrase (Krishna et al.,
    arXiv 2303.13408); a watermark needs ~800 tokens after strong human paraphrase (Kirchenbauer et al.,
    arXiv 2306.04634)."""

    fraction: float = Field(ge=0.0, le=1.0)  # ρ: each token of a draft resampled with this probability
    paraphraser: str = Field("truth", alias="with", min_length=1)  # "truth" or a lab's name

    model_config = ConfigDict(populate_by_name=False, serialize_by_alias=True)


class Publisher(_Table):
    name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    site_share: float = Field(gt=0.0, le=1.0)  # share of sites this population owns (normalised over populations)
    initial_pages: int = Field(0, ge=0, le=1_000_000_000)  # human pages published at tick 0
    pages_per_tick: int = Field(100, ge=0, le=1_000_000_000)
    topic_focus: float = Field(0.8, ge=0.0, le=1.0)  # chance a human page is on its site's topic
    ai_adoption: Adoption = Adoption()
    uses: tuple[str, ...] | None = None  # labs whose models it uses; None = every lab, by market share
    temperature: float = Field(1.0, gt=0.0, le=100.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    c2pa_rate: float = Field(0.0, ge=0.0, le=1.0)  # share of its pages carrying a truthful C2PA label (~0.2 % of images)
    edit_fraction: float = Field(0.0, ge=0.0, le=1.0)  # share of an AI draft's tokens a human rewrites before publishing
    copy_rate: float = Field(0.0, ge=0.0, le=1.0)  # share of its new pages that republish an existing page (content farms)
    behaviours: tuple[Behaviour, ...] | None = None  # plugin behaviours that rewrite AI drafts, in order (after edits)
    strip_c2pa: float = Field(1.0, ge=0.0, le=1.0)  # chance a copy loses the original's C2PA label (platforms re-encode)
    opt_out: OptOut | None = None  # its sites come to refuse AI crawlers (None: never)
    imitation: Imitation | None = None  # its human writers come to write like models (None: never)
    # s: its human pages per tick are × (1 − s · AI adoption of the tick); Stack Overflow's weekly posts fell
    # 16 % after ChatGPT (del Rio-Chanona et al., arXiv 2307.07367). None = 0, never displaced
    displacement: float | None = Field(None, ge=0.0, le=1.0)
    launder: Launder | None = None  # its AI drafts are paraphrased before publishing (None: never)


# ---------------------------------------------------------------- plugin kinds: filters, models, regimes, behaviours
class PluginField:
    """Marks a field whose table is validated by a registered plugin's config (``simweb.plugins``)."""

    def __init__(self, kind: str, default: str | None = None):
        self.kind, self.default = kind, default

    def __call__(self, value: Any, handler, info) -> BaseModel:
        from simweb.plugins import parse_config

        return parse_config(self.kind, value, default=self.default)


def _plugin(kind: str, default: str | None = None):
    return Annotated[SerializeAsAny[BaseModel], WrapValidator(PluginField(kind, default)), PluginField(kind, default)]


Filter = _plugin("filter")
Model = _plugin("model", "ngram")
Regime = _plugin("regime")
Behaviour = _plugin("behaviour")


class WatermarkConfig(_Table):
    """The lab's models write with a green-list watermark (Kirchenbauer et al. 2023)."""

    gamma: float = Field(0.25, gt=0.0, lt=1.0)  # green share of the vocabulary
    delta: float = Field(2.0, ge=0.0, le=50.0)  # logit bias of green tokens


class PriorConfig(_Table):
    """Pseudo-observations toward a reference added to every fit (Jangjoo, Marsili & Roudi 2026's MAP fix)."""

    strength: float = Field(gt=0.0, le=1e12)  # pseudo-counts per context row (ngram), per fit (categorical), pseudo-samples (gaussian)
    toward: Literal["uniform", "first_generation"] = "first_generation"  # the lab's own generation 0, or uniform


class Licence(_Table):
    """Verified human documents of one population bought every generation, past any opt-out.

    Deals: Reddit → Google ≈ $60 M a year; a typical publisher $1–5 M a year (REFERENCES.md).
    """

    population: str = Field(min_length=1)  # the publisher population selling its pages
    docs_per_generation: int = Field(ge=1, le=1_000_000_000)
    price: float = Field(ge=0.0, le=1e15)  # paid per generation (any currency unit; the scenario's choice)


class Distill(_Table):
    """Documents sampled straight from another lab's latest released model (its API), every generation."""

    source: str = Field(alias="from", min_length=1)  # the lab distilled
    docs: int = Field(ge=1, le=1_000_000_000)

    model_config = ConfigDict(populate_by_name=False, serialize_by_alias=True)


# ---------------------------------------------------------------- labs
class Lab(_Table):
    name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    market_share: float = Field(1.0, ge=0.0, le=1e6)  # weight among released models when publishers pick one
    release_every: int = Field(2, ge=1, le=32_767)  # ticks between generations
    first_release: int = Field(0, ge=0, le=32_766)  # < run.ticks  # tick of generation 0
    model: Model = Field(default_factory=lambda: _default_model())
    crawl_budget: int = Field(2000, ge=1, le=1_000_000_000)  # pages fetched per crawl, before filters
    crawl_strategy: Literal["bfs", "pagerank", "random"] = "random"
    crawl_seeds: int = Field(10, ge=1, le=10_000_000)  # seed sites for bfs
    new_only: bool = False  # crawl only pages published since this lab's last crawl
    filters: tuple[Filter, ...] = ()
    regime: Regime = Field(default_factory=lambda: _default_regime())  # a name, or a table {kind = ..., keys}
    train_docs: int | None = Field(None, ge=1, le=1_000_000_000)  # accumulate_subsample: training set size (default crawl_budget)
    reserve_docs: int = Field(0, ge=0, le=100_000_000)  # verified human documents the lab owns
    reserve_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # share of each training set drawn from the reserve
    anchors: int = Field(0, ge=0, le=100_000_000)  # fresh ground-truth documents added to every generation (Jangjoo et al. 2026)
    prior: PriorConfig | None = None  # regularisation toward a reference model
    watermark: WatermarkConfig | None = None  # its models watermark what they write
    self_augment: int = Field(0, ge=0, le=100_000_000)  # documents of its own previous model added to each generation (Alemohammad et al.)
    # the probability it honours a given site's block (drawn once per site); None = 1, every block honoured.
    # 39.5 % of sites disallowing GPTBot still served it in July 2026 (HasData; REFERENCES.md)
    compliance: float | None = Field(None, ge=0.0, le=1.0)
    licences: tuple[Licence, ...] | None = None  # human documents bought every generation
    budget: float | None = Field(None, ge=0.0, le=1e15)  # what it may spend on licences per generation (None: no limit)
    distill: tuple[Distill, ...] | None = None  # documents from other labs' released models, every generation
    # training crawls read an archive: only pages published at or before this tick (an int), or "release - k"
    snapshot: int | str | None = None
    # "fixed" (None): the reserve is bought once, from the humans of tick 0; "current": refreshed every
    # generation from the human writers of the day, as imitating as they are (publishers[].imitation)
    reserve_vintage: Literal["fixed", "current"] | None = None

    @field_validator("snapshot", mode="before")
    @classmethod
    def _snapshot_form(cls, value):
        ok = value is None or (type(value) is int and value >= 0) or (isinstance(value, str) and _SNAPSHOT.match(value))
        if not ok:  # one message for every wrong form, rather than one per member of the union
            raise PydanticCustomError("snapshot", 'expected a tick >= 0 or "release - k" with k >= 0')
        return value

    def snapshot_tick(self, release: int) -> int | None:
        """The newest tick the archive crawled at ``release`` holds (None: the live web)."""
        if self.snapshot is None:
            return None
        if isinstance(self.snapshot, int):
            return self.snapshot
        lag = _SNAPSHOT.match(self.snapshot).group(1)
        return release - int(lag or 0)

    @field_serializer("regime")
    def _regime_as_name(self, regime: BaseModel):
        """A regime without keys of its own is written as its name (``regime = "replace"``)."""
        table = regime.model_dump()
        return regime.kind if set(table) == {"kind"} else table


class Evaluation(_Table):
    human_docs: int = Field(1000, ge=1, le=10_000_000)  # fresh human documents for human_nll / true_entropy
    sample_docs: int = Field(1000, ge=1, le=10_000_000)  # documents each model writes for the sample metrics
    benchmark_docs: int = Field(500, ge=0, le=10_000_000)  # web-scraped benchmark for observed_nll (0 = off)
    tail_mass: float = Field(0.1, gt=0.0, lt=1.0)  # the tail: rarest tokens holding this share of true unigram mass
    prob_floor: float = Field(1e-6, gt=0.0, lt=1.0)  # a zero-probability token costs -ln(floor) nats
    # watermark forensics: tokens each released model writes, fresh, to be tested against every watermarking
    # lab's key (generations.watermark_z; `simweb forensics DIR`). None = off. Sander et al. (arXiv 2402.14904):
    # training on 5 % watermarked data is detectable in the student at p < 1e-5
    forensics_tokens: int | None = Field(None, ge=1, le=100_000_000)
    # new_topic_recall / new_token_mass_ratio look at topics born in the last this many ticks (None: 6)
    recent_ticks: int | None = Field(None, ge=1, le=32_767)


_SNAPSHOT = re.compile(r"^\s*release\s*(?:-\s*(\d{1,9})\s*)?$")  # "release", "release - 3"


def _default_model():
    from simweb.plugins import parse_config

    return parse_config("model", {"family": "ngram"})


def _default_regime():
    from simweb.plugins import parse_config

    return parse_config("regime", "replace")


class Scenario(_Table):
    """A whole scenario. Build one from a TOML file (``simweb.load_scenario``), from plain Python values
    (``simweb.build_scenario`` or ``Scenario(**tables)``), or from another (:meth:`with_overrides`)."""

    run: Run = Run()
    language: Language = MarkovLanguage()
    web: Web = Web()
    publishers: tuple[Publisher, ...] = Field(min_length=1, max_length=1024)  # population: an int16 page column
    labs: tuple[Lab, ...] = Field(min_length=1, max_length=1024)  # lab: an int16 page column; two processes each
    evaluation: Evaluation = Evaluation()

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        """The checks across tables (names that must exist, families that must fit the language)."""
        from simweb.scenario.load import _check_references

        _check_references(self, None)
        return self

    def with_overrides(self, overrides) -> "Scenario":
        """This scenario with ``path=value`` overrides applied and validated exactly like ``--set``."""
        from simweb.scenario.load import dump_scenario, parse_scenario

        return parse_scenario(dump_scenario(self), list(overrides))

    def replace(self, changes: dict[str, Any] | None = None, /, **top) -> "Scenario":
        """This scenario with values changed by path (``{"labs.naive.crawl_budget": 500}``), validated like ``--set``."""
        from simweb.scenario.load import apply_overrides, dump_scenario, validate
        import tomllib

        data = apply_overrides(tomllib.loads(dump_scenario(self)), [])
        for path, value in {**(changes or {}), **top}.items():
            data = _set_path(data, path, value)
        return validate(data)


def _freeze(value: Any) -> Any:
    """TOML arrays (and Python lists) become tuples, all the way down: scenario models are immutable."""
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _set_path(data: dict, path: str, value: Any) -> dict:
    """``data`` with the value at a ``--set`` style path replaced by a Python value (no TOML parsing)."""
    from simweb.scenario.load import apply_overrides

    marker = "__simweb_value__"
    data = apply_overrides(data, [f"{path}={marker!r}".replace("'", '"')])

    def put(node):
        if node == marker:
            return value
        if isinstance(node, dict):
            return {k: put(v) for k, v in node.items()}
        if isinstance(node, list):
            return [put(v) for v in node]
        return node

    return put(data)
