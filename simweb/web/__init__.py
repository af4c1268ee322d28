"""The simulated web: a site graph, a page index and the content stores of the publisher shards."""

from simweb.web.graph import SiteGraph
from simweb.web.store import AI, HUMAN, PAGE_COLUMNS, ContentStore, PageIndex

__all__ = ["AI", "HUMAN", "PAGE_COLUMNS", "ContentStore", "PageIndex", "SiteGraph"]
