"""Several slots in one decision, drawn one after another (VW's conditional contextual
bandit, or a baseline, gives each slot's PMF).

Slot 1 draws from its PMF over every candidate, slot 2 from its PMF over the rest given
slot 1's offer, and so on; each draw uses a uniform number derived from the event id and
the slot, so the same event always shows the same offers, and the probability kept for
each slot is exactly the chance of its offer given the slots before it. Slot 1's uniform
is the one a single-slot decision uses, so one slot draws exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policies.baselines import Policy
from policies.exploration import apply_floor, event_uniform, sample_index

NextSlotPmf = Callable[[Sequence[int]], list[float]]   # the indices shown so far → the next slot's PMF


@dataclass(frozen=True)
class SlotDraw:
    chosen: int
    pmf: list[float]


def slot_salt(salt: str, slot: int) -> str:
    """Slot 1 keeps the decision's own salt; later slots add their number."""
    return salt if slot == 1 else f"{salt}/slot{slot}"


def draw_slots(next_pmf: NextSlotPmf, count: int, event_id: str, salt: str = "") -> list[SlotDraw]:
    if count < 1:
        raise ValueError("a decision has at least one slot")
    shown: list[int] = []
    draws: list[SlotDraw] = []
    for slot in range(1, count + 1):
        pmf = next_pmf(shown)
        chosen = sample_index(pmf, event_uniform(event_id, salt=slot_salt(salt, slot)))
        shown.append(chosen)
        draws.append(SlotDraw(chosen, pmf))
    return draws


def blend(first: NextSlotPmf, second: NextSlotPmf, weight: float) -> NextSlotPmf:
    """weight · first + (1 − weight) · second, slot by slot: still exactly the PMF drawn from."""
    if weight <= 0:
        return second
    if weight >= 1:
        return first

    def next_pmf(shown: Sequence[int]) -> list[float]:
        return [weight * a + (1.0 - weight) * b for a, b in zip(first(shown), second(shown))]

    return next_pmf


def baseline_slot_pmf(policy: Policy, values: Sequence[float]) -> NextSlotPmf:
    """A baseline's PMF for each slot: the policy applied to the candidates still free."""

    def next_pmf(shown: Sequence[int]) -> list[float]:
        taken = set(shown)
        free = [i for i in range(len(values)) if i not in taken]
        sub = policy.pmf([values[i] for i in free])
        pmf = [0.0] * len(values)
        for i, p in zip(free, sub):
            pmf[i] = p
        return pmf

    return next_pmf


def floored(next_pmf: NextSlotPmf, share: float) -> NextSlotPmf:
    """Each slot's PMF with the propensity floor (``apply_floor``) over the offers still
    free in it: what is drawn from, and logged, is the floored PMF."""
    if share <= 0:
        return next_pmf

    def next_floored(shown: Sequence[int]) -> list[float]:
        return apply_floor(next_pmf(shown), share, shown)

    return next_floored
