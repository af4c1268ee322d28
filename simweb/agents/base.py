"""What every agent has: a tally of its seconds of work per stage (:mod:`simweb.timing`), and a way to write
its part of a checkpoint itself (so that no agent's state passes through the driver).

State that only grows — a trainer's pool of every page it kept, the ids a scraper has trained on — is written a part at a time: each checkpoint
adds one file with the rows appended since the last and lists every part, so a run of G generations writes
each row once, not G times over."""

from __future__ import annotations

import uuid

from simweb.timing import Busy

__all__ = ["Agent", "PARTS"]

PARTS = "parts"  # the folder, beside the checkpoints' state folders, of the appended parts of agents' states


class Agent:
    busy: Busy
    _parts: tuple = ()  # the records of the parts written of the appended arrays, in order
    _parts_rows = 0  # the rows of those arrays the parts hold

    def busy_seconds(self) -> dict[str, float]:
        return dict(self.busy.seconds)

    def appended(self) -> tuple[str, ...]:
        """The keys of ``state()`` whose arrays only grow, by rows added at the end, between two restores (an
        agent that replaces or reorders them must not name them). Default: none."""
        return ()

    def forget_parts(self) -> None:
        """After a restore: this agent no longer knows which parts hold its appended arrays (those of the
        checkpoint it was restored from are on disk, but it has its arrays from them, not the parts' records), so
        its next write puts all of them in one new part."""
        self._parts, self._parts_rows = (), 0

    def write_state(self, directory, group: str, arrays: dict | None = None, durable: bool = True) -> dict:
        """Write ``arrays`` (default: this agent's ``state()``) as the checkpoint group ``group`` — one ``.npz``
        in ``directory`` (a path or an object-storage location beside the checkpoint) — and return its record
        for the checkpoint: the group, the file relative to ``directory``'s parent, and its SHA-256. Of its own
        state, the :meth:`appended` arrays' new rows go to a part file in ``parts/`` beside ``directory``, and the
        record lists every part (file, SHA-256, rows), oldest first."""
        from simweb import storage
        from simweb.checkpoint import write_group

        with self.busy("checkpoint"):
            directory = storage.location(directory)
            directory.mkdir(parents=True, exist_ok=True)
            keys = self.appended() if arrays is None else ()
            arrays = self.state() if arrays is None else arrays
            parts = None
            if keys:
                rows = len(arrays[keys[0]])
                if rows < self._parts_rows:  # they shrank: not appended to since the parts (guards a missed forget)
                    self.forget_parts()
                if rows > self._parts_rows or not self._parts:
                    where = directory.parent / PARTS
                    where.mkdir(parents=True, exist_ok=True)
                    name, digest = write_group(where, f"{group}/{uuid.uuid4().hex[:12]}",
                                               {k: arrays[k][self._parts_rows:] for k in keys}, durable=durable)
                    self._parts += ({"file": f"{PARTS}/{name}", "sha256": digest, "rows": rows - self._parts_rows},)
                    self._parts_rows = rows
                parts = [dict(p) for p in self._parts]
                arrays = {k: v for k, v in arrays.items() if k not in keys}
            name, digest = write_group(directory, group, arrays, durable=durable)
            record = {"group": group, "file": f"{directory.name}/{name}", "sha256": digest}
            return record if parts is None else {**record, "parts": parts}
