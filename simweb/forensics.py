"""Watermark forensics: does lab B's model carry lab A's watermark? (issue 19; Sander et al., arXiv 2402.14904)

With ``evaluation.forensics_tokens = T`` every released model writes T fresh tokens (as its lab's API writes
them), and each watermarking lab's key is tested on them (:func:`simweb.watermark.pooled_z`): the
one-proportion z-score of the green pairs among the U *distinct* (previous, token) pairs of the sample, z = (G
− γU) / √(Uγ(1 − γ)) — counting every token would test against the wrong null on Zipf-like text. A student
whose training set holds a share q of text watermarked with key A writes green tokens of A with probability γ
+ q(g − γ) to first order (g: the green probability of A's sampler), so E[z] ≈ √U · q · (g − γ) / √(γ(1 − γ))
(a little less: a repeated pair is scored once); with q = 0 the green count is Binomial(U, γ) whatever the
text, so z is ≈ standard normal. ``simweb forensics DIR`` writes these z-scores in long form, one row per
(suspect lab, key, generation), to ``DIR/forensics.parquet``.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from simweb.errors import SimwebError

__all__ = ["FORENSICS", "forensics_frame", "write_forensics"]

FORENSICS = {
    "run_id": pl.String, "scenario": pl.String, "seed": pl.Int64,
    "suspect": pl.String,  # the lab whose model wrote the sample
    "key": pl.String,  # the watermarking lab whose key is tested
    "generation": pl.Int32, "tick": pl.Int32,
    "tokens": pl.Int64,  # tokens sampled (forensics_tokens up to whole documents); z scores their distinct pairs
    "z": pl.Float64,
    "p_value": pl.Float64,  # one-sided: P(Z ≥ z) under no watermark
    "own_key": pl.Boolean,  # the suspect's own key: its API watermarks what it writes
}

_NONE = "the run has no watermark forensics: run it with evaluation.forensics_tokens set (and a lab with a watermark)"


def forensics_frame(generations: pl.DataFrame, tokens: int) -> pl.DataFrame:
    """generations.parquet's ``watermark_z`` struct in long form (keys that are null — no watermark — left out)."""
    if "watermark_z" not in generations.columns:
        raise SimwebError(_NONE)
    rows = []
    for row in generations.iter_rows(named=True):
        for key, z in (row["watermark_z"] or {}).items():
            if z is None:
                continue
            rows.append({"run_id": row["run_id"], "scenario": row["scenario"], "seed": row["seed"],
                         "suspect": row["lab"], "key": key, "generation": row["generation"], "tick": row["tick"],
                         "tokens": tokens, "z": z, "p_value": 0.5 * math.erfc(z / math.sqrt(2)),
                         "own_key": key == row["lab"]})
    return pl.DataFrame(rows, schema=FORENSICS, orient="row")


def write_forensics(directory: str | Path):
    """Write ``DIR/forensics.parquet`` from a run directory (a path or an object-storage URI); returns its path."""
    from simweb import storage
    from simweb.recorder import atomic_write
    from simweb.scenario import parse_scenario

    directory = storage.location(directory, "forensics")
    storage.check_reachable(directory, "forensics")
    gens, scenario = directory / "generations.parquet", directory / "scenario.toml"
    if not gens.is_file() or not scenario.is_file():
        raise SimwebError(f"{str(directory)!r} is not a run directory (no generations.parquet and scenario.toml)")
    sc = parse_scenario(scenario.read_text(), source=str(scenario))
    per = sc.evaluation.forensics_tokens
    if per is None:  # before anything of a token language is read: a gaussian run has no doc_length
        raise SimwebError(_NONE)
    length = sc.language.doc_length
    tokens = -(-per // length) * length
    try:
        generations = storage.read_parquet(gens)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise SimwebError(f"{str(gens)!r} cannot be read: {(str(err).strip().splitlines() or [''])[0][:200]}") from None
    frame = forensics_frame(generations, tokens)
    out = directory / "forensics.parquet"
    atomic_write(out, frame)
    return out
