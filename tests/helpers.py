"""Small scenarios for tests, built through the real loader."""

from __future__ import annotations

import numpy as np

from simweb.scenario import parse_scenario

# One population that writes only AI pages once a model exists; two labs.
# Small enough to run a dozen generations in well under a second.
COLLAPSE = """
[run]
name = "collapse"
seed = 3
ticks = 6
executor = "local"

[language]
vocab_size = 128
topics = 4
doc_length = 32

[web]
initial_sites = 40
sites_per_tick = 2

[[publishers]]
name = "all"
site_share = 1.0
initial_pages = 300
pages_per_tick = 300
top_p = 0.95
ai_adoption = { start = 1.0, end = 1.0 }

[[labs]]
name = "replace"
release_every = 1
crawl_budget = 300
new_only = true
model = { alpha = 0.0 }

[[labs]]
name = "keep"
market_share = 0.0
release_every = 1
crawl_budget = 300
regime = "accumulate"
reserve_docs = 300
reserve_fraction = 0.5
model = { alpha = 0.0 }

[evaluation]
human_docs = 500
sample_docs = 500
benchmark_docs = 100
"""


def scenario(text: str = COLLAPSE, *overrides: str):
    return parse_scenario(text, list(overrides))


# The smallest valid scenario: one population, one lab, three ticks.
MINIMAL = """
[run]
ticks = 3

[[publishers]]
name = "pub"
site_share = 1.0

[[labs]]
name = "lab"
"""


def brute_shape(row, temperature: float, top_p: float) -> np.ndarray:
    """One row shaped by hand: p^(1/T) renormalised, then the most probable entries until their mass reaches top_p."""
    p = [x ** (1.0 / temperature) if x > 0 else 0.0 for x in row]
    s = sum(p)
    p = [x / s for x in p]
    if top_p < 1.0:
        order = sorted(range(len(p)), key=lambda j: (-p[j], j))
        kept, mass = [], 0.0
        for j in order:
            if mass >= top_p:
                break
            kept.append(j)
            mass += p[j]
        p = [p[j] if j in kept else 0.0 for j in range(len(p))]
        s = sum(p)
        p = [x / s for x in p]
    return np.array(p)
