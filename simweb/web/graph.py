"""The site graph: who links to whom on the simulated web.

Sites join over time. A newcomer links out to ``links_per_site`` existing
sites and receives as many links, each end picked by preferential attachment
(Barabási & Albert 1999: weight = in-degree + 1) times a homophily factor for
sites of its own topic, so the graph grows hubs and topical neighbourhoods.
The graph is a networkx ``DiGraph`` for crawling; per-site attributes live in
numpy arrays beside it.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

__all__ = ["SiteGraph", "NEVER"]

NEVER = np.iinfo(np.int32).max  # blocked_since of a site that does not refuse AI crawlers


class SiteGraph:
    def __init__(self, *, links_per_site: int, homophily: float, population_share: np.ndarray,
                 topic_probs: np.ndarray):
        self.links_per_site = int(links_per_site)
        self.homophily = float(homophily)
        self.population_share = np.asarray(population_share, dtype=np.float64)
        self.population_share = self.population_share / self.population_share.sum()
        self.topic_probs = np.asarray(topic_probs, dtype=np.float64)
        self.graph = nx.DiGraph()
        self.population = np.empty(0, dtype=np.int16)  # publisher population owning each site
        self.topic = np.empty(0, dtype=np.int16)
        self.created = np.empty(0, dtype=np.int32)  # tick the site joined
        self._in_degree = np.empty(0, dtype=np.int64)
        self.edges = np.empty((0, 2), dtype=np.int64)  # every link, in the order it was made
        self.blocked_since = np.empty(0, dtype=np.int32)  # tick a site came to refuse AI crawlers (NEVER: not yet)
        self.blocks = np.empty((0, 2), dtype=np.int64)  # every (site, tick) block, in the order it was made

    @property
    def n_sites(self) -> int:
        return len(self.population)

    def grow(self, n_new: int, tick: int, *, rng: np.random.Generator) -> np.ndarray:
        """Add ``n_new`` sites at ``tick``; returns their ids."""
        if n_new <= 0:
            return np.empty(0, dtype=np.int64)
        first = self.n_sites
        pops = rng.choice(len(self.population_share), size=n_new, p=self.population_share).astype(np.int16)
        topics = rng.choice(len(self.topic_probs), size=n_new, p=self.topic_probs).astype(np.int16)
        self.population = np.concatenate([self.population, pops])
        self.topic = np.concatenate([self.topic, topics])
        self.created = np.concatenate([self.created, np.full(n_new, tick, dtype=np.int32)])
        self.blocked_since = np.concatenate([self.blocked_since, np.full(n_new, NEVER, dtype=np.int32)])
        self._in_degree = np.concatenate([self._in_degree, np.zeros(n_new, dtype=np.int64)])
        edges = []
        for site in range(first, first + n_new):
            self.graph.add_node(site)
            if site == 0:
                continue
            weight = (self._in_degree[:site] + 1.0) * np.where(self.topic[:site] == self.topic[site],
                                                               self.homophily, 1.0)
            k = min(self.links_per_site, site)
            p = weight / weight.sum()
            targets = rng.choice(site, size=k, replace=False, p=p)
            sources = rng.choice(site, size=k, replace=False, p=p)
            self._in_degree[targets] += 1
            self._in_degree[site] += k
            edges.extend((site, int(t)) for t in targets)
            edges.extend((int(s), site) for s in sources)
        self.graph.add_edges_from(edges)
        self.edges = np.concatenate([self.edges, np.array(edges, dtype=np.int64).reshape(-1, 2)])
        return np.arange(first, first + n_new)

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
        self.graph.add_nodes_from(range(first, self.n_sites))
        self.graph.add_edges_from(map(tuple, np.asarray(delta["edges"]).tolist()))
        self.edges = np.concatenate([self.edges, np.asarray(delta["edges"], dtype=np.int64).reshape(-1, 2)])

    def sites_of(self, population: int) -> np.ndarray:
        return np.flatnonzero(self.population == population)

    def bfs_rank(self, seeds: np.ndarray) -> np.ndarray:
        """Visit order of every site in a breadth-first crawl from ``seeds`` (−1 = not reached)."""
        rank = np.full(self.n_sites, -1, dtype=np.int64)
        order = 0
        frontier = [int(s) for s in seeds]
        for s in frontier:
            if rank[s] < 0:
                rank[s] = order
                order += 1
        while frontier:
            nxt = []
            for site in frontier:
                for succ in sorted(self.graph.successors(site)):
                    if rank[succ] < 0:
                        rank[succ] = order
                        order += 1
                        nxt.append(succ)
            frontier = nxt
        return rank

    def pagerank_rank(self) -> np.ndarray:
        """Sites ordered by PageRank (highest first, ties by id): rank of each site."""
        scores = nx.pagerank(self.graph, alpha=0.85, tol=1e-10, max_iter=1000)
        score = np.array([scores[s] for s in range(self.n_sites)])
        order = np.lexsort((np.arange(self.n_sites), -score))
        rank = np.empty(self.n_sites, dtype=np.int64)
        rank[order] = np.arange(self.n_sites)
        return rank
