"""The Ray executor's host layout, without a cluster: what each host actor reserves."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")


class _Remote:
    """Stands in for ray.remote(_Host): records each host's options, starts nothing."""

    def __init__(self):
        self.reserved: list[dict] = []

    def options(self, **options):
        remote = self

        class _Starter:
            def remote(self):
                remote.reserved.append(options)

                class _Host:
                    class add:  # noqa: N801 - stands in for an actor method
                        @staticmethod
                        def remote(*args):
                            return object()

                return _Host()

        return _Starter()


@pytest.mark.parametrize("shards, labs, gpu_labs", [(2, 1, 1), (2, 2, 2), (1, 1, 1), (3, 2, 1)])
def test_the_hosts_fit_the_smallest_node_with_trainers_on_gpus(monkeypatch, shards, labs, gpu_labs):
    # a 2-CPU node with a GPU (a notebook's VM): every host, the trainers' GPU hosts included, must fit in it
    # at once, or the last is left pending until READY_TIMEOUT_S
    from simweb.executors import ray_executor

    monkeypatch.setattr(ray_executor.ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 2.0, "GPU": 4.0}}])
    ex = ray_executor.RayExecutor.__new__(ray_executor.RayExecutor)
    ex._remote = _Remote()
    monkeypatch.setattr(ex, "cluster", lambda: {"nodes": 1, "cpus": 2.0, "gpus": 4.0})
    ex.plan({"shard": shards, "scraper": labs, "trainer": labs, "gpu_trainer": gpu_labs})  # as Fleet.start
    for _ in range(shards):
        ex.start(object, role="shard")
    for _ in range(labs):
        ex.start(object, role="scraper")
    for i in range(labs):
        ex.start(object, role="trainer", gpus=1.0 if i < gpu_labs else 0.0)
    total = sum(o["num_cpus"] for o in ex._remote.reserved)
    assert total <= 0.9 * 2.0 + 1e-9, ex._remote.reserved


def test_a_call_that_waited_on_a_dead_host_is_an_agent_lost(monkeypatch):
    """A host killed mid-generation fails the calls of other hosts that wait on its answers: Ray reports those as
    a RayTaskError whose cause is the actor's death. The engine recovers from ActorLost only, so that is what
    gather must raise — not the RayTaskError, which would end the run as an internal error."""
    from ray.exceptions import ActorDiedError, RayTaskError

    from simweb.executors import ActorLost
    from simweb.executors.ray_executor import RayExecutor

    def failing(refs):
        raise RayTaskError("invoke", "Traceback: ...", ActorDiedError()).as_instanceof_cause()

    monkeypatch.setattr(ray, "get", failing)
    ex = RayExecutor.__new__(RayExecutor)  # no cluster: gather only calls ray.get
    with pytest.raises(ActorLost):
        ex.gather(["a reference"])
    with pytest.raises(ActorLost):
        ex.gather({"lab": "a reference"})


@pytest.mark.parametrize("error", ["OutOfDiskError", "ObjectStoreFullError"])
def test_an_object_store_with_no_room_is_the_cluster_full_not_an_internal_error(monkeypatch, error):
    """A node's object store full, with its disk over Ray's 95 % line, fails a call with OutOfDiskError (seen on a
    CI machine with a nearly full disk), wrapped in a RayTaskError when a host met it; the engine turns
    ClusterFull into one line that keeps the checkpoint, so that is what gather must raise."""
    import ray.exceptions
    from ray.exceptions import RayTaskError

    from simweb.executors import ClusterFull
    from simweb.executors.ray_executor import RayExecutor

    cls = getattr(ray.exceptions, error)
    raised = iter([RayTaskError("invoke", "Traceback: ...", cls("no room")).as_instanceof_cause(), cls("no room")])

    def failing(refs):
        raise next(raised)

    monkeypatch.setattr(ray, "get", failing)
    ex = RayExecutor.__new__(RayExecutor)  # no cluster: gather only calls ray.get
    for _ in range(2):  # met by a host, then by the driver itself
        with pytest.raises(ClusterFull, match="object store had no room"):
            ex.gather(["a reference"])


def test_no_room_when_the_driver_puts_or_sends_an_object_is_the_cluster_full_too(monkeypatch):
    """ray.put (a tick's site graph, a restored model) and an actor call carrying large arguments store
    objects from the driver, and raise Ray's errors there, not from ray.get."""
    from types import SimpleNamespace

    from ray.exceptions import ObjectStoreFullError, OutOfDiskError

    from simweb.executors import ClusterFull
    from simweb.executors.ray_executor import AgentHandle, RayExecutor

    def full(*args, **kwargs):
        raise ObjectStoreFullError("Failed to put object abc in object store because it is full. Object size is 3 GB.")

    def no_disk(*args, **kwargs):
        raise OutOfDiskError("abc", b"\x00", "")

    monkeypatch.setattr(ray, "put", full)
    ex = RayExecutor.__new__(RayExecutor)
    with pytest.raises(ClusterFull, match=r"no room.*\(Ray: Failed to put object abc"):
        ex.share(b"a graph")
    host = SimpleNamespace(invoke=SimpleNamespace(remote=no_disk))
    with pytest.raises(ClusterFull, match="no room") as raised:
        ex.call(AgentHandle(host, 1, None), RayExecutor.share, b"large")
    assert "Ray:" not in str(raised.value)  # an OutOfDiskError's text is an object id, not for the user
