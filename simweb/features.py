"""Which of the mechanisms that are off by default a scenario turns on (each adds output columns:
:data:`simweb.schema.FEATURES`). Apart from the schema, which needs polars, so that the agents' processes do not.
"""

from __future__ import annotations

__all__ = ["features_of"]


def features_of(scenario) -> frozenset[str]:
    """The mechanisms, off by default, that ``scenario`` turns on: each adds its columns (``FEATURES``)."""
    on = set()
    if any(p.opt_out is not None for p in scenario.publishers):
        on.add("consent")
    if any(lab.licences for lab in scenario.labs):
        on.add("licences")
    if any(lab.distill for lab in scenario.labs):
        on.add("distill")
    from simweb.humans import humans_on

    if humans_on(scenario):
        on.add("humans")
    if getattr(scenario.evaluation, "forensics_tokens", None) is not None:
        on.add("forensics")
    drift = getattr(scenario.language, "drift", None)
    if scenario.language.family == "markov" and drift is not None and drift.new_topics_per_tick:
        on.add("new_topics")
    return frozenset(on)
