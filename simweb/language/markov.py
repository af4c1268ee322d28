"""The default ground truth of human writing: a topic mixture of first-order Markov chains.

A document has a topic k drawn from a Zipf law over topics. Its first token is
drawn from the topic's start law, every next token from the topic's chain. The
chains share one vocabulary whose token weights follow a Zipf law (Zipf 1949),
so a few tokens are common and a long tail is rare — the tail that model
collapse erases first (Shumailov et al. 2024). A token's successor law depends
on the previous token's word class:

    P_k(j | i) ∝ q_j · b_k[j] · A[class(i), class(j)]

with q the Zipf weights, b_k a log-normal boost per topic and token, and A a
log-normal class-to-class affinity. Everything about the language is exact:
``log_prob`` sums over topics, and the topic posterior and per-topic entropy
are closed forms.

Drift (``[language.drift]``): topic popularity π and boosts b_k do log-normal random walks, each tick's
step from its own stream; ``at(tick)`` is the exact language of that tick, rebuilt (start and transition
tables, O(K·C·V)) only when the boosts move, and sharing them when only popularity does.

New topics (``new_topics_per_tick``, ``reserved_vocab``): the last R = ``reserved_vocab`` token ids are
nobody's (boost 0) until a new topic takes them, and room is made for R // n new topics of n tokens each
(``new_topic_tokens``). New topic m owns tokens V − R + m·n … V − R + (m+1)·n − 1; the i-th of them weighs
like the language's i-th most common token (q_i) in it, times a log-normal boost — the name of a new thing is among
its topic's most common words. Otherwise it is an offshoot of a parent topic (drawn uniformly among the initial
ones): it says what its parent says about everything else, so only its own tokens tell the two apart. Until it
is born its popularity is 0 and no topic writes its tokens, so they have probability 0 in the truth; from its
birth tick on it weighs 1/K (the initial topics' mean) times its own popularity walk since birth, and every topic
writes its tokens at their Zipf-tail weight (a new word spreads). Events multiply a topic's weight by
1 + (surge − 1)·2^(−(t − tick)/half_life) from their tick on (:func:`simweb.language.drift.event_multiplier`).
Births, parents and new topics' boosts come from the drift streams only. Events never move the chains and a
birth moves them once, so the ticks between births share their tables (unless the boosts walk); chains, tables,
logs (on first use), posteriors and the unigram law are computed for the living topics only.
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs
from simweb.language.drift import Births, GaussianWalk, event_multiplier
from simweb.sampling import AliasTable, chunks

__all__ = ["MarkovLanguage", "NEW_TOPIC_TOKENS"]

NEW_TOPIC_TOKENS = 4  # reserved tokens a new topic takes when language.drift.new_topic_tokens is not given


def zipf(n: int, exponent: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def _chains(q: np.ndarray, boost: np.ndarray, affinity: np.ndarray, token_class: np.ndarray):
    """Start laws (K, V) and transitions (K, C, V): P_k(j | i) ∝ q_j · b_k[j] · A[class(i), class(j)]."""
    start = q * boost
    start /= start.sum(axis=1, keepdims=True)
    transition = (q * boost)[:, None, :] * affinity[None][:, :, token_class]
    transition /= transition.sum(axis=2, keepdims=True)
    return start, transition


def _living_chains(q: np.ndarray, boost: np.ndarray, affinity: np.ndarray, token_class: np.ndarray,
                   living: np.ndarray):
    """:func:`_chains` of the ``living`` topics only (bool, (K,)); the rows of the others are zero. A topic not yet
    born is never written nor scored (tables, logs and laws cover the living topics), so its chain would be
    wasted work; each row is normalised on its own, so a living row is the very one :func:`_chains` gives. The
    tables keep the memory layout :func:`_chains` gives them (its product broadcasts into a class-minor order),
    so a sum over them adds in the same order: token_marginals' einsum would round otherwise."""
    if living.all():
        return _chains(q, boost, affinity, token_class)
    start, transition = _chains(q, boost[living], affinity, token_class)
    shape = (len(boost),) + transition.shape[1:]
    full_start, full_transition = np.zeros_like(start, shape=boost.shape), np.zeros_like(transition, shape=shape)
    full_start[living], full_transition[living] = start, transition
    return full_start, full_transition


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a row impossible under every term stays at −inf, not nan
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.exp(a - m).sum(axis=axis))


class MarkovLanguage:
    family = "markov"
    is_tokens = True

    def __init__(self, *, vocab_size: int, doc_length: int, topic_probs: np.ndarray, start: np.ndarray,
                 transition: np.ndarray, token_class: np.ndarray, shares: "MarkovLanguage | None" = None):
        self.vocab_size = int(vocab_size)
        self.doc_length = int(doc_length)
        self.width = self.doc_length
        self.dtype = np.dtype(np.uint16)
        self.topic_probs = np.asarray(topic_probs, dtype=np.float64)  # (K,)
        self.start = np.asarray(start, dtype=np.float64)  # (K, V)
        self.transition = np.asarray(transition, dtype=np.float64)  # (K, C, V): law of the next token
        self.token_class = np.asarray(token_class, dtype=np.int64)  # (V,)
        self.topics, self.classes = self.transition.shape[:2]
        # the logs of the tables, computed on first use (most truths of a drifting run are never scored), or
        # those of ``shares``, a language holding these very tables
        self._logs_of: MarkovLanguage | None = shares
        self._log: tuple | None = None
        self._alive: tuple | None = None  # the logs of the topics of popularity > 0 (see _alive_logs)
        self._slots: np.ndarray | None = None  # with tables of the living topics only: each topic's place in them
        self._tables: tuple[AliasTable, AliasTable] | None = None
        self._unigram: np.ndarray | None = None
        self._root = self
        self._drift: _Motion | None = None  # how the truth moves, and the parts its tables are built from
        self._ticks: dict[int, MarkovLanguage] = {}
        self.initial_topics = self.topics  # topics from the start; the others are born later (new topics)
        self.new_tokens: np.ndarray | None = None  # (new topics, n): each new topic's own reserved token ids
        self.birth_ticks = np.empty(0, dtype=np.int64)  # the birth tick of each new topic born by now

    @classmethod
    def from_config(cls, cfg, *, rng: np.random.Generator, seed: int = 0) -> "MarkovLanguage":
        V, K, C = cfg.vocab_size, cfg.topics, cfg.classes
        q = zipf(V, cfg.zipf_exponent)
        token_class = rng.integers(0, C, size=V)
        boost = np.exp(cfg.topic_strength * rng.standard_normal((K, V)))
        affinity = np.exp(cfg.class_strength * rng.standard_normal((C, C)))
        topic_probs = zipf(K, cfg.topic_zipf_exponent)
        drift = getattr(cfg, "drift", None)
        reserved = (drift.reserved_vocab or 0) if drift is not None else 0
        births = drift is not None and bool(drift.new_topics_per_tick)
        new_tokens, full = None, boost
        if births:  # each new topic: an offshoot of a parent topic, with tokens of its own (from the drift stream)
            n = drift.new_topic_tokens or NEW_TOPIC_TOKENS
            new_tokens = V - reserved + np.arange(reserved // n * n).reshape(-1, n)
            stream = rngs.stream(seed, "drift", "new_topics")
            fresh = boost[stream.integers(0, K, size=len(new_tokens))]  # its parent's boosts (a copy)
            rows = np.arange(len(new_tokens))[:, None]
            # the i-th new token weighs like the language's i-th most common one, times a log-normal boost
            fresh[rows, new_tokens] = np.exp(cfg.topic_strength * stream.standard_normal(new_tokens.shape)) * (
                q[:n] / q[new_tokens])
            full = np.concatenate([boost, fresh])
            topic_probs = np.concatenate([topic_probs, np.zeros(len(new_tokens))])
        boost = full.copy()
        if reserved:  # the reserved ids are nobody's until their topic is born
            boost[:, V - reserved:] = 0.0
        start, transition = _chains(q, boost, affinity, token_class)
        lang = cls(vocab_size=V, doc_length=cfg.doc_length, topic_probs=topic_probs,
                   start=start, transition=transition, token_class=token_class)
        lang.initial_topics, lang.new_tokens = K, new_tokens
        events = (drift.events or ()) if drift is not None else ()
        if drift is not None and (drift.topic_sigma > 0 or drift.boost_sigma > 0 or births or events):
            K_all = len(boost)
            lang._drift = _Motion(
                topic_walk=(GaussianWalk(seed, K_all, drift.topic_sigma, name="topics")
                            if drift.topic_sigma > 0 else None),
                boost_walk=(GaussianWalk(seed, K_all * V, drift.boost_sigma, name="boosts")
                            if drift.boost_sigma > 0 else None),
                parts=(q, boost, affinity), full=full, reserved=reserved,
                width=(drift.new_topic_tokens or NEW_TOPIC_TOKENS) if births else 0,
                births=Births(seed, drift.new_topics_per_tick, len(new_tokens)) if births else None,
                events=tuple(events), half_life=drift.half_life or 1.0)
        return lang

    # ------------------------------------------------------------ sampling
    def sample(self, n: int, *, rng: np.random.Generator, topics: np.ndarray | None = None):
        """``n`` documents (uint16 tokens, shape (n, doc_length)) and their topics.

        ``topics`` fixes each document's topic; otherwise topics follow the topic law.
        """
        if topics is None:
            topics = rng.choice(self.topics, size=n, p=self.topic_probs)
        return self.draw(self.noise(n, rng=rng), topics=topics), np.asarray(topics, dtype=np.int64)

    def at(self, tick: int) -> "MarkovLanguage":
        """The truth of ``tick``: this very object at tick 0 and when nothing drifts; else a cached language
        whose popularity is π·exp(walk) (normalised) and boosts b_k·exp(walk). The last few ticks are kept."""
        root = self._root
        if root._drift is None or tick == 0:
            return root
        truth = root._ticks.get(tick)
        if truth is None:
            motion = root._drift
            topic_walk, boost_walk, (q, boost, affinity) = motion.topic_walk, motion.boost_walk, motion.parts
            born = motion.births.birth_ticks(tick) if motion.births is not None else None
            if born is None and not motion.events:  # the walks alone, exactly as before births and events
                pi = root.topic_probs * (np.exp(topic_walk.offset(tick)) if topic_walk is not None else 1.0)
            else:
                pi = root.popularity(tick, born)
            shared = root if born is None or not len(born) else None  # whose chains (and tables) it shares
            probs = pi / pi.sum()
            if boost_walk is not None:
                base = motion.boost(len(born)) if born is not None else boost
                moved = base * np.exp(boost_walk.offset(tick).reshape(boost.shape))
                start, transition = _living_chains(q, moved, affinity, root.token_class, probs > 0)
                shared = None
            elif shared is None:  # the born topics' tokens are written: chains for this many births, cached
                shared = root._born_chains(len(born))
            if shared is not None:
                start, transition = shared.start, shared.transition
            truth = MarkovLanguage(vocab_size=root.vocab_size, doc_length=root.doc_length, topic_probs=probs,
                                   start=start, transition=transition, token_class=root.token_class, shares=shared)
            if shared is not None:
                truth._tables = shared._alias()  # the chains did not move: share their sampling tables
                truth._slots = shared._slots
            truth._root = root
            truth.initial_topics, truth.new_tokens = root.initial_topics, root.new_tokens
            if born is not None:
                truth.birth_ticks = born
            if len(root._ticks) >= 4:
                root._ticks.pop(min(root._ticks))
            root._ticks[tick] = truth
        return truth

    def _born_chains(self, born: int) -> "MarkovLanguage":
        """A language holding the chains once ``born`` new topics are born (their tokens written by every topic:
        at their Zipf-tail weight, and at the top in their own topic); the last few are kept."""
        motion = self._drift
        cache = motion.chains
        if born not in cache:
            q, _, affinity = motion.parts
            living = np.zeros(self.topics)  # its tables hold the initial topics and the born ones
            living[:self.initial_topics + born] = 1.0
            start, transition = _living_chains(q, motion.boost(born), affinity, self.token_class, living > 0)
            if len(cache) >= 4:
                cache.pop(min(cache))
            cache[born] = MarkovLanguage(vocab_size=self.vocab_size, doc_length=self.doc_length,
                                         topic_probs=living / living.sum(), start=start, transition=transition,
                                         token_class=self.token_class)
            cache[born].initial_topics = self.initial_topics
        return cache[born]

    def popularity(self, tick: int, born: np.ndarray | None) -> np.ndarray:
        """Unnormalised topic weights at ``tick``: initial topics π_k·exp(walk_k(t)), new topics born at b
        1/K·exp(walk(t) − walk(b)), unborn ones 0; times the events' multipliers."""
        motion, K = self._drift, self.initial_topics
        w = self.topic_probs.copy()
        if born is not None and len(born):
            w[K:K + len(born)] = 1.0 / K
        if motion.topic_walk is not None:
            log = motion.topic_walk.offset(tick).copy()
            for b in np.unique(born) if born is not None else ():  # a new topic's walk starts at its birth
                since = np.flatnonzero(born == b) + K
                log[since] -= motion.topic_walk.offset(int(b))[since]
            w *= np.exp(log)
        if motion.events:
            w *= event_multiplier(motion.events, motion.half_life, tick, len(w))
        return w

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """The randomness of ``n`` documents: one uniform per token, shape (n, doc_length)."""
        return rng.random((self.doc_length, n)).T  # drawn step-major, so draw() reads it without a copy

    def draw(self, noise: np.ndarray, *, topics: np.ndarray) -> np.ndarray:
        """Documents of the given topics, each written from its own row of ``noise``."""
        topics = np.asarray(topics, dtype=np.int64)
        noise = np.asarray(noise)
        if len(noise) != len(topics):
            raise ValueError(f"{len(noise)} rows of noise for {len(topics)} topics")
        start_table, next_table = self._alias()  # stacked: one width
        if self._slots is not None:  # tables of the living topics only: topic → its row block
            topics = self._slots[topics]
        out = np.empty((len(topics), self.doc_length), dtype=self.dtype)
        W = next_table.width
        class_offset = self.token_class * W  # row (topic, class) starts at topic × classes × W + class × W
        for part in chunks(len(topics)):
            col, frac = next_table.split(noise[part].T)  # (L, n): one contiguous row per step
            x = start_table.draw_split(topics[part] * W, col[0], frac[0])
            out[part, 0] = x
            base = topics[part] * (self.classes * W)
            for t in range(1, self.doc_length):
                x = next_table.draw_split(base + class_offset[x], col[t], frac[t])
                out[part, t] = x
        return out

    def _alias(self) -> tuple[AliasTable, AliasTable]:
        if self._tables is None:
            if self.topics != self.initial_topics and not np.all(self.topic_probs > 0):
                # topics not yet born are never written: no tables for them (a topic's rows are found by _slots)
                alive = np.flatnonzero(self.topic_probs > 0)
                self._slots = np.full(self.topics, -1, dtype=np.int64)
                self._slots[alive] = np.arange(len(alive))
                self._tables = AliasTable.stacked(self.start[alive],
                                                  self.transition[alive].reshape(-1, self.vocab_size))
            else:
                self._tables = AliasTable.stacked(self.start, self.transition.reshape(-1, self.vocab_size))
        return self._tables

    # ------------------------------------------------------------ exact probabilities
    def topic_log_likelihood(self, docs: np.ndarray, chunk: int = 4096, *, alive: bool = False) -> np.ndarray:
        """log P(doc | topic k) for every document and topic, shape (n, K); with ``alive``, only for the topics
        of popularity > 0 (topics not yet born cost nothing), shape (n, alive topics)."""
        docs = np.asarray(docs, dtype=np.int64)
        log_start, log_transition = self._alive_logs() if alive else self._logs()
        K = len(log_start)
        # a row per (previous token's class, token), a column per topic: one take gathers a document's terms for
        # every topic (a fancy index into (K, C, V) cost about four times more)
        by_context = np.moveaxis(log_transition, 0, -1).reshape(-1, K)
        out = np.empty((len(docs), K))
        for lo in range(0, len(docs), chunk):
            d = docs[lo:lo + chunk]
            context = self.token_class[d[:, :-1]] * self.vocab_size + d[:, 1:]  # (n, L − 1)
            # the terms are added in the order the fancy index's sum added them, so the numbers are the same bits
            # (tests/language/test_markov.py pins it): a token at a time across topics, or, for one topic, a
            # document's row at once (numpy adds a contiguous row pairwise)
            if K == 1:
                terms = by_context[:, 0].take(context).sum(axis=1)[:, None]
            else:
                terms = by_context.take(context.T, axis=0).sum(axis=0)
            out[lo:lo + chunk] = log_start.T[d[:, 0]] + terms
        return out

    def _logs(self) -> tuple[np.ndarray, np.ndarray]:
        """(log start, log transition), shapes (K, V) and (K, C, V): computed once, on first use."""
        if self._logs_of is not None:
            return self._logs_of._logs()
        if self._log is None:
            with np.errstate(divide="ignore"):
                self._log = (np.log(self.start), np.log(self.transition))
        return self._log

    def _alive_logs(self) -> tuple[np.ndarray, np.ndarray]:
        """The logs of the topics of popularity > 0 only: of their rows alone unless the whole logs exist (a
        logarithm is taken element by element, so either way they are the same numbers)."""
        if self._alive is None:
            alive = self.topic_probs > 0
            if self._log is None and self._logs_of is None:
                with np.errstate(divide="ignore"):
                    self._alive = (np.log(self.start[alive]), np.log(self.transition[alive]))
            else:
                log_start, log_transition = self._logs()
                self._alive = (log_start[alive], log_transition[alive])
        return self._alive

    def _joint(self, docs: np.ndarray) -> np.ndarray:
        """log π_k + log P(doc | k), shape (n, K): −inf for a topic not yet born, without computing its chain."""
        with np.errstate(divide="ignore"):
            log_pi = np.log(self.topic_probs)
        if self.topics == self.initial_topics or np.all(self.topic_probs > 0):
            return self.topic_log_likelihood(docs) + log_pi
        alive = self.topic_probs > 0
        joint = np.full((len(docs), self.topics), -np.inf)
        joint[:, alive] = self.topic_log_likelihood(docs, alive=True) + log_pi[alive]
        return joint

    def log_prob(self, docs: np.ndarray) -> np.ndarray:
        """Exact log P(doc) = log Σ_k π_k P(doc | k), in nats, shape (n,)."""
        return _logsumexp(self._joint(docs), axis=1)

    def topic_posterior(self, docs: np.ndarray) -> np.ndarray:
        """P(topic | doc), shape (n, K)."""
        joint = self._joint(docs)
        joint -= joint.max(axis=1, keepdims=True)
        post = np.exp(joint)
        return post / post.sum(axis=1, keepdims=True)

    def token_marginals(self, topics: np.ndarray | None = None) -> np.ndarray:
        """P(x_t = j | topic k) for every position, shape (K, L, V), by propagating the chains (of ``topics``
        only, when given: shape (len(topics), L, V))."""
        start, transition = (self.start, self.transition) if topics is None else (
            self.start[topics], self.transition[topics])
        K, L, V, C = len(start), self.doc_length, self.vocab_size, self.classes
        out = np.empty((K, L, V))
        # each topic's tokens fall in bins of its own: one bincount adds every topic's class masses, in the
        # same order (token by token) as a bincount per topic would
        bins = (self.token_class[None, :] + C * np.arange(K)[:, None]).ravel()
        m = start
        for t in range(L):
            out[:, t] = m
            class_mass = np.bincount(bins, weights=np.ravel(m), minlength=K * C).reshape(K, C)
            m = np.einsum("kc,kcv->kv", class_mass, transition)
        return out

    def unigram(self) -> np.ndarray:
        """The true share of each token among all tokens humans write, shape (V,); computed once."""
        if self._unigram is None and self.topics != self.initial_topics:  # topics not yet born write nothing
            alive = np.flatnonzero(self.topic_probs > 0)
            marginals = self.token_marginals(alive)
            self._unigram = np.einsum("k,klv->v", self.topic_probs[alive], marginals) / self.doc_length
            self._unigram.flags.writeable = False
        if self._unigram is None:
            self._unigram = np.einsum("k,klv->v", self.topic_probs, self.token_marginals()) / self.doc_length
            self._unigram.flags.writeable = False
        return self._unigram

    def tail_tokens(self, mass: float) -> np.ndarray:
        """The rarest tokens that together hold at most ``mass`` of the true unigram law (bool, (V,))."""
        u = self.unigram()
        order = np.argsort(u, kind="stable")
        keep = np.cumsum(u[order]) <= mass
        tail = np.zeros(self.vocab_size, dtype=bool)
        tail[order[keep]] = True
        return tail

    def conditional_entropy(self) -> float:
        """H(doc | topic) in nats per document, exact: Σ_k π_k [H(start_k) + Σ_t Σ_c P_k(class_t = c) H(T_k[c])]."""
        marg = self.token_marginals()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_start, log_transition = self._logs()
            h_start = -np.nansum(self.start * log_start, axis=1)  # (K,)
            h_rows = -np.nansum(self.transition * log_transition, axis=2)  # (K, C)
        total = h_start.copy()
        for k in range(self.topics):
            class_mass = np.stack([np.bincount(self.token_class, weights=marg[k, t], minlength=self.classes)
                                   for t in range(self.doc_length - 1)])
            total[k] += (class_mass @ h_rows[k]).sum()
        return float(self.topic_probs @ total)

    def entropy(self, *, rng: np.random.Generator, n: int = 20_000) -> tuple[float, float]:
        """H(doc) in nats per document and its Monte-Carlo standard error.

        H(doc) = H(doc | topic) + H(topic) − E[H(topic | doc)]; the first two are
        exact, the last is an average over ``n`` sampled documents.
        """
        docs, _ = self.sample(n, rng=rng)
        post = self.topic_posterior(docs)
        with np.errstate(divide="ignore", invalid="ignore"):
            h_post = -np.nansum(post * np.log(post), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            h_topic = -np.nansum(self.topic_probs * np.log(self.topic_probs))
        value = self.conditional_entropy() + h_topic - h_post.mean()
        return float(value), float(h_post.std(ddof=1) / np.sqrt(n))


class _Motion:
    """How a markov truth moves: its walks, births and events, and the parts its tables are built from."""

    def __init__(self, *, topic_walk, boost_walk, parts, full, reserved, width, births, events, half_life):
        self.topic_walk, self.boost_walk, self.parts = topic_walk, boost_walk, parts
        # every boost, reserved tokens' included; how many ids are reserved; how many each new topic takes
        self.full, self.reserved, self.width = full, reserved, width
        self.births, self.events, self.half_life = births, events, half_life
        self.chains: dict = {}  # births so far → a language holding the chains then

    def boost(self, born: int) -> np.ndarray:
        """The boosts once ``born`` new topics are born: the reserved tokens of the others are nobody's."""
        b = self.full.copy()
        V = b.shape[1]
        b[:, V - self.reserved + born * self.width:] = 0.0  # topics are born in order: the hidden ids are a suffix
        return b
