"""The site graph: who links to whom on the simulated web.

Sites join over time. A newcomer links out to ``links_per_site`` existing
sites and receives as many links, each end picked by preferential attachment
(Barabási & Albert 1999: weight = in-degree + 1) times a homophily factor for
sites of its own topic, so the graph grows hubs and topical neighbourhoods.
The ``links_per_site`` targets are distinct, and so are the sources: each draw
is renormalised over the sites not yet picked (a repeat is rejected and drawn
again, which gives exactly that law).

Drawing is O(1) a link, so a graph of n sites grows in O(n · links), not
O(n²): an *urn* holds every site once plus once per link it has received, so a
uniform entry is a site drawn ∝ in-degree + 1 (the linear-time method of
Batagelj & Brandes 2005); one urn per topic holds the same entries of that
topic's sites. With W the urn's length and U the newcomer's topic urn's, the
weight (in-degree + 1) × (homophily if same topic else 1) is the mixture
"an entry of the whole urn" (mass W) + "an entry of the own topic's urn"
(mass (homophily − 1) · U): one uniform decides both the part and the entry.

The links live in a numpy array (``edges``), per-site attributes in arrays beside it. The networkx
``DiGraph`` is built from them on first use and kept up from then on — by what walks it: a BFS or
PageRank crawl, and a site's PageRank as its reputation (opt-outs by reputation, the allowlist filter).
Growing the graph never builds it (at 2,000 sites it was half the cost of growing them), and networkx
is imported only then.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["SiteGraph", "NEVER"]

NEVER = np.iinfo(np.int32).max  # blocked_since of a site that does not refuse AI crawlers

CHUNK = 1 << 16  # uniforms drawn at once while growing
MAX_TRIES = 64  # rejected draws per link before a site's remaining links are drawn from explicit weights


class SiteGraph:
    def __init__(self, *, links_per_site: int, homophily: float, population_share: np.ndarray,
                 topic_probs: np.ndarray):
        if not homophily >= 1.0:
            raise ValueError(f"homophily must be >= 1, got {homophily}")
        self.links_per_site = int(links_per_site)
        self.homophily = float(homophily)
        self.population_share = np.asarray(population_share, dtype=np.float64)
        self.population_share = self.population_share / self.population_share.sum()
        self.topic_probs = np.asarray(topic_probs, dtype=np.float64)
        self._graph: nx.DiGraph | None = None  # built from ``edges`` when first asked for (``graph``)
        self.population = np.empty(0, dtype=np.int16)  # publisher population owning each site
        self.topic = np.empty(0, dtype=np.int16)
        self.created = np.empty(0, dtype=np.int32)  # tick the site joined
        self._in_degree = np.empty(0, dtype=np.int64)
        self.edges = np.empty((0, 2), dtype=np.int64)  # every link, in the order it was made
        self._urns: tuple[array, list[array]] | None = None  # built on the first grow (replicas never need them)
        self.blocked_since = np.empty(0, dtype=np.int32)  # tick a site came to refuse AI crawlers (NEVER: not yet)
        self.blocks = np.empty((0, 2), dtype=np.int64)  # every (site, tick) block, in the order it was made

    @property
    def n_sites(self) -> int:
        return len(self.population)

    def grow(self, n_new: int, tick: int, *, rng: np.random.Generator,
             topic_probs: np.ndarray | None = None) -> np.ndarray:
        """Add ``n_new`` sites at ``tick``; returns their ids. ``topic_probs``: the law of their topics when it
        is not the one at start (new topics are born: new sites write about them too); same length."""
        if n_new <= 0:
            return np.empty(0, dtype=np.int64)
        first = self.n_sites
        pops = rng.choice(len(self.population_share), size=n_new, p=self.population_share).astype(np.int16)
        law = self.topic_probs if topic_probs is None else topic_probs
        topics = rng.choice(len(law), size=n_new, p=law).astype(np.int16)
        urn, topic_urns = self._urn()
        self.population = np.concatenate([self.population, pops])
        self.topic = np.concatenate([self.topic, topics])
        self.created = np.concatenate([self.created, np.full(n_new, tick, dtype=np.int32)])
        src, dst = self._link(first, n_new, urn, topic_urns, rng)
        edges = np.stack([np.frombuffer(src, dtype=np.int64), np.frombuffer(dst, dtype=np.int64)], axis=1)
        self.blocked_since = np.concatenate([self.blocked_since, np.full(n_new, NEVER, dtype=np.int32)])
        self._in_degree = np.concatenate([self._in_degree, np.zeros(n_new, dtype=np.int64)])
        self._in_degree += np.bincount(edges[:, 1], minlength=self.n_sites)
        self.edges = np.concatenate([self.edges, edges])
        return np.arange(first, first + n_new)

    def _link(self, first: int, n_new: int, urn: array, topic_urns: list[array], rng: np.random.Generator):
        """The links of sites ``first`` .. ``first + n_new - 1``, made one site after the other (the urns grow)."""
        k, extra = self.links_per_site, self.homophily - 1.0
        topic = self.topic.tolist()
        src, dst = array("q"), array("q")
        uniforms = _uniforms(rng, min(CHUNK, 2 * k * n_new + 64))
        for site in range(first, first + n_new):
            own = topic_urns[topic[site]]
            kk = min(k, site)
            if kk == site:  # every earlier site, both ways: nothing to draw
                targets, sources = list(range(site)), list(range(site))
            else:
                W, U = len(urn), len(own)
                total = W + extra * U
                targets, sources = [], []
                for picked in (targets, sources):
                    tries = 0
                    while len(picked) < kk:
                        x = next(uniforms) * total
                        if x < W:
                            c = urn[min(int(x), W - 1)]
                        else:
                            c = own[min(int((x - W) / extra), U - 1)]
                        if c not in picked:
                            picked.append(c)
                        else:
                            tries += 1
                            if tries > MAX_TRIES * kk:  # a few sites hold nearly all the weight
                                picked.extend(self._explicit(site, kk - len(picked), picked, urn, topic, rng))
            for t in targets:  # a target gains a link: one more entry, in the whole urn and its topic's
                urn.append(t)
                topic_urns[topic[t]].append(t)
            own_entries = array("i", [site]) * (1 + kk)  # itself, once per link from its sources
            urn.extend(own_entries)
            own.extend(own_entries)
            src.extend([site] * len(targets))
            dst.extend(targets)
            src.extend(sources)
            dst.extend([site] * len(sources))
        return src, dst

    def _explicit(self, site: int, n: int, picked: list[int], urn: array, topic: list[int],
                  rng: np.random.Generator) -> list[int]:
        """``n`` more distinct sites below ``site``, none of ``picked``, by their weights (the same law, O(sites))."""
        weight = np.bincount(np.frombuffer(urn, dtype=np.int32), minlength=site)[:site].astype(np.float64)
        weight[np.asarray(topic[:site]) == topic[site]] *= self.homophily
        weight[picked] = 0.0
        return rng.choice(site, size=n, replace=False, p=weight / weight.sum()).tolist()

    def _urn(self) -> tuple[array, list[array]]:
        """The urns of the sites so far, rebuilt from the links in the order they were made (after a restore)."""
        if self._urns is not None:
            return self._urns
        n, edges = self.n_sites, self.edges
        owner = edges.max(axis=1)  # the site whose arrival made the link
        out = edges[:, 0] > edges[:, 1]  # (site, target): the target gains an entry; else (source, site)
        received = np.bincount(owner[~out], minlength=n)  # links a site got from its sources on arrival
        values = np.concatenate([edges[out, 1], np.repeat(np.arange(n), 1 + received)])
        site_of = np.concatenate([owner[out], np.repeat(np.arange(n), 1 + received)])
        second = np.concatenate([np.zeros(int(out.sum()), np.int8), np.ones(n + int(received.sum()), np.int8)])
        order = np.lexsort((second, site_of))  # per arriving site: its targets, then itself (stable)
        entries = values[order].astype(np.int32)
        urn = array("i", entries.tobytes())
        entry_topic = self.topic[entries] if len(entries) else np.empty(0, dtype=np.int16)
        topic_urns = [array("i", entries[entry_topic == t].tobytes()) for t in range(len(self.topic_probs))]
        self._urns = (urn, topic_urns)
        return self._urns

    def block(self, sites: np.ndarray, tick: int) -> None:
        """``sites`` refuse AI crawlers from ``tick`` on (robots.txt); a block is never lifted."""
        sites = np.asarray(sites, dtype=np.int64)
        self.blocked_since[sites] = tick
        self.blocks = np.concatenate([self.blocks, np.stack([sites, np.full(len(sites), tick)], axis=1)])

    # ------------------------------------------------------------ replicas and checkpoints
    def state(self, since_sites: int = 0, since_edges: int = 0, since_blocks: int = 0) -> dict[str, np.ndarray]:
        """The sites, links and blocks added after the first ``since_*`` (all of them by default), as arrays."""
        out = {"population": self.population[since_sites:], "topic": self.topic[since_sites:],
               "created": self.created[since_sites:], "in_degree": self._in_degree.copy(),
               "edges": self.edges[since_edges:]}
        if len(self.blocks) > since_blocks:  # only a web whose sites opt out carries them
            out["blocks"] = self.blocks[since_blocks:]
        return out

    def apply(self, delta: dict[str, np.ndarray]) -> None:
        """Add sites and links made elsewhere (a replica follows the engine's graph)."""
        first = self.n_sites
        self.population = np.concatenate([self.population, delta["population"]])
        self.topic = np.concatenate([self.topic, delta["topic"]])
        self.created = np.concatenate([self.created, delta["created"]])
        self.blocked_since = np.concatenate([self.blocked_since, np.full(self.n_sites - first, NEVER, dtype=np.int32)])
        if "blocks" in delta:
            blocks = np.asarray(delta["blocks"], dtype=np.int64).reshape(-1, 2)
            self.blocked_since[blocks[:, 0]] = blocks[:, 1]
            self.blocks = np.concatenate([self.blocks, blocks])
        self._in_degree = np.asarray(delta["in_degree"]).copy()
        edges = np.asarray(delta["edges"], dtype=np.int64).reshape(-1, 2)
        self.edges = np.concatenate([self.edges, edges])
        self._urns = None  # rebuilt from the links if this graph ever grows itself

    @property
    def graph(self) -> nx.DiGraph:
        """The sites and links as a networkx ``DiGraph``, brought up to date with the sites and links added since
        it was last asked for. Sites join in id order and a link only joins sites already there, so adding the
        new sites, then the new links in the order they were made, gives the graph — its node order and each
        site's neighbour order — that adding them as they came would have."""
        if self._graph is None:
            import networkx as nx

            self._graph, self._graph_has = nx.DiGraph(), (0, 0)  # (sites, links) in it
        sites, links = self._graph_has
        if sites < self.n_sites:
            self._graph.add_nodes_from(range(sites, self.n_sites))
        if links < len(self.edges):
            new = self.edges[links:]
            self._graph.add_edges_from(zip(new[:, 0].tolist(), new[:, 1].tolist()))
        self._graph_has = (self.n_sites, len(self.edges))
        return self._graph

    def sites_of(self, population: int) -> np.ndarray:
        return np.flatnonzero(self.population == population)

    def bfs_rank(self, seeds: np.ndarray) -> np.ndarray:
        """Visit order of every site in a breadth-first crawl from ``seeds`` (−1 = not reached)."""
        rank = np.full(self.n_sites, -1, dtype=np.int64)
        order = 0
        graph = self.graph  # brought up to date once, not per site visited
        frontier = [int(s) for s in seeds]
        for s in frontier:
            if rank[s] < 0:
                rank[s] = order
                order += 1
        while frontier:
            nxt = []
            for site in frontier:
                for succ in sorted(graph.successors(site)):
                    if rank[succ] < 0:
                        rank[succ] = order
                        order += 1
                        nxt.append(succ)
            frontier = nxt
        return rank

    def pagerank_rank(self) -> np.ndarray:
        """Sites ordered by PageRank (highest first, ties by id): rank of each site."""
        import networkx as nx

        scores = nx.pagerank(self.graph, alpha=0.85, tol=1e-10, max_iter=1000)
        score = np.array([scores[s] for s in range(self.n_sites)])
        order = np.lexsort((np.arange(self.n_sites), -score))
        rank = np.empty(self.n_sites, dtype=np.int64)
        rank[order] = np.arange(self.n_sites)
        return rank


def _uniforms(rng: np.random.Generator, chunk: int):
    """Uniforms in [0, 1) one at a time, drawn ``chunk`` at a time (the same sequence for the same stream)."""
    while True:
        yield from rng.random(chunk).tolist()
