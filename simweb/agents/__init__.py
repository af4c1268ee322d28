"""The agents of the simulated web. Plain classes: they know nothing of Ray."""

from simweb.agents.evaluator import Evaluator
from simweb.agents.publisher import Publisher, PublisherShard
from simweb.agents.scraper import Scraper
from simweb.agents.trainer import Trainer

__all__ = ["Evaluator", "Publisher", "PublisherShard", "Scraper", "Trainer"]
