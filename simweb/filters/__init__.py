"""The provenance and contamination filters a lab's scraper applies, one module each, all registered plugins.

A filter looks at a batch of crawled pages and returns which to keep. Every decision comes from what
the filter declared it needs (:mod:`simweb.filters.base`): a watermark detector counts green tokens, a
deduplicator hashes content, a provenance check reads the page's C2PA label; only the parametric
classifier and the verifier read the ground truth, and say so. The scraper's accounting treats each
filter as a detector of AI pages: precision = AI share of what it dropped, recall = share of the AI
pages it saw that it dropped.
"""

from simweb.filters import allowlist, classifier, cutoff, dedup, likelihood, provenance, verifier, watermark
from simweb.filters.base import Batch, accounting, content_hash, filter_names
from simweb.filters.classifier import CLASSIFIER_PRESETS

__all__ = ["Batch", "CLASSIFIER_PRESETS", "accounting", "content_hash", "filter_names"]

del allowlist, classifier, cutoff, dedup, likelihood, provenance, verifier, watermark
