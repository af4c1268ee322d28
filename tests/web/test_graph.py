from __future__ import annotations

import numpy as np

from simweb.web import SiteGraph


def _graph(homophily=1.0, seed=0, n=300):
    g = SiteGraph(links_per_site=3, homophily=homophily, population_share=np.array([1.0, 3.0]),
                  topic_probs=np.full(4, 0.25))
    g.grow(n, 0, rng=np.random.default_rng(seed))
    return g


def test_growth_adds_sites_with_attributes_and_links():
    g = _graph()
    assert g.n_sites == 300 and g.graph.number_of_nodes() == 300
    # every site after the first three links out to 3 others and receives 3 links
    assert all(g.graph.out_degree(s) >= 3 for s in range(4, 300))
    new = g.grow(5, 7, rng=np.random.default_rng(1))
    assert new.tolist() == list(range(300, 305)) and (g.created[new] == 7).all()
    assert abs((g.population == 1).mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / 305)


def test_same_seed_same_graph():
    a, b = _graph(seed=4), _graph(seed=4)
    assert sorted(a.graph.edges) == sorted(b.graph.edges)
    assert sorted(a.graph.edges) != sorted(_graph(seed=5).graph.edges)


def test_preferential_attachment_grows_hubs():
    g = _graph(n=1000)
    indeg = np.array([g.graph.in_degree(s) for s in range(1000)])
    # early sites collect far more links than late ones
    assert indeg[:50].mean() > 3 * indeg[-500:].mean()


def test_homophily_raises_the_share_of_same_topic_links():
    def same_topic_share(g):
        edges = np.array(list(g.graph.edges))
        return float((g.topic[edges[:, 0]] == g.topic[edges[:, 1]]).mean())

    plain, homophilous = same_topic_share(_graph(1.0, n=600)), same_topic_share(_graph(8.0, n=600))
    assert abs(plain - 0.25) < 0.06
    assert homophilous > plain + 0.25


def test_bfs_rank_orders_by_distance():
    g = _graph(n=100)
    rank = g.bfs_rank(np.array([0]))
    import networkx as nx

    dist = nx.single_source_shortest_path_length(g.graph, 0)
    reached = np.flatnonzero(rank >= 0)
    assert set(reached.tolist()) == set(dist)
    by_rank = sorted(reached, key=lambda s: rank[s])
    assert [dist[s] for s in by_rank] == sorted(dist[s] for s in by_rank)


# ---------------------------------------------------------------- the urn sampler against the exact law
def _replica(g: SiteGraph, topic_probs) -> SiteGraph:
    """A graph rebuilt from ``g``'s state (as after a checkpoint restore): its urns come from the links."""
    copy = SiteGraph(links_per_site=g.links_per_site, homophily=g.homophily, population_share=np.ones(1),
                     topic_probs=topic_probs)
    copy.apply(g.state())
    return copy


def _ordered_law(weight: np.ndarray, k: int) -> dict[tuple, float]:
    """P(the k draws come out in this order), drawing without replacement with renormalised weights."""
    import itertools

    out = {}
    for seq in itertools.permutations(range(len(weight)), k):
        p, left = 1.0, weight.sum()
        for s in seq:
            p *= weight[s] / left
            left -= weight[s]
        out[seq] = p
    return out


def _check_law(base: SiteGraph, topic_probs, trials: int) -> None:
    """A newcomer's ordered targets and sources, over many seeds, against the exact law given its topic."""
    from scipy.stats import chisquare

    n, k = base.n_sites, base.links_per_site
    indeg = np.bincount(base.edges[:, 1], minlength=n)
    laws = {}
    for t in range(len(topic_probs)):
        laws[t] = _ordered_law((indeg + 1.0) * np.where(base.topic == t, base.homophily, 1.0), k)
    cells = list(laws[0])
    expected = np.zeros(len(cells))
    observed = np.zeros(len(cells))
    where = {c: i for i, c in enumerate(cells)}
    for seed in range(trials):
        g = _replica(base, topic_probs)
        g.grow(1, 1, rng=np.random.default_rng([7, seed]))
        mine = g.edges[len(base.edges):]
        targets, sources = tuple(mine[:k, 1]), tuple(mine[k:, 0])
        law = laws[int(g.topic[n])]
        expected += 2 * np.array([law[c] for c in cells])
        observed[where[targets]] += 1
        observed[where[sources]] += 1
    big = expected >= 5  # chi-square needs expected counts of 5 or more; the rest are pooled into one cell
    obs, exp = observed[big], expected[big]
    if not big.all():
        obs, exp = np.r_[obs, observed[~big].sum()], np.r_[exp, expected[~big].sum()]
    assert chisquare(obs, exp).pvalue > 1e-3, (obs, exp)


def test_a_newcomer_links_by_in_degree_and_homophily_without_replacement():
    # 9 sites on 2 topics, grown by the sampler itself; the 10th site's 2 targets and 2 sources (72 orders each)
    base = SiteGraph(links_per_site=2, homophily=5.0, population_share=np.ones(1), topic_probs=np.array([0.3, 0.7]))
    base.grow(9, 0, rng=np.random.default_rng(3))
    assert len(set(np.bincount(base.edges[:, 1]))) > 2  # in-degrees differ: the law is not uniform
    _check_law(base, [0.3, 0.7], trials=6000)


def test_the_law_holds_when_one_site_holds_nearly_all_the_weight():
    # one site of topic 0 with homophily 1000: a topic-0 newcomer draws it again and again, so the sampler
    # falls back to explicit weights for its remaining links; the law must not change
    base = SiteGraph(links_per_site=2, homophily=1000.0, population_share=np.ones(1), topic_probs=np.array([0.5, 0.5]))
    edges = np.array([[1, 0], [2, 0], [3, 0], [3, 1], [4, 2], [0, 4]], dtype=np.int64)
    base.apply({"population": np.zeros(6, np.int16), "topic": np.array([0, 1, 1, 1, 1, 1], np.int16),
                "created": np.zeros(6, np.int32), "in_degree": np.bincount(edges[:, 1], minlength=6),
                "edges": edges})
    _check_law(base, [0.5, 0.5], trials=4000)


def test_a_restored_graph_grows_exactly_like_the_original():
    a = _graph(homophily=4.0, seed=2, n=200)
    b = _replica(a, np.full(4, 0.25))
    b.population_share = a.population_share
    for g in (a, b):
        g.grow(150, 3, rng=np.random.default_rng(9))
    assert np.array_equal(a.edges, b.edges) and np.array_equal(a.topic, b.topic)
    assert np.array_equal(a._in_degree, np.bincount(a.edges[:, 1], minlength=a.n_sites))


def test_links_are_distinct_and_the_same_topic_share_matches_the_formula():
    # the first target of each site is of the newcomer's topic with probability h·S / (h·S + O), where S and O
    # are the in-degree + 1 masses of same- and other-topic sites when it arrives: summed over 3000 sites,
    # the observed count must sit within 4 binomial standard errors of the formula
    h, k, K = 6.0, 3, 5
    g = SiteGraph(links_per_site=k, homophily=h, population_share=np.ones(1), topic_probs=np.full(K, 1 / K))
    g.grow(3000, 0, rng=np.random.default_rng(11))
    owner = g.edges.max(axis=1)
    mass = np.zeros(K)
    expected = variance = observed = 0.0
    pos = 0
    for site in range(g.n_sites):
        kk = min(k, site)
        mine = g.edges[pos:pos + 2 * kk]
        pos += 2 * kk
        assert (owner[pos - 2 * kk:pos] == site).all()
        targets, sources = mine[:kk, 1], mine[kk:, 0]
        assert len(set(targets.tolist())) == kk and len(set(sources.tolist())) == kk
        t = g.topic[site]
        if site > k:
            p = h * mass[t] / (h * mass[t] + mass.sum() - mass[t])
            expected, variance = expected + p, variance + p * (1 - p)
            observed += g.topic[targets[0]] == t
        np.add.at(mass, g.topic[targets], 1.0)
        mass[t] += 1 + kk
    assert abs(observed - expected) < 4 * np.sqrt(variance), (observed, expected, np.sqrt(variance))


def test_the_networkx_graph_built_late_is_the_one_built_as_sites_came():
    # the DiGraph is built from the links when first asked for; it must be the graph adding each grow's sites,
    # then its links, would have made — the same nodes, links and neighbour order, so the same PageRank
    import networkx as nx

    def grown(look_every_time: bool, replica: bool):
        g = SiteGraph(links_per_site=3, homophily=2.0, population_share=np.array([1.0, 3.0]),
                      topic_probs=np.full(4, 0.25))
        copy = SiteGraph(links_per_site=3, homophily=2.0, population_share=np.ones(1), topic_probs=np.ones(1))
        rng = np.random.default_rng(8)
        for tick, n in enumerate((40, 7, 0, 25, 1)):
            sites, links = g.n_sites, len(g.edges)
            g.grow(n, tick, rng=rng)
            copy.apply(g.state(sites, links))
            if look_every_time:
                (copy if replica else g).graph
        return copy if replica else g

    eager = nx.DiGraph()  # as sites came: each grow's sites, then its links
    g = SiteGraph(links_per_site=3, homophily=2.0, population_share=np.array([1.0, 3.0]), topic_probs=np.full(4, 0.25))
    rng = np.random.default_rng(8)
    for tick, n in enumerate((40, 7, 0, 25, 1)):
        links = len(g.edges)
        new = g.grow(n, tick, rng=rng)
        eager.add_nodes_from(new.tolist())
        eager.add_edges_from(map(tuple, g.edges[links:].tolist()))

    def shape(graph):
        return (list(graph.nodes), [list(graph.succ[s]) for s in graph], [list(graph.pred[s]) for s in graph])

    for look in (True, False):
        for replica in (False, True):
            late = grown(look, replica)
            assert shape(late.graph) == shape(eager), (look, replica)
            assert nx.pagerank(late.graph) == nx.pagerank(eager)
