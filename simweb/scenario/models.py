"""The scenario schema: immutable, validated models for every table of a scenario file.

Units: ticks are the simulation's time steps (think months); documents are
pages; token counts are per document. Defaults that stand on a published
figure say which; the rest are scenario assumptions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

__all__ = [
    "Adoption", "CategoricalLanguage", "CategoricalModel", "ClassifierFilter", "DateCutoffFilter",
    "Evaluation", "GaussianLanguage", "PriorConfig", "GaussianModel", "Lab", "MarkovLanguage", "NgramModel",
    "Publisher", "Run", "Scenario", "Web", "TOKEN_LANGUAGES", "MODEL_FOR_LANGUAGE",
]


class _Table(BaseModel):
    # allow_inf_nan=False: a nan or inf passes every bound (nan compares false) and poisons a run silently;
    # it reaches every float of every table, dict values (fpr_multiplier) and tuple items (probs) included
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


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
    ticks: int = Field(12, ge=1, le=100_000)  # simulation steps; tick 0 is the all-human web
    executor: Literal["local", "ray"] = "ray"  # ray: agents as Ray actors (a local cluster if none is given)
    shards: int | None = Field(None, ge=1, le=4096)  # publisher shards; default: the cluster's CPUs (1 for local)
    # page content held in memory, all shards together; older ticks spill to disk past it (None: no cap)
    page_memory_mb: float | None = Field(None, gt=0, le=2**30)


# ---------------------------------------------------------------- language (the human writers)
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


class GaussianLanguage(_Table):
    """A d-dimensional normal with diagonal covariance."""

    family: Literal["gaussian"]
    dim: int = Field(1, ge=1, le=1024)
    mean: float = 0.0
    std: float = Field(1.0, gt=0.0)


class CategoricalLanguage(_Table):
    """K outcomes with given probabilities, or Zipf probabilities when none are given."""

    family: Literal["categorical"]
    outcomes: int = Field(10, ge=2, le=1_000_000)
    probs: tuple[float, ...] | None = None
    zipf_exponent: float = Field(1.0, ge=0.0, le=5.0)


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
    sites_per_tick: int = Field(10, ge=0, le=1_000_000)
    links_per_site: int = Field(3, ge=1, le=1000)  # out-links a new site makes (preferential attachment)
    homophily: float = Field(4.0, ge=1.0, le=1000.0)  # link weight multiplier for a target of the same topic


# ---------------------------------------------------------------- publishers
class Adoption(_Table):
    """Logistic share of new pages that are AI-written: start + (end-start) / (1 + exp(-rate (t - midpoint)))."""

    start: float = Field(0.0, ge=0.0, le=1.0)
    end: float = Field(0.5, ge=0.0, le=1.0)  # ~0.5: share of new English web articles AI-written since 2025 (REFERENCES.md)
    midpoint: float = 6.0  # tick of the steepest rise
    rate: float = Field(1.0, ge=0.0, le=100.0)  # per tick


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
    strip_c2pa: float = Field(1.0, ge=0.0, le=1.0)  # chance a copy loses the original's C2PA label (platforms re-encode)


# ---------------------------------------------------------------- models and filters
class NgramModel(_Table):
    family: Literal["ngram"] = "ngram"
    order: int = Field(1, ge=1, le=8)  # Markov order: tokens of context
    alpha: float = Field(0.01, ge=0.0)  # add-alpha smoothing; 0 = unseen transitions vanish for good


class GaussianModel(_Table):
    family: Literal["gaussian"]
    variance: Literal["mle", "unbiased"] = "mle"


class CategoricalModel(_Table):
    family: Literal["categorical"]


class TransformerModel(_Table):
    """A small decoder-only transformer (torch)."""

    family: Literal["transformer"]
    layers: int = Field(2, ge=1, le=48)
    width: int = Field(64, ge=8, le=4096)  # embedding width; a multiple of heads
    heads: int = Field(4, ge=1, le=64)
    epochs: int = Field(2, ge=1, le=1000)  # passes over the training set per generation
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0.0, le=1.0)  # AdamW learning rate
    init: Literal["scratch", "finetune"] = "scratch"  # finetune: start from the lab's previous generation
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(1, ge=1, le=256)  # torch threads during fit and sampling: fixed, for determinism


Model = Annotated[
    Union[
        Annotated[NgramModel, Tag("ngram")],
        Annotated[TransformerModel, Tag("transformer")],
        Annotated[GaussianModel, Tag("gaussian")],
        Annotated[CategoricalModel, Tag("categorical")],
    ],
    _tagged("ngram"),
]
MODEL_FOR_LANGUAGE = {"markov": ("ngram", "transformer"), "gaussian": ("gaussian",), "categorical": ("categorical",)}


class DateCutoffFilter(_Table):
    """Keep only pages published at or before ``tick``."""

    kind: Literal["date_cutoff"]
    tick: int = Field(ge=0)


class ClassifierFilter(_Table):
    """A parametric AI-text detector applied to each page's true origin."""

    kind: Literal["classifier"]
    preset: Literal["classifier_2023", "commercial", "after_paraphrase"] | None = None  # sets tpr and fpr
    tpr: float = Field(0.85, ge=0.0, le=1.0)  # ~0.85-0.99: modern commercial detectors (REFERENCES.md, an assumption)
    fpr: float = Field(0.02, ge=0.0, le=1.0)  # ~0.01-0.04: same source
    fpr_multiplier: dict[str, float] = {}  # population → FPR factor (61 % of TOEFL essays flagged, Liang et al. 2023)
    tpr_decay: float = Field(0.0, ge=0.0, le=1.0)  # TPR × (1 − decay)^generation of the page's model


class WatermarkFilter(_Table):
    """Kirchenbauer et al.'s z-test on the tokens, with the keys the lab holds."""

    kind: Literal["watermark"]
    z_threshold: float = Field(4.0, gt=0.0)  # z = 4: FPR ≈ 3e-5 per document (Kirchenbauer et al. 2023)
    keys: tuple[str, ...] | None = None  # labs whose keys it holds; default: its own


class ProvenanceFilter(_Table):
    """Drops pages whose C2PA label says AI."""

    kind: Literal["provenance"]


class AllowlistFilter(_Table):
    """Keeps pages on the top-k sites by reputation."""

    kind: Literal["allowlist"]
    top_k: int = Field(ge=1)
    reputation: Literal["pagerank", "age"] = "pagerank"


class LikelihoodFilter(_Table):
    """A likelihood-ratio test on the tokens under the lab's own current model, calibrated on human text."""

    kind: Literal["likelihood"]
    target_fpr: float = Field(0.05, gt=0.0, lt=1.0)  # share of human pages it may drop
    calibration_docs: int = Field(1000, ge=10)  # fresh human documents the lab calibrates on


class VerifierFilter(_Table):
    """Keeps documents whose (noisy) ground-truth quality passes a bar (Feng et al. 2025)."""

    kind: Literal["verifier"]
    quantile: float = Field(0.1, ge=0.0, lt=1.0)  # the bar: this quantile of human documents' quality
    noise: float = Field(0.0, ge=0.0)  # sd of the verifier's error, nats per token (0 = ground truth)
    calibration_docs: int = Field(1000, ge=10)


class DedupFilter(_Table):
    """Drops exact copies by content hash."""

    kind: Literal["dedup"]


Filter = Annotated[
    Union[
        Annotated[DateCutoffFilter, Tag("date_cutoff")],
        Annotated[ClassifierFilter, Tag("classifier")],
        Annotated[WatermarkFilter, Tag("watermark")],
        Annotated[ProvenanceFilter, Tag("provenance")],
        Annotated[AllowlistFilter, Tag("allowlist")],
        Annotated[DedupFilter, Tag("dedup")],
        Annotated[LikelihoodFilter, Tag("likelihood")],
        Annotated[VerifierFilter, Tag("verifier")],
    ],
    _tagged("", "kind"),
]


class WatermarkConfig(_Table):
    """The lab's models write with a green-list watermark (Kirchenbauer et al. 2023)."""

    gamma: float = Field(0.25, gt=0.0, lt=1.0)  # green share of the vocabulary
    delta: float = Field(2.0, ge=0.0, le=50.0)  # logit bias of green tokens


class PriorConfig(_Table):
    """Pseudo-observations toward a reference added to every fit (Jangjoo, Marsili & Roudi 2026's MAP fix)."""

    strength: float = Field(gt=0.0)  # pseudo-counts per context row (ngram), per fit (categorical), pseudo-samples (gaussian)
    toward: Literal["uniform", "first_generation"] = "first_generation"  # the lab's own generation 0, or uniform


# ---------------------------------------------------------------- labs
class Lab(_Table):
    name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    market_share: float = Field(1.0, ge=0.0)  # weight among released models when publishers pick one
    release_every: int = Field(2, ge=1)  # ticks between generations
    first_release: int = Field(0, ge=0)  # tick of generation 0
    model: Model = NgramModel()
    crawl_budget: int = Field(2000, ge=1)  # pages fetched per crawl, before filters
    crawl_strategy: Literal["bfs", "pagerank", "random"] = "random"
    crawl_seeds: int = Field(10, ge=1)  # seed sites for bfs
    new_only: bool = False  # crawl only pages published since this lab's last crawl
    filters: tuple[Filter, ...] = ()
    regime: Literal["replace", "accumulate", "accumulate_subsample"] = "replace"
    train_docs: int | None = Field(None, ge=1)  # accumulate_subsample: training set size (default crawl_budget)
    reserve_docs: int = Field(0, ge=0)  # verified human documents the lab owns
    reserve_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # share of each training set drawn from the reserve
    anchors: int = Field(0, ge=0)  # fresh ground-truth documents added to every generation (Jangjoo et al. 2026)
    prior: PriorConfig | None = None  # regularisation toward a reference model
    watermark: WatermarkConfig | None = None  # its models watermark what they write
    self_augment: int = Field(0, ge=0)  # documents of its own previous model added to each generation (Alemohammad et al.)


class Evaluation(_Table):
    human_docs: int = Field(1000, ge=1)  # fresh human documents for human_nll / true_entropy
    sample_docs: int = Field(1000, ge=1)  # documents each model writes for the sample metrics
    benchmark_docs: int = Field(500, ge=0)  # web-scraped benchmark for observed_nll (0 = off)
    tail_mass: float = Field(0.1, gt=0.0, lt=1.0)  # the tail: rarest tokens holding this share of true unigram mass
    prob_floor: float = Field(1e-6, gt=0.0, lt=1.0)  # a zero-probability token costs -ln(floor) nats


class Scenario(_Table):
    run: Run = Run()
    language: Language = MarkovLanguage()
    web: Web = Web()
    publishers: tuple[Publisher, ...] = Field(min_length=1)
    labs: tuple[Lab, ...] = Field(min_length=1)
    evaluation: Evaluation = Evaluation()
