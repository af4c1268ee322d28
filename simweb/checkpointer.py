"""The checkpointer: where a run's checkpoints and page files live, and how they are saved and restored.

At every generation boundary the engine asks for a checkpoint beside the run's output. A run with no
output directory that still needs checkpoints (on Ray, to restore agents that died) keeps them in a
temporary directory removed at the end, and saves one only when ``TEMPORARY_EVERY_S`` seconds have
passed since the last, and none after the last tick: they serve only this process, so a small run pays
for one (tick 0) and a long run loses at most that much work to a dead actor. The output never depends on when checkpoints were
taken. Pages are not gathered for it: each shard writes the chunks it has not written yet, once —
content and ground truth — and the checkpoint lists those files. The disk format is
:mod:`simweb.checkpoint`'s.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
import uuid
import weakref
from pathlib import Path

import numpy as np

from simweb import checkpoint as ckpt
from simweb import storage
from simweb.agents.base import PARTS
from simweb.agents.publisher import PublisherShard
from simweb.agents.scraper import Scraper
from simweb.agents.trainer import Trainer
from simweb.errors import SimwebError

__all__ = ["Checkpointer", "TEMPORARY_EVERY_S"]

TEMPORARY_EVERY_S = 10.0  # of run time between two temporary checkpoints


class Checkpointer:
    def __init__(self, directory: str | Path | None, *, needed: bool, spills: bool):
        """``directory``: the run's checkpoint directory (None: a temporary one if ``needed`` or ``spills``)."""
        self.directory = storage.location(directory) if directory else None
        self.enabled = self.directory is not None or needed
        self._tmp = None
        if self.directory is None and (self.enabled or spills):
            self._tmp = tempfile.mkdtemp(prefix="simweb-")
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
            self.directory = Path(self._tmp) / "checkpoint"
        self.durable = self._tmp is None  # files in a temporary directory serve only this run's recovery
        # page content goes beside the checkpoint: written once per chunk, and where spilled chunks live
        self.store_dir = ckpt.pages_dir(self.directory) if self.directory is not None else None
        self.tick = 0  # of the last good checkpoint
        self._saved_at = time.monotonic()

    def due(self) -> bool:
        """Whether a generation boundary saves: always beside an output, else once TEMPORARY_EVERY_S have passed."""
        return self.enabled and (self.durable or time.monotonic() - self._saved_at >= TEMPORARY_EVERY_S)

    @property
    def temporary(self) -> bool:
        return self._tmp is not None

    def exists(self) -> bool:
        return self.directory is not None and ckpt.exists(self.directory)

    def save(self, engine) -> None:
        """Everything needed to go on from here: the driver's arrays and JSON-able rows; the shards' page files
        and the other agents' states, which each writes itself (to ``states/``), so none passes through here."""
        fleet, ex = engine.fleet, engine.ex
        records = [r for part in fleet.on_all(PublisherShard.flush, fleet.shards) for r in part]
        where = ckpt.states_dir(self.directory) / f"{engine.tick:06d}-{uuid.uuid4().hex[:8]}"
        calls = [ex.call(t, Trainer.write_state, where, f"trainer/{i}", durable=self.durable)
                 for i, t in enumerate(fleet.trainers)]
        calls += [ex.call(s, Scraper.write_state, where, f"scraper/{i}", durable=self.durable)
                  for i, s in enumerate(fleet.scrapers)]
        # a released model, by the trainer that made it (its state is that trainer's own result); its sampling
        # tables are rebuilt from the state
        calls += [ex.call(fleet.trainers[lab], Trainer.write_state, where, f"model/{lab}", state, durable=self.durable)
                  for lab, (gen, state, _tables) in engine.registry.items()]
        states = ex.gather(calls)
        arrays = {"graph": engine.graph.state(), "recorder": engine.recorder.totals_state()}
        meta = {"tick": engine.tick, "run_id": engine.ids["run_id"], "pages": records, "page_count": engine.n_pages,
                "states": states, "registry": {str(k): v[0] for k, v in engine.registry.items()}}
        with engine.busy("checkpoint"):
            ckpt.save(self.directory, {"meta": meta, "rows": copy.deepcopy(engine.recorder.rows), "arrays": arrays},
                      durable=self.durable)
            self.tick = engine.tick  # committed: what follows only tidies up, and may fail without harm
            self._saved_at = time.monotonic()
            self._tidy(where, states)

    def _tidy(self, where, states: list[dict]) -> None:
        """Remove the files no checkpoint needs any more: the states of the checkpoints replaced, and the parts no
        state lists (those before a restore, or of an attempt that failed). Best effort: a file left is only space."""
        states_dir = ckpt.states_dir(self.directory)
        listed = {part["file"].rsplit("/", 1)[-1] for record in states for part in record.get("parts", ())}
        try:
            for old in states_dir.iterdir():
                if old.name not in (where.name, PARTS):
                    storage.remove_tree(old)
            parts = states_dir / PARTS
            for old in (parts.iterdir() if parts.exists() else ()):
                if old.name not in listed:
                    try:
                        old.unlink(missing_ok=True)
                    except OSError:
                        pass
        except OSError:
            pass

    def load(self) -> dict:
        return ckpt.load(self.directory)

    def restore(self, engine, state: dict) -> None:
        """Put the driver and every agent back to a checkpoint."""
        if state["meta"]["run_id"] != engine.ids["run_id"]:
            raise SimwebError("the checkpoint belongs to another run (its scenario, seed or plugins differ)")
        arrays, ex, fleet = state["arrays"], engine.ex, engine.fleet
        for group in ("graph", "recorder", *(f"model/{lab}" for lab in state["meta"]["registry"]),
                      *(f"scraper/{i}" for i in range(len(fleet.scrapers))),
                      *(f"trainer/{i}" for i in range(len(fleet.trainers)))):
            if group not in arrays:
                raise SimwebError(f"checkpoint {str(self.directory)!r}: the arrays {group!r} are missing")
        engine.reset_driver()
        engine.tick = int(state["meta"]["tick"])
        engine.recorder.rows = copy.deepcopy(state["rows"])
        graph = {k: np.asarray(v) for k, v in arrays["graph"].items()}
        engine.graph.apply(graph)
        engine.n_pages = int(state["meta"]["page_count"])
        try:
            engine.recorder.restore_totals(arrays["recorder"])
        except ValueError as err:
            raise SimwebError(f"checkpoint {str(self.directory)!r}: recorder: {err}") from None
        engine.registry = {int(lab): (int(gen), ex.share(arrays[f"model/{lab}"]), None)
                           for lab, gen in state["meta"]["registry"].items()}
        records = state["meta"]["pages"]
        calls = [ex.call(s, PublisherShard.restore, records) for s in fleet.shards]
        graph_ref = ex.share(graph)
        calls += [ex.call(s, Scraper.restore, arrays[f"scraper/{i}"], graph_ref) for i, s in enumerate(fleet.scrapers)]
        calls += [ex.call(t, Trainer.restore, arrays[f"trainer/{i}"]) for i, t in enumerate(fleet.trainers)]
        ex.gather(calls)
        self.tick = engine.tick

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
