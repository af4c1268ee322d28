"""The simulated web: a site graph and a columnar page store."""

from simweb.web.graph import SiteGraph
from simweb.web.store import AI, HUMAN, PAGE_COLUMNS, PageStore

__all__ = ["AI", "HUMAN", "PAGE_COLUMNS", "PageStore", "SiteGraph"]
