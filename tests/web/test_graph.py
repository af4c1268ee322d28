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
