"""Exploration: which VW algorithm builds the PMF, and how an action is drawn from it.

The draw uses a uniform number derived from the event id, so the same event always
serves the same offer (idempotent retries, reproducible replay) while distinct events
are independent draws: the logged probability is exactly the chance of what was served.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal, Sequence


Algorithm = Literal["epsilon", "softmax", "bag", "cover", "squarecb", "regcb"]
ALGORITHMS: tuple[str, ...] = ("epsilon", "softmax", "bag", "cover", "squarecb", "regcb")


@dataclass(frozen=True)
class Exploration:
    algorithm: Algorithm = "epsilon"
    epsilon: float = 0.1       # epsilon, bag, cover: share of uniform exploration
    softmax_lambda: float = 10.0
    bag_size: int = 5
    cover_size: int = 3
    squarecb_gamma_scale: float = 10.0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown exploration algorithm {self.algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        if self.bag_size < 1 or self.cover_size < 1:
            raise ValueError("bag_size and cover_size must be at least 1")

    def vw_args(self) -> str:
        match self.algorithm:
            case "epsilon":
                return f"--epsilon {self.epsilon}"
            case "softmax":
                return f"--softmax --lambda {self.softmax_lambda}"
            case "bag":
                return f"--bag {self.bag_size} --epsilon {self.epsilon}"
            case "cover":
                return f"--cover {self.cover_size} --epsilon {self.epsilon}"
            case "squarecb":
                return f"--squarecb --gamma_scale {self.squarecb_gamma_scale}"
            case "regcb":
                return "--regcb"
        raise AssertionError(self.algorithm)


def normalize_pmf(raw: Sequence[float]) -> list[float]:
    """VW returns float32 scores that may not sum to exactly 1 (or, for some
    reductions, not to 1 at all); the served and logged PMF is this normalized one.
    Plain floats: for a handful of offers numpy costs more than it saves."""
    pmf = [float(p) if p > 0 and math.isfinite(p) else 0.0 for p in raw]
    total = sum(pmf)
    if total <= 0:
        return [1.0 / len(pmf)] * len(pmf)
    return [p / total for p in pmf]


def normalize_available(raw: Sequence[float], taken: Sequence[int]) -> list[float]:
    """A slot's PMF over every candidate: zero on the ``taken`` ones (shown in earlier
    slots), the rest normalized as ``normalize_pmf`` does (uniform over them if VW gave
    them nothing usable)."""
    taken_set = set(taken)
    free = [i for i in range(len(raw)) if i not in taken_set]
    if not free:
        raise ValueError("no candidate left for this slot")
    sub = normalize_pmf([raw[i] for i in free])
    pmf = [0.0] * len(raw)
    for i, p in zip(free, sub):
        pmf[i] = p
    return pmf


def apply_floor(pmf: Sequence[float], share: float, taken: Sequence[int] = ()) -> list[float]:
    """Every eligible action at least ``share / K`` (K: the actions not ``taken``), so
    that the log supports any policy a data scientist may later evaluate on it: mixed
    with uniform, p' = (1 - share) · p + share / K, which keeps a proper PMF with zeros
    on the taken ones. A PMF already at or above the floor everywhere is returned as it
    is (uniform, generous epsilon): the floor only changes what would fall below it.
    ``share`` 0 disables it."""
    if share <= 0:
        return list(pmf)
    taken_set = set(taken)
    free = [i for i in range(len(pmf)) if i not in taken_set]
    if not free:
        raise ValueError("no candidate left for this slot")
    least = share / len(free)
    if all(pmf[i] >= least for i in free):
        return list(pmf)
    floored = [0.0] * len(pmf)
    for i in free:
        floored[i] = (1.0 - share) * pmf[i] + least
    return floored


def event_uniform(event_id: str, salt: str = "") -> float:
    """A uniform number in [0, 1) determined by the event id (and an optional salt)."""
    digest = hashlib.blake2b(f"{salt}\x00{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def sample_index(pmf: Sequence[float], u: float) -> int:
    """Inverse-CDF draw: the first index whose cumulative probability exceeds u; never
    an action of probability zero."""
    target = u * sum(pmf)
    cumulative = 0.0
    for index, p in enumerate(pmf):
        cumulative += p
        if target < cumulative:
            return index
    return max(i for i, p in enumerate(pmf) if p > 0)   # float rounding at the very top


def rank(pmf: Sequence[float], served: int, k: int, values: Sequence[float] | None = None) -> list[int]:
    """The served action first, then the rest by probability; ties by ``values`` (most
    valuable first: the priority baseline gives every other offer probability 0, and its
    runners-up are the next most valuable, not the next in the catalog), then by position."""
    if values is None:
        order = sorted(range(len(pmf)), key=lambda i: -pmf[i])
    else:
        order = sorted(range(len(pmf)), key=lambda i: (-pmf[i], -values[i]))
    return ([served] + [i for i in order if i != served])[:k]
