"""The exceptions simweb shows its users."""

from __future__ import annotations

__all__ = ["ScenarioError", "SimwebError", "first_line"]


class SimwebError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits 2."""


class ScenarioError(SimwebError):
    """A scenario value is wrong. ``path`` names the field (``labs[1].crawl_budget``)."""

    def __init__(self, path: str, message: str, *, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")

    def __reduce__(self):  # pickled with its fields (an actor's error reaches the driver as itself)
        return _scenario_error, (self.path, self.message, self.source)


def _scenario_error(path: str, message: str, source: str | None) -> ScenarioError:
    return ScenarioError(path, message, source=source)


def first_line(err: BaseException) -> str:
    """An exception's message, its first line only (its type's name if it has none): for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
