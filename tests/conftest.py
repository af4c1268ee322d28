"""One Ray cluster for the whole test session, started only if a test asks for it.

It is a simulated three-node cluster (``ray.cluster_utils.Cluster``) on this one machine, with one
CPU per node, so the Ray tests see actors spread over several nodes. Each node's object store is 1 GiB, as in the
web_100m benchmark's cluster (``cluster_utils`` would give 150 MiB): a tenth of web_100m holds up to ~400 MiB of
objects that are needed at once (the three labs' models pinned by the shards that sample from them, each tick's
plan), and a store too small for them overflows to files on disk, which Ray refuses once the disk is 95 % used.
"""

from __future__ import annotations

import logging

import pytest

OBJECT_STORE_MB = 1024  # per node


@pytest.fixture(scope="session")
def ray_cluster():
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_MB * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(**node)
    ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()
