"""The Ray executor: the agents live in Ray actors, on a laptop or a cluster.

With no cluster it starts a local one (no dashboard) and shuts it down when the
run ends; with ``RAY_ADDRESS`` or ``--address`` it joins an existing cluster and
leaves it running.

Agents are packed into host actors, :class:`_Host` — one per shard, or one per lab when there are
more labs than shards and CPUs to run them — because a Ray actor is a process, and each costs a
second or more to start and import simweb on a small machine. Shard ``s`` lives on host ``s``;
lab ``i``'s scraper and trainer on host ``i mod hosts``; a trainer that asks for a GPU gets a host of
its own. A host runs its agents' calls one at a time, in the order the driver sends them, so an
argument it waits on (a reference from an earlier call) is never behind it in any queue. Agents in
one process share their run's context (the language, the evaluator, released models).

Each host reserves a fraction of a CPU small enough that all of a run's hosts would fit on the
cluster's smallest node — so however the scheduler packs them, none is left pending (a 2-core laptop
included) — and at most one CPU. Reservations only place actors; they do not cap what an actor uses.
Hosts are spread across nodes.

A small run on one node (:func:`simweb.executors.fits_one_actor`) is not spread at all: it runs whole, with the
local executor, in one actor (:class:`_Whole`) — no other worker process starts and no call crosses a process.
The driver receives its progress, its warnings and its results; if that actor dies, the run starts again in a
new one, from its last checkpoint when it writes them (an output directory), else from the start.

A host calls an agent's methods by name and first resolves the object references nested anywhere in
their arguments — so agents take plain named arguments (``models={lab: state}``, ``parts=[...]``) and
never flatten references.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import (ActorDiedError, ActorUnavailableError, ObjectStoreFullError, OutOfDiskError,
                            RayActorError, RayTaskError)

from simweb.errors import SimwebError, first_line
from simweb.executors import ActorLost, ClusterFull, fits_one_actor, local_cpus

__all__ = ["AgentHandle", "RayExecutor", "map_tasks"]

READY_TIMEOUT_S = 120  # an actor not running by then is reported, not waited on forever
KILL_TIMEOUT_S = 60  # a killed actor not reported dead by then is an error: never two writing one run
HALT_S = 600  # how long a run whole in one actor waits at a crash test's tick for the driver to end
CONNECT_TIMEOUT_S = 10  # to reach a cluster's address before Ray's own (long) retries
_ACTOR_LOST = (ActorDiedError, ActorUnavailableError, RayActorError)  # what Ray raises for a host that died
_NO_ROOM = (ObjectStoreFullError, OutOfDiskError)  # an object store full, and no disk Ray will overflow onto
NO_ROOM = ("a Ray node's object store had no room for an object, and Ray would not overflow it onto the node's disk "
           "(by default Ray refuses once the disk is 95 % used)")


def _no_room(err: BaseException) -> ClusterFull:
    """ClusterFull for Ray's error; ObjectStoreFullError's own first line names the node and sizes (an
    OutOfDiskError's text is Ray's internal object id)."""
    return ClusterFull(NO_ROOM + (f" (Ray: {first_line(err)})" if isinstance(err, ObjectStoreFullError) else ""))


class _Host:
    """A Ray actor holding agents by key; ``invoke`` resolves nested references, then calls the agent."""

    def __init__(self):
        self.agents: dict = {}

    def add(self, key: int, cls, args, kwargs) -> None:
        args, kwargs = _resolve((args, kwargs))
        self.agents[key] = cls(*args, **kwargs)

    def invoke(self, key: int, method: str, args, kwargs):
        args, kwargs = _resolve((args, kwargs))
        return getattr(self.agents[key], method)(*args, **kwargs)

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


class _Whole:
    """A Ray actor that runs one whole run with the local executor (:meth:`RayExecutor.run_whole`)."""

    def run(self, job, args: dict, scratch: str, halt_after: int | None = None):
        """``job(on_tick=, warn=, **args)`` in a thread, its events yielded as they come: first ("node", its node's
        id), then ("tick", n), ("warn", message), and last ("done", results) or ("error", exception) — sent once
        the job's temporary files (spilled pages without an output directory), which go to the node's temporary
        directory in ``scratch``, are removed. With ``halt_after``, the run waits at that tick: for the driver,
        which ends the process."""
        yield "node", ray.get_runtime_context().get_node_id()  # before any file: where to clean up after a kill
        events: queue.Queue = queue.Queue()

        def tick(n: int) -> None:
            events.put(("tick", n))
            if n == halt_after:
                threading.Event().wait(HALT_S)  # the driver ends this process long before

        def work():
            base = _scratch(scratch)
            shutil.rmtree(base, ignore_errors=True)  # what an actor killed before on this node left
            base.mkdir(parents=True)
            tempfile.tempdir = str(base)  # this process runs this run alone
            try:
                event = ("done", job(on_tick=tick, warn=lambda message: events.put(("warn", message)), **args))
            except BaseException as err:  # the driver raises it: as itself where it travels, else as its line
                try:
                    err = _portable(err)
                except BaseException:  # its message itself fails: still an event, never a silent end
                    err = RuntimeError(type(err).__name__)
                event = ("error", err)
            finally:
                shutil.rmtree(base, ignore_errors=True)
            events.put(event)

        threading.Thread(target=work, name="simweb-run", daemon=True).start()
        while True:
            event = events.get()
            yield event
            if event[0] in ("done", "error"):
                return


def _scratch(name: str) -> Path:
    return Path(tempfile.gettempdir()) / name


def _remove_scratch(name: str) -> None:
    """A task on the node of an actor that was killed: its run's temporary files (a kill runs no clean-up)."""
    shutil.rmtree(_scratch(name), ignore_errors=True)


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling both ways, else one of its kind's nearest class that does (a SimwebError
    stays one, so the user still gets one line)."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        kind = SimwebError if isinstance(err, SimwebError) else RuntimeError
        return kind(str(err) if kind is SimwebError else f"{type(err).__name__}: {err}")


@dataclass(frozen=True)
class AgentHandle:
    """An agent on the Ray executor: the host actor it lives in, its key there, and its start (a reference)."""

    host: Any
    key: int
    started: Any


def _resolve(value):
    """``value`` with every ``ray.ObjectRef`` nested in lists, tuples and dicts replaced by its value (one get)."""
    refs: list = []

    def collect(v):
        if isinstance(v, ray.ObjectRef):
            refs.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                collect(x)
        elif isinstance(v, dict):
            for x in v.values():
                collect(x)

    collect(value)
    if not refs:
        return value
    values = dict(zip(map(id, refs), ray.get(refs)))

    def swap(v):
        if isinstance(v, ray.ObjectRef):
            return values[id(v)]
        if isinstance(v, list):
            return [swap(x) for x in v]
        if isinstance(v, tuple):
            return tuple(swap(x) for x in v)
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        return v

    return swap(value)


class RayExecutor:
    name = "ray"
    needs_checkpoints = True  # an actor can die: the engine keeps a checkpoint to restore every agent from

    def __init__(self, *, address: str | None = None, say=None, one_actor: bool | None = None):
        """``one_actor``: run a run whole in one actor (True), never (False), or when it is small (None: see
        :func:`~simweb.executors.fits_one_actor`)."""
        address = address or os.environ.get("RAY_ADDRESS")
        self.one_actor = one_actor
        self.whole = None  # the actor running a run whole, while it runs
        self.whole_restarts = 0  # how many times that run started again in a new actor
        self._started = False
        self.startup_s = self.shutdown_s = 0.0
        start = time.perf_counter()
        if not ray.is_initialized():
            if address:
                _check_reachable(address)
                if say:
                    say(f"joining the Ray cluster at {address} ...")
                _join(address)
            else:
                if say:
                    say("starting a local Ray instance ...")
                # "local": always a fresh instance of our own, never another process's cluster by accident
                ray.init(address="local", num_cpus=local_cpus(), include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
                self._started = True
        self.startup_s = time.perf_counter() - start
        self._remote = ray.remote(_Host)

    def runs_whole(self, scenario) -> bool:
        """Whether :meth:`run_whole` runs ``scenario`` rather than agents spread over actors."""
        return self.one_actor if self.one_actor is not None else fits_one_actor(scenario, self.cluster())

    def run_whole(self, job, args: dict, *, on_tick=None, warn, restarts: int) -> Any:
        """``job(on_tick=, warn=, **args)`` (a function Ray can import) in one actor; its result. An actor that dies
        is replaced by a new one, once the old one is gone, up to ``restarts`` times; the new one runs ``job`` with
        ``restart=True``. An ``on_tick`` with an int attribute ``simweb_halts_at`` ends this process at that tick
        (the crash-test hook): the actor waits there on its first run, so it is never ahead of the driver."""
        halt_after = getattr(on_tick, "simweb_halts_at", None)
        halt_after = halt_after if isinstance(halt_after, int) else None
        scratch = f"simweb-whole-{uuid.uuid4().hex[:12]}"
        lost: BaseException | None = None
        for attempt in range(restarts + 1):
            self.whole_restarts = attempt
            self.whole = self._start_whole()
            node, ended = None, False
            try:
                events = self.whole.run.remote(job, {**args, "restart": attempt > 0}, scratch,
                                               halt_after if attempt == 0 else None)
                for ref in events:
                    kind, value = ray.get(ref)
                    if kind == "node":
                        node = value
                    elif kind == "tick":
                        if on_tick is not None:
                            on_tick(value)
                    elif kind == "warn":
                        warn(value)
                    else:
                        ended = True  # the actor's clean-up is done
                        if kind == "error":
                            raise value
                        return value
                raise ActorLost("the run's actor stopped without a result")
            except (*_ACTOR_LOST, ActorLost) as err:
                lost = err
            except _NO_ROOM as err:
                raise _no_room(err) from None
            finally:
                self.kill_whole()  # and wait until it is gone: no two actors ever write the same run
                if node is not None and not ended:
                    self._clean_node(node, scratch)
            if attempt < restarts:
                warn(f"the actor running the run died ({first_line(lost)}); running it again in a new one, from its "
                     "last checkpoint if it has one")
        raise RuntimeError(f"the run's actor died {restarts + 1} times; giving up ({first_line(lost)})")

    @staticmethod
    def _clean_node(node: str, scratch: str) -> None:
        """Best effort: remove a killed actor's temporary files on its node (gone with the node if it died)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        try:
            task = ray.remote(_remove_scratch).options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
            ray.get(task.remote(scratch), timeout=READY_TIMEOUT_S)
        except Exception:
            pass

    def _start_whole(self):
        """The actor of a whole run, running (an error, not a hang, if it cannot start)."""
        cpus = min(1.0, self._cpus())  # a whole CPU where the node has one (the run is all there is)
        whole = ray.remote(_Whole).options(num_cpus=cpus, max_restarts=0).remote()
        try:
            done, _ = ray.wait([whole.__ray_ready__.remote()], timeout=READY_TIMEOUT_S)
            if not done:
                raise SimwebError(f"the actor to run the run could not start within {READY_TIMEOUT_S} s; the "
                                  f"cluster has {self.cluster()}: free a CPU")
            ray.get(done[0])
        except _ACTOR_LOST as err:
            self._kill(whole)
            raise SimwebError(f"the actor to run the run died as it started ({first_line(err)}); the cluster could "
                              "not run it — check that every node has simweb installed and the same Ray "
                              "authentication") from None
        except BaseException:
            self._kill(whole)
            raise
        return whole

    def kill_whole(self) -> None:
        whole, self.whole = self.whole, None
        if whole is not None:
            self._kill(whole)

    @staticmethod
    def _kill(actor) -> None:
        """Kill ``actor`` and wait until Ray reports it dead (a kill is only sent); SimwebError if it never is."""
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # no Ray to ask (shut down): nothing runs any more
            return
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                ray.get(actor.__ray_ready__.remote(), timeout=1.0)
            except ActorDiedError:
                return
            except RayActorError as err:
                if not isinstance(err, ActorUnavailableError):  # unavailable may be for a moment: ask again
                    return
            except Exception:  # not answering (a timeout): ask again
                pass
            time.sleep(0.05)
        raise SimwebError(f"Ray did not report the run's actor dead within {KILL_TIMEOUT_S} s of killing it; "
                          "stopped, so that no two processes write the run")

    def plan(self, counts: dict[str, int]) -> None:
        """Lay out the hosts for the agents about to start: one per shard, or one per lab where labs outnumber
        shards and the cluster has CPUs for them (their scrapers and trainers then run side by side)."""
        shards, labs = counts.get("shard", 0), max(counts.get("scraper", 0), counts.get("trainer", 0))
        self._n_hosts = max(1, shards, min(labs, int(self.cluster()["cpus"])))
        self._hosts: list = [None] * self._n_hosts
        self._started_of: dict[str, int] = {}
        self._own_hosts = 0  # hosts of one agent (a trainer with a GPU)
        # the trainers that will ask for a GPU, each a host of its own: counted from the start, so that the
        # hosts made before them reserve room for them too (else a small node is over-reserved, one pends)
        self._gpu_hosts = counts.get("gpu_trainer", 0)

    def _cpus(self) -> float:
        smallest = min((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0)
        own = max(getattr(self, "_own_hosts", 0), getattr(self, "_gpu_hosts", 0))
        hosts = max(getattr(self, "_n_hosts", 1) + own, 1)
        return max(0.01, round(min(1.0, 0.9 * smallest / hosts), 4))

    def _new_host(self, **options):
        return self._remote.options(num_cpus=self._cpus(), max_restarts=0, **options).remote()

    def ready(self, handles: list) -> None:
        """Wait until every agent runs; a clear error instead of a hang when the cluster cannot place one."""
        pending = [h.started for h in handles]
        done, waiting = ray.wait(pending, num_returns=len(pending), timeout=READY_TIMEOUT_S)
        if waiting:
            raise SimwebError(f"{len(waiting)} of {len(handles)} agents could not start within "
                              f"{READY_TIMEOUT_S} s; the cluster has {self.cluster()}: free some CPUs or use fewer "
                              "shards (--shards)")
        self.gather(pending)

    def start(self, cls, /, *args, role: str = "", gpus: float = 0.0, **kwargs):
        if not hasattr(self, "_hosts"):
            self.plan({role: 1})
        nth = self._started_of.get(role, 0)
        self._started_of[role] = nth + 1
        if gpus:  # its own process, holding the GPU
            self._own_hosts += 1
            host = self._new_host(num_gpus=gpus)
        else:
            slot = nth % self._n_hosts
            if self._hosts[slot] is None:
                self._hosts[slot] = self._new_host(scheduling_strategy="SPREAD")
            host = self._hosts[slot]
        key = sum(self._started_of.values())
        return AgentHandle(host, key, host.add.remote(key, cls, args, kwargs))

    def call(self, handle, method, /, *args, returns: int = 1, **kwargs):
        invoke = handle.host.invoke.options(num_returns=returns) if returns != 1 else handle.host.invoke
        try:  # large arguments are put in the driver's object store as the call is sent
            return invoke.remote(handle.key, method.__name__, args, kwargs)
        except _NO_ROOM as err:
            raise _no_room(err) from None

    def gather(self, results):
        try:
            if isinstance(results, dict):
                keys = list(results)
                return dict(zip(keys, ray.get([results[k] for k in keys])))
            return ray.get(results)
        except RayTaskError as err:  # a problem the user can fix (a plugin's) travels as itself
            cause = getattr(err, "cause", None)
            if isinstance(cause, SimwebError):
                raise cause from None
            if isinstance(cause, _ACTOR_LOST):
                # a host died while another waited on its answer (a merge on the candidates of a shard killed
                # mid-generation): an agent lost, as when the call itself goes to the dead host
                raise ActorLost(first_line(cause)) from None
            if isinstance(cause, _NO_ROOM):
                raise _no_room(cause) from None
            raise
        except _ACTOR_LOST as err:
            raise ActorLost(first_line(err)) from None
        except _NO_ROOM as err:
            raise _no_room(err) from None

    def share(self, value):
        try:
            return ray.put(value)
        except _NO_ROOM as err:
            raise _no_room(err) from None

    def kill(self, handle) -> None:
        """Kill the agent's host (with every agent in it)."""
        try:
            ray.kill(handle.host, no_restart=True)
        except Exception:  # already gone
            pass

    def default_shards(self) -> int:
        return max(1, int(self.cluster()["cpus"]))

    def cluster(self) -> dict:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {"nodes": len(nodes), "cpus": ray.cluster_resources().get("CPU", 0.0),
                "gpus": ray.cluster_resources().get("GPU", 0.0)}

    def node_of(self, handle) -> str:
        return ray.get(handle.host.node.remote())

    def shutdown(self) -> None:
        if self._started and ray.is_initialized():
            start = time.perf_counter()
            ray.shutdown()
            self.shutdown_s = time.perf_counter() - start


def _check_reachable(address: str) -> None:
    """Fail fast, with one line, on an address that is malformed or where nothing listens."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SimwebError(f"--address: expected HOST:PORT of a Ray cluster's head (e.g. 10.0.0.5:6379), got "
                          f"{address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise SimwebError(f"--address {address}: no Ray cluster answers there ({err.strerror or err}); start one "
                          "with 'ray start --head' or check the address") from None


def _join(address: str) -> None:
    """``ray.init`` on a running cluster. Ray's core prints a line a second to the process's stderr while it
    retries; those are held back and read: a refused token becomes one line that says what to set."""
    import tempfile

    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            failure = None
        except Exception as err:  # Ray's own errors: say what to do in one line
            failure = err
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if failure is None:
            return
        held.seek(0)
        said = held.read().decode(errors="replace") + " ".join(map(str, _causes(failure)))
    if "InvalidAuthToken" in said or "Unauthenticated" in said:
        mode = os.environ.get("RAY_AUTH_MODE")
        raise SimwebError(f"--address {address}: the cluster refused simweb's Ray authentication token "
                          f"(RAY_AUTH_MODE is {mode or 'unset'}); it uses Ray's token authentication: set "
                          "RAY_AUTH_MODE=token and the cluster's token (~/.ray/auth_token or RAY_AUTH_TOKEN) for "
                          "simweb and for every 'ray start' (README, 'On a laptop or a cluster')") from None
    raise SimwebError(f"--address {address}: cannot join the Ray cluster: {first_line(failure)}") from None


def _causes(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__



def map_tasks(fn, items, *, address: str | None = None, on_done=None) -> list:
    """Run ``fn`` over ``items`` as Ray tasks of one CPU each (a sweep's small runs); results in item order."""
    ex = RayExecutor(address=address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        pending = {remote.remote(item): i for i, item in enumerate(items)}
        results: list = [None] * len(items)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except Exception as err:  # a worker lost mid-run: that run is recorded as failed
                    results[i] = {"state": "failed", "error": f"worker lost: {first_line(err)}",
                                  "wall_time_s": 0.0, "skipped": False, "generations": None}
                if on_done:
                    on_done(i, results[i])
        return results
    finally:
        ex.shutdown()
