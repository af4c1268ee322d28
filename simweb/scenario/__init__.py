"""Scenario files: schema (``models``) and loading (``load``)."""

from simweb.scenario.load import apply_overrides, dump_scenario, load_scenario, parse_scenario
from simweb.scenario.models import Scenario

__all__ = ["Scenario", "apply_overrides", "dump_scenario", "load_scenario", "parse_scenario"]
