"""What every agent has: a tally of its seconds of work per stage (:mod:`simweb.timing`), and a way to write
its part of a checkpoint itself (so that no agent's state passes through the driver)."""

from __future__ import annotations

from simweb.timing import Busy

__all__ = ["Agent"]


class Agent:
    busy: Busy

    def busy_seconds(self) -> dict[str, float]:
        return dict(self.busy.seconds)

    def write_state(self, directory, group: str, arrays: dict | None = None, durable: bool = True) -> dict:
        """Write ``arrays`` (default: this agent's ``state()``) as the checkpoint group ``group`` — one ``.npz``
        in ``directory`` (a path or an object-storage location beside the checkpoint) — and return its record
        for the checkpoint: the group, the file relative to ``directory``'s parent, and its SHA-256."""
        from simweb import storage
        from simweb.checkpoint import write_group

        with self.busy("checkpoint"):
            directory = storage.location(directory)
            directory.mkdir(parents=True, exist_ok=True)
            name, digest = write_group(directory, group, self.state() if arrays is None else arrays, durable=durable)
            return {"group": group, "file": f"{directory.name}/{name}", "sha256": digest}
