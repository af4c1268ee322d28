"""The smallest share q of watermarked training text a student must hold for its 100 k fresh tokens to show
z >= 4 (issue 19), with the unit loop of tests/test_forensics.py (uniform bigram truth, V = 1024, γ = 0.25,
δ = 2, a bigram student fitted on 3000 documents of 64 tokens). Mean z ± SE over seeds, and the law.

    PYTHONPATH=. python scripts/forensics_threshold.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tests.test_forensics import GAMMA, student_z


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    print("| q | mean z ± SE | law √U·q·(g−γ)/√(γ(1−γ)) | share of seeds with z ≥ 4 |")
    for q in (0.0, 0.005, 0.01, 0.0125, 0.015, 0.02, 0.03):
        runs = [student_z(q, 3000, 100_000, 500 + s) for s in range(args.seeds)]
        z = np.array([r[0] for r in runs])
        law = np.mean([math.sqrt(u) * q * (g - GAMMA) / math.sqrt(GAMMA * (1 - GAMMA)) for _, u, g in runs])
        print(f"| {q} | {z.mean():.2f} ± {z.std(ddof=1) / math.sqrt(len(z)):.2f} | {law:.2f} | {(z >= 4).mean():.2f} |")


if __name__ == "__main__":
    main()
