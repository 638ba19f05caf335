"""The truth of a slate: what a ranked list of offers is worth, and the best one.

The acceptance model (the world's ``ATTENTION``): slot s is heard with probability
attention[s], and a heard offer is accepted with its true P(accept), independently of
the other slots — a caller may take Home Cities *and* Balance Control in one call; the
dwindling attention is what makes the later slots worth less. So the expected value of
a slate is Σ_s attention[s] · P(accept of offer s) · value(offer s), and its expected
acceptances Σ_s attention[s] · P(accept of offer s).

Because the value is a sum of attention × expected value with attention non-increasing
along the slate, the best slate (the oracle) takes the offers with the highest expected
value and puts them in that order (the rearrangement inequality: swapping a pair that is
out of order never lowers the sum). A uniformly random slate puts every eligible offer
in every slot with the same chance 1/n, so its expected value is the mean expected value
times the total attention of the slots it fills. With one slot (attention 1) all of this
is the single offer's P(accept) × value, the figures of a one-offer decision.

Pure functions over lists, one entry per eligible offer: no world, no service.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def slate_value(weights: Sequence[float], expected: Sequence[float], slate: Sequence[int]) -> float:
    """Σ_s weights[s] · expected[slate[s]]: a slate's expected value (with ``expected`` the
    offers' P(accept) × value) or its expected acceptances (with their P(accept))."""
    if len(slate) > len(weights):
        raise ValueError(f"a slate of {len(slate)} offers for {len(weights)} slots")
    return float(sum(w * expected[i] for w, i in zip(weights, slate)))


def best_slate(scores: Sequence[float], size: int) -> list[int]:
    """The ``size`` offers with the highest scores, highest first (ties: the earlier offer).
    With expected values as scores it is the oracle's slate, with offer values the
    business priority's."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:max(0, size)]


def random_slate_value(weights: Sequence[float], expected: Sequence[float]) -> float:
    """Expected value of a uniformly random slate of ``len(weights)`` distinct offers (fewer
    when fewer are eligible): each offer is in each slot with chance 1/n."""
    if not expected:
        return 0.0
    filled = min(len(weights), len(expected))
    return float(sum(weights[:filled]) * float(np.mean(expected)))
