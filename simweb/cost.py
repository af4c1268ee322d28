"""What a scenario costs before it runs: peak memory per process and in total, and a rough time.

Arithmetic on the resolved scenario only — nothing is built. Each process of a run (the driver,
every publisher shard, every lab's scraper and trainer; under the local executor one process holds
them all and shares the language and the released models) is a list of :class:`Part` s, the
largest arrays it builds, each with the scenario field that drives it. A part is *resident* (kept
for the run) or *transient* (working memory of one step), and a process peaks at its resident
parts plus its largest transient one. The byte counts follow the code: ``simweb/language/markov.py``
(a (topics, classes, vocab) float64 transition table, its log, alias tables, token marginals),
``simweb/agents/*.py`` (page index, crawls, pools, evaluation samples), ``simweb/web/`` (31 bytes
of metadata a page, networkx graphs). Model families and other plugins add their own through an
optional classmethod ``memory_bytes(cfg, scenario) -> int`` (see :mod:`simweb.plugins`).

Checked against measured peak RSS in ``tests/test_cost.py`` (within 2x each way on scenarios of
different shapes). The time is rough — constants of a 2-core machine, good to a few times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simweb.errors import SimwebError

__all__ = ["Estimate", "Part", "Process", "estimate", "available_memory", "check", "human_bytes"]

MiB, GiB = 2**20, 2**30
BASE_PROCESS = 125 * MiB  # a local run's process before any array: Python, numpy, polars, pyarrow, networkx (118 MB)
TORCH = 200 * MiB  # importing torch adds this much to a process (measured: 190 MB, torch 2.x CPU)
RAY_ACTOR = 180 * MiB  # an actor's process: the above plus Ray's worker runtime
RAY_SYSTEM = 500 * MiB  # a local Ray instance's own processes (GCS, raylet, monitors)
RAY_START_S = 7.0  # starting a local Ray instance and the actors (README: ~7 s on 2 cores)
NX_NODE, NX_EDGE = 400, 240  # networkx DiGraph bytes per node and per edge (measured: 383 and 233)
INDEX_BYTES = 31  # page metadata in the shards' index (simweb/web/store.py PAGE_COLUMNS), before the page id
POOL_BYTES = 37  # a trainer's pool row besides its content: id, crawl, ticks, site, origin, lab, generation
PLAN_BYTES = 90  # a shard planning a tick's pages, per page: their columns, plus 10 a uniform drawn (tracemalloc)
CRAWL_BYTES = 32  # a crawl's working arrays per page a shard holds (ids, rows, ranks, ages, keys)
CHUNK_DOCS = 4096  # documents scored at once by the language (MarkovLanguage.topic_log_likelihood)
WRITE_BATCH = 32_768 + 64  # pages a shard writes at once (simweb.agents.publisher.BATCH, plus a block)
HELD = 0.3  # share of a model's memory_bytes that stays while it is held (state, sampling tables); measured 0.2-0.4


@dataclass(frozen=True)
class Part:
    """One array (or group of arrays) a process builds: its bytes and the scenario field that drives it."""

    what: str  # "language tables"
    bytes: int
    field: str  # the scenario path that drives it, e.g. "language.vocab_size"
    why: str = ""  # the shape, e.g. "topics × classes × vocab_size float64"
    transient: bool = False  # working memory of one step; else kept
    group: str = ""  # how a refusal names it with the other parts of its field ("language tables")


@dataclass(frozen=True)
class Process:
    role: str  # "driver", "shard", "scraper naive", "trainer naive", or "simweb" (local executor)
    parts: tuple[Part, ...]
    copies: int = 1  # processes alike (the publisher shards)

    @property
    def peak(self) -> int:
        """Resident parts plus the largest transient one."""
        kept = sum(p.bytes for p in self.parts if not p.transient)
        return kept + max((p.bytes for p in self.parts if p.transient), default=0)

    def _in_peak(self) -> list[Part]:
        kept = [p for p in self.parts if not p.transient]
        moment = max((p for p in self.parts if p.transient), key=lambda p: p.bytes, default=None)
        return kept + ([moment] if moment is not None else [])


@dataclass(frozen=True)
class Estimate:
    """Peak memory of every process of a run, in total, and a rough wall time."""

    executor: str
    processes: tuple[Process, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return sum(p.peak * p.copies for p in self.processes)

    def driving(self) -> tuple[str, int, Part, int]:
        """The field whose parts weigh most in the total: (field, its bytes, its largest part, processes holding it)."""
        by_field: dict[str, list] = {}
        for proc in self.processes:
            seen = set()
            for part in proc._in_peak():
                entry = by_field.setdefault(part.field, [0, part, 0])
                entry[0] += part.bytes * proc.copies
                if part.field not in seen:
                    entry[2] += proc.copies
                    seen.add(part.field)
                if part.bytes > entry[1].bytes:
                    entry[1] = part
        name, (total, part, holders) = max(by_field.items(), key=lambda kv: kv[1][0])
        return name, total, part, holders

    def summary(self) -> str:
        """One line: the total, the largest field and the time."""
        name, total, part, holders = self.driving()
        return (f"estimated peak memory {human_bytes(self.total_bytes)} ({self.executor} executor), largest: "
                f"{_why(part, total, holders)}; time {human_seconds(self.seconds)} (rough)")

    def lines(self) -> list[str]:
        """The summary, then each process's peak and its largest parts (for ``simweb validate``)."""
        out = [self.summary()]
        for proc in self.processes:
            count = f" × {proc.copies}" if proc.copies > 1 else ""
            top = sorted(proc._in_peak(), key=lambda p: -p.bytes)[:3]
            out.append(f"  {proc.role}{count}: {human_bytes(proc.peak)} ("
                       + ", ".join(f"{p.what} {human_bytes(p.bytes)}" for p in top) + ")")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def refusal(self, available: int) -> str:
        """The one line that refuses a run needing more than ``available`` bytes."""
        name, total, part, holders = self.driving()
        return (f"{name}: this scenario needs about {human_bytes(self.total_bytes)} ({_why(part, total, holders)}), "
                f"more than the {human_bytes(available)} available; pass --force to try anyway")


def _why(part: Part, total: int, holders: int) -> str:
    shape = f": {part.why}" if part.why else ""
    each = f", in each of {holders} processes" if holders > 1 else ""
    return f"{part.group or part.what} {human_bytes(total)}{shape}{each}"


def human_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1024:.0f} KiB"


def human_seconds(s: float) -> str:
    if s < 60:
        return f"about {max(s, 1):.0f} s"
    if s < 3600:
        return f"about {s / 60:.0f} min"
    if s < 86400 * 2:
        return f"about {s / 3600:.1f} h"
    return f"about {s / 86400:.0f} days"


# ---------------------------------------------------------------- the machine
def available_memory() -> int | None:
    """Bytes this machine can still give: /proc/meminfo MemAvailable, capped by a cgroup limit; None if unknown."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
                room = int(limit) - int(f.read().strip())
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def check(estimate: "Estimate", *, force: bool = False, available: int | None = None) -> None:
    """Refuse (one line, :class:`SimwebError`) an estimate above the memory available, unless ``force``."""
    available = available_memory() if available is None else available
    if not force and available is not None and estimate.total_bytes > available:
        raise SimwebError(estimate.refusal(available))


# ---------------------------------------------------------------- the estimate
def estimate(scenario, *, executor: str | None = None, shards: int | None = None, cpus: int | None = None,
             concurrent: int = 1, one_actor: bool | None = None) -> Estimate:
    """Peak memory and a rough time of running ``scenario`` (``executor``: as the scenario says by default;
    ``shards``: the run's publisher shards, default as the engine picks; ``concurrent``: runs at once, a sweep's;
    ``one_actor``: whether a Ray run goes whole to one actor, default as the Ray executor decides on this
    machine — False for a run whose output is on an object store)."""
    from simweb.executors import local_cpus

    from simweb.executors import fits_one_actor

    sc = scenario
    executor = executor or sc.run.executor
    # a small run on Ray runs whole in one actor, with the local executor (simweb/executors/ray_executor.py)
    if one_actor is None:
        one_actor = shards is None and fits_one_actor(sc, {"nodes": 1, "cpus": cpus or local_cpus()})
    one_actor = one_actor and executor == "ray"
    if executor == "local" or one_actor:
        n_shards = shards or sc.run.shards or 1
    else:
        n_shards = shards or sc.run.shards or int(cpus or local_cpus())
    w = _World(sc, n_shards)
    torch = w.uses_torch
    notes = list(w.notes)
    if executor == "local" or one_actor:
        extra = TORCH if torch else 0
        parts = [Part("Python, simweb and Ray", RAY_ACTOR + extra, "run.executor", "the actor running the run whole")
                 if one_actor else Part("Python and simweb", BASE_PROCESS + extra, "run.executor")]
        parts += w.driver() + w.language(samples=True) + w.evaluation()
        parts += w.models(list(range(len(sc.labs))) + w.released_models())
        parts += w.shard() + [p for i in range(len(sc.labs)) for p in w.scraper(i) + w.trainer(i)]
        parts += w.plugins(range(len(sc.labs)), behaviours=True)
        procs = (Process("simweb (one process)", tuple(parts)),)
        if one_actor:
            procs = (Process("driver", (Part("Python, simweb and Ray", BASE_PROCESS + RAY_SYSTEM, "run.executor"),)),
                     Process("the run, whole, in one actor", tuple(parts)))
    else:
        driver = Process("driver", tuple([Part("Python, simweb and Ray", BASE_PROCESS + RAY_SYSTEM, "run.executor")]
                                         + w.driver() + w.language(samples=False)))
        procs = [driver]
        # the agents live in host actors as the Ray executor lays them out (simweb/executors/ray_executor.py): one
        # host per shard, or per lab where labs outnumber shards and the CPUs allow; lab i on host i mod hosts
        labs = range(len(sc.labs))
        hosts = max(1, n_shards, min(len(sc.labs), int(cpus or local_cpus())))
        kinds: dict[tuple, int] = {}  # (holds a shard, its labs) -> hosts alike
        for h in range(hosts):
            key = (h < n_shards, tuple(i for i in labs if i % hosts == h))
            kinds[key] = kinds.get(key, 0) + 1
        for (shard, mine), copies in kinds.items():
            scorers = [i for i in mine if any("model" in _needs(f) for f in sc.labs[i].filters)]
            models = sorted(set(w.released_models() if shard else []) | set(scorers) | set(mine))
            parts = [Part("Python, simweb and Ray", RAY_ACTOR, "run.shards", "one process per host actor"),
                     *([Part("torch", TORCH, "run.shards")] if torch else []), *w.language(samples=True),
                     *(w.evaluation() if mine else []), *w.models(models)]
            if shard:
                parts += w.shard() + w.plugins((), behaviours=True)
            for i in mine:
                parts += w.scraper(i) + w.trainer(i)
            parts += w.plugins(mine)
            names = ["shard"] if shard else []
            names += [f"scraper and trainer {sc.labs[i].name}" for i in mine]
            procs.append(Process(" + ".join(names), tuple(parts), copies=copies))
        procs = tuple(procs)
        notes.append("Ray's object store (page plans, content and models in flight) is not counted")
    if concurrent > 1:
        procs = tuple(Process(f"{p.role} (each of {concurrent} runs at once)", p.parts, p.copies * concurrent)
                      for p in procs)
    seconds = w.seconds() + (RAY_START_S if executor == "ray" else 0.0)
    return Estimate(executor, procs, seconds * max(1, concurrent / max(1, local_cpus())), tuple(notes))


class _World:
    """The sizes a scenario implies (pages, sites, generations) and the parts of each role."""

    def __init__(self, sc, n_shards: int):
        from simweb.plugins import registry

        self.sc, self.n_shards = sc, n_shards
        lang = sc.language
        self.tokens = lang.family == "markov"
        self.L = lang.width
        self.itemsize = 2 if self.tokens else (8 if lang.family == "gaussian" else 4)
        self.row = self.L * self.itemsize  # bytes of one page's content
        self.K = lang.topics + lang.new_topic_room() if self.tokens else 1
        self.pages = sum(p.initial_pages + p.pages_per_tick * sc.run.ticks for p in sc.publishers)
        self.tick_pages = sum(p.pages_per_tick for p in sc.publishers) + sum(p.initial_pages for p in sc.publishers)
        big = max(range(len(sc.publishers)), key=lambda i: max(sc.publishers[i].initial_pages,
                                                                sc.publishers[i].pages_per_tick * sc.run.ticks))
        pub = sc.publishers[big]
        self.pages_field = (f"publishers[{big}].initial_pages" if pub.initial_pages > pub.pages_per_tick * sc.run.ticks
                            else f"publishers[{big}].pages_per_tick")
        web = sc.web
        self.sites = web.initial_sites + web.sites_per_tick * (sc.run.ticks - 1)
        self.links = 2 * web.links_per_site * self.sites
        self.sites_field = ("web.links_per_site" if web.links_per_site > 30 else
                            "web.initial_sites" if web.initial_sites >= web.sites_per_tick * (sc.run.ticks - 1)
                            else "web.sites_per_tick")
        self.notes: list[str] = []
        self.families = [registry.get("model", lab.model.family).cls for lab in sc.labs]
        self.uses_torch = any(getattr(f, "family", "") == "transformer" for f in self.families)

    # ------------------------------------------------------------ sizes
    def generations(self, i: int) -> int:
        lab, ticks = self.sc.labs[i], self.sc.run.ticks
        return 0 if lab.first_release >= ticks else (ticks - 1 - lab.first_release) // lab.release_every + 1

    def model_bytes(self, i: int) -> int:
        lab = self.sc.labs[i]
        hook = getattr(self.families[i], "memory_bytes", None)
        if hook is None:
            note = f"model family {lab.model.family!r} declares no memory_bytes(cfg, scenario): its model is not counted"
            if note not in self.notes:
                self.notes.append(note)
            return 0
        return int(hook(lab.model, self.sc))

    # ------------------------------------------------------------ the language and the evaluation
    def language(self, *, samples: bool) -> list[Part]:
        lang = self.sc.language
        if lang.family == "gaussian":
            return []
        if lang.family == "categorical":
            return [Part("language", 32 * lang.outcomes, "language.outcomes", "outcomes float64")]
        K, C, V = lang.topics + lang.new_topic_room(), lang.classes, lang.vocab_size
        cells = K * C * V + K * V
        name = _largest(self.sc, [("language.topics", K, 8), ("language.classes", C, 16),
                                  ("language.vocab_size", V, 256)])
        shape, group = "topics × classes × vocab_size", "language tables"
        parts = [Part("language tables", 16 * cells, name, shape, group=group)]
        if samples:
            from simweb.sampling import alias_dtype

            parts += [Part("language sampling tables", (8 + alias_dtype(V).itemsize) * cells, name, shape,
                           group=group),
                      Part("building the language's sampling tables", 64 * cells, name, shape, transient=True,
                           group=group)]
        return parts

    def evaluation(self) -> list[Part]:
        ev, L, K = self.sc.evaluation, self.L, self.K
        sizes = [("evaluation.human_docs", ev.human_docs), ("evaluation.sample_docs", ev.sample_docs),
                 ("evaluation.benchmark_docs", ev.benchmark_docs)]
        name, n = max(sizes, key=lambda s: s[1])
        parts = [Part("evaluation human documents", ev.human_docs * self.row, "evaluation.human_docs",
                      "human_docs × doc_length")]
        if self.tokens:
            per_doc = 42 * L + 32 * K  # tokens as int64, bigrams, their sort, noise; topic posteriors (n, topics)
            chunk = 8 * K * min(n, CHUNK_DOCS) * L  # the (topics, docs, doc_length) gather of the exact log-likelihood
            parts.append(Part("evaluation samples", n * per_doc + chunk, name,
                              f"{name.split('.')[1]} × (doc_length × 42 + topics × 32) bytes", transient=True))
            lang = self.sc.language
            parts.append(Part("token marginals", 8 * K * L * lang.vocab_size, _largest(
                self.sc, [("language.topics", K, 8), ("language.doc_length", L, 64), ("language.vocab_size",
                                                                                     lang.vocab_size, 256)]),
                "topics × doc_length × vocab_size float64", transient=True))
        else:
            parts.append(Part("evaluation samples", n * 8 * L * 4, name, f"{name.split('.')[1]} × 32 bytes",
                              transient=True))
        return parts

    # ------------------------------------------------------------ roles
    def driver(self) -> list[Part]:
        k = self.sc.web.links_per_site
        graph = (NX_NODE + 40 + 8 * (1 + 2 * k)) * self.sites + (NX_EDGE + 16) * self.links
        new_links = 2 * k * max(self.sc.web.initial_sites, self.sc.web.sites_per_tick)
        return [Part("site graph", graph, self.sites_field, "networkx nodes and links, urns"),
                Part("growing the site graph", 110 * new_links, self.sites_field, "links of a tick", transient=True)]

    def shard(self) -> list[Part]:
        S, budget = self.n_shards, self.sc.run.page_memory_mb
        per_page = self.row + 8
        content = self.pages * per_page
        name, why = self.pages_field, "pages × doc_length × token bytes"
        if budget is not None and budget * MiB < content:
            content = int(budget * MiB) + self.tick_pages * per_page
            name, why = "run.page_memory_mb", "page_memory_mb, plus the newest tick's pages"
        n = -(-self.tick_pages // S)
        from simweb.agents.publisher import page_draws

        uniforms = max((sum(page_draws(p).values()) for p in self.sc.publishers), default=5)
        planning = PLAN_BYTES + 10 * uniforms
        writing = 16 * self.L * min(n, WRITE_BATCH) + n * per_page + 50 * n  # 50: the plan kept, with page ids
        from simweb.humans import humans_on

        # the shard's index rows: the ground truth, its page id, and the imitation share (float32) when it is kept
        per_index = INDEX_BYTES + 8 + (4 if humans_on(self.sc) else 0)
        return [Part("page index", per_index * self.pages // S, self.pages_field,
                     f"{per_index} bytes a page, an even share of the pages"),
                Part("page content", content // S, name, why),
                # tracemalloc on a 1 M-page tick: a shard planning its pages peaks at 125, 154 and 190 bytes a page
                # with 5, 8 and 10 uniforms a page (copies, then imitation, draw more); the plan it keeps while
                # writing (40 bytes a page, 50 with imitation) is among the writing's
                Part("planning a tick's pages", planning * n, self.pages_field, f"{planning} bytes a page",
                     transient=True),
                Part("writing a tick's pages", writing, self.pages_field, "noise (8 bytes a token) and content",
                     transient=True),
                Part("a crawl's candidates", CRAWL_BYTES * self.pages // S, self.pages_field,
                     f"{CRAWL_BYTES} bytes a page held", transient=True)]

    def released_models(self) -> list[int]:
        """Labs whose released models are rebuilt where pages are written (and where filters score with them)."""
        return [i for i, lab in enumerate(self.sc.labs)
                if lab.market_share > 0 or any("model" in _needs(f) for f in lab.filters)]

    def models(self, labs: list[int]) -> list[Part]:
        """Models of ``labs`` held in one process: each model's state and tables stay (HELD of its peak) and one
        at a time is fitted, scored or sampled from (its whole ``memory_bytes``)."""
        if not labs:
            return []
        sizes = {i: self.model_bytes(i) for i in labs}
        top = max(sizes, key=sizes.get)
        lab = self.sc.labs[top]
        group = f"{lab.model.family} models"
        parts = [Part(f"models held ({len(labs)})", int(HELD * sum(sizes.values())), f"labs[{top}].model",
                      f"{HELD:.0%} of memory_bytes each", group=group),
                 Part(f"using a model of {lab.name}", sizes[top], f"labs[{top}].model", "its memory_bytes",
                      transient=True, group=group)]
        return parts

    def scraper(self, i: int) -> list[Part]:
        lab = self.sc.labs[i]
        k = self.sc.web.links_per_site
        # its replica's networkx DiGraph exists once a BFS or PageRank crawl, or an allowlist's ranking, walks it
        walked = lab.crawl_strategy != "random" or any(f.kind == "allowlist" for f in lab.filters)
        graph = ((NX_NODE if walked else 0) + 20) * self.sites + ((NX_EDGE if walked else 0) + 16) * self.links
        trained = min(self.pages, lab.crawl_budget * self.generations(i))
        # the shards' candidates it merges: at most crawl_budget from each, or every page for a random crawl
        merged = self.pages if lab.crawl_strategy == "random" else min(self.pages, lab.crawl_budget * self.n_shards)
        parts = [Part("pages trained on", 16 * trained, f"labs[{i}].crawl_budget",
                      "8 bytes a page fetched, twice: sorted and as fetched"),
                 Part("site graph replica", graph, self.sites_field, f"{k} links each way a site"),
                 Part("merging a crawl", 16 * merged, f"labs[{i}].crawl_budget", "ids and keys of the candidates",
                      transient=True)]
        fetched = min(self.pages, max(lab.crawl_budget, self.sc.evaluation.benchmark_docs))
        parts.append(Part("filtering a crawl", fetched * (self.row * (3 + len(lab.filters)) + 120),
                          f"labs[{i}].crawl_budget", "crawl_budget × content, a copy per filter", transient=True))
        cal = [getattr(f, "calibration_docs", 1000) for f in lab.filters if "calibration" in _needs(f)]
        if cal:
            where = next(j for j, f in enumerate(lab.filters) if "calibration" in _needs(f))
            parts.append(Part("calibration documents", max(cal) * (self.row + 40 * self.L),
                              f"labs[{i}].filters[{where}].calibration_docs", "calibration_docs × doc_length"))
        return parts

    def trainer(self, i: int) -> list[Part]:
        lab, L = self.sc.labs[i], self.L
        G = self.generations(i)
        budget = lab.crawl_budget
        keeps_pool = "pool" in _regime_needs(lab)
        pool = min(self.pages, budget * G) if keeps_pool else min(self.pages, budget)
        rows = pool if lab.regime.kind != "accumulate_subsample" else min(pool, lab.train_docs or budget)
        reserve = min(lab.reserve_docs, rows) if lab.reserve_fraction > 0 else 0
        corpus = rows + reserve + lab.anchors + lab.self_augment
        parts = [Part("training pool", pool * (self.row + POOL_BYTES), f"labs[{i}].crawl_budget",
                      "every page kept so far" if keeps_pool else "the latest crawl"),
                 ]
        if lab.reserve_docs:
            parts.append(Part("human reserve", lab.reserve_docs * self.row, f"labs[{i}].reserve_docs",
                              "reserve_docs × doc_length"))
            parts.append(Part("drawing the reserve", lab.reserve_docs * 8 * L, f"labs[{i}].reserve_docs",
                              "8 bytes a token", transient=True))
        sizes = [(f"labs[{i}].crawl_budget", rows), (f"labs[{i}].anchors", lab.anchors),
                 (f"labs[{i}].self_augment", lab.self_augment), (f"labs[{i}].reserve_docs", reserve)]
        name = max(sizes, key=lambda s: s[1])[0]
        per_token = 48 if self.tokens else 24  # the corpus as int64 contexts and counts while fitting
        parts.append(Part("training corpus", corpus * (self.row + per_token * L) + (pool * (self.row + POOL_BYTES)
                                                                                    if keeps_pool else 0),
                          name, "documents × doc_length × 50 bytes, and the pool's copy", transient=True))
        return parts

    def plugins(self, labs, *, kinds=("filter", "regime"), behaviours: bool = False) -> list[Part]:
        """What plugins declare through ``memory_bytes(cfg, scenario)``: filters and regimes of ``labs``, behaviours."""
        from simweb.plugins import registry

        tables = []
        for i in labs:
            lab = self.sc.labs[i]
            if "filter" in kinds:
                tables += [(f"labs[{i}].filters[{j}]", "filter", f) for j, f in enumerate(lab.filters)]
            if "regime" in kinds:
                tables.append((f"labs[{i}].regime", "regime", lab.regime))
        if behaviours:
            tables += [(f"publishers[{i}].behaviours[{j}]", "behaviour", b) for i, p in enumerate(self.sc.publishers)
                       for j, b in enumerate(p.behaviours or ())]
        out = []
        for where, kind, cfg in tables:
            hook = getattr(registry.get(kind, cfg.kind).cls, "memory_bytes", None)
            if hook is not None:
                out.append(Part(f"{kind} {cfg.kind}", int(hook(cfg, self.sc)), where, "its memory_bytes"))
        return out

    # ------------------------------------------------------------ time
    def seconds(self) -> float:
        """Rough wall time: per-element costs measured on a 2-core machine (alias tables, token sampling, exact
        log-likelihoods, torch at ~2e10 flop/s). Good to a few times."""
        sc, L = self.sc, self.L
        t = 0.5  # setting up
        if self.tokens:
            lang = sc.language
            K = lang.topics + lang.new_topic_room()
            t += 3e-7 * K * lang.classes * lang.vocab_size  # tables, logs, alias tables
        t += 30e-9 * self.pages * L + 3e-7 * self.pages  # writing pages, planning them
        t += 4e-6 * self.sites * (1 + 2 * sc.web.links_per_site)
        ev = sc.evaluation
        per_gen = (ev.sample_docs + ev.benchmark_docs + ev.human_docs) * L * (self.K * 6e-9 + 60e-9)
        keys = len({(p.temperature, p.top_p) for p in sc.publishers})
        for i, lab in enumerate(sc.labs):
            G = self.generations(i)
            crawls = G * (self.pages / 2 * 6e-8 + lab.crawl_budget * L * 4e-8 * (1 + len(lab.filters)))
            keeps_pool = "pool" in _regime_needs(lab)
            corpus = (min(self.pages, lab.crawl_budget * G) / 2 if keeps_pool else lab.crawl_budget) + lab.anchors
            fit, model = corpus * L * 1e-7, 0.0
            cfg = lab.model
            if cfg.family == "transformer":
                params = transformer_params(sc.language.vocab_size, L, cfg.width, cfg.layers)
                fit = 6 * params * corpus * L * cfg.epochs / 2e10
                model = params * L * L * ev.sample_docs / 2e10  # sampling without a key-value cache
            elif cfg.family == "ngram" and self.tokens:
                cells = (sc.language.vocab_size + 1) ** cfg.order * sc.language.vocab_size
                model = cells * (1e-7 + 2e-7 * (1 + keys))  # the fit, and alias tables per sampling setting
            t += crawls + G * (fit + per_gen + model)
        return t


def _largest(sc, fields: list[tuple[str, int, int]]) -> str:
    """Of fields (path, value, default) multiplied together, the one furthest above its default."""
    return max(fields, key=lambda f: f[1] / f[2])[0]


def _needs(cfg) -> frozenset:
    from simweb.plugins import registry

    return registry.get("filter", cfg.kind).needs


def _regime_needs(lab) -> frozenset:
    from simweb.plugins import registry

    return registry.get("regime", lab.regime.kind).needs


def transformer_params(vocab: int, context: int, width: int, layers: int) -> int:
    """Parameters of simweb's transformer: embeddings, blocks of attention and a 4x MLP, the output head."""
    block = 12 * width * width + 13 * width
    return (vocab + 1) * width + context * width + layers * block + 2 * width + vocab * width
