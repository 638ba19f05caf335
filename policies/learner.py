"""The service's contextual-bandit learner: one VW workspace behind a tiny
``predict_*`` / ``learn_*`` interface, used by the decide path and the background
trainer (and by bench/ to time them). Replay does not use it: it trains its candidates
with pyvw on the logged DSJSON lines (replay/candidates.py), as ``vw --dsjson`` would.

Two shapes, one per deployment: ``--cb_explore_adf`` when every decision shows one offer,
and VW's conditional contextual bandit (``--ccb_explore_adf``) when some channel shows
several (``LearnerSettings.slots``). A CCB decision is made one slot at a time: slot s's
PMF is VW's prediction for slot s with the earlier slots forced to the offers actually
drawn for them (a slot line that includes only that action), so each slot's logged
probability is exactly the chance of its offer given the slots before it, and the model
learns each slot from VW's own CCB label, as ``vw --ccb_explore_adf --dsjson`` would."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from typing import Sequence

import pylibvw
from vowpalwabbit import pyvw

from policies.exploration import Exploration, normalize_available, normalize_pmf
from policies.vwtext import adf_example


@dataclass(frozen=True)
class LearnerSettings:
    exploration: Exploration = field(default_factory=Exploration)
    bits: int = 18
    interactions: tuple[str, ...] = ("CO", "SO")
    learning_rate: float | None = None
    extra_args: str = ""
    slots: bool = False   # True: --ccb_explore_adf (some channel shows several offers)

    def vw_args(self) -> str:
        parts = ["--ccb_explore_adf" if self.slots else "--cb_explore_adf", self.exploration.vw_args(),
                 f"-b {self.bits}"]
        parts += [f"--interactions {pair}" for pair in self.interactions]
        if self.learning_rate is not None:
            parts.append(f"-l {self.learning_rate}")
        if self.extra_args:
            parts.append(self.extra_args)
        parts.append("--quiet")
        return " ".join(parts)


# VW's own limit on -b is 61, but its weight table has 2**bits entries of at least 16 bytes
# (weight and the adaptive and normalized learning rates, more with some reductions):
# 32 bits is 64 GiB already.
MAX_BITS = 32
# Options of VW that nextbest sets itself, or that read or write files and processes it
# manages (models are checkpointed to Redis, examples come from the joined stream).
_MANAGED_OPTIONS = {
    "-b": "bits", "--bit_precision": "bits",
    "--cb_explore_adf": "slots", "--ccb_explore_adf": "slots",
    "-i": None, "--initial_regressor": None, "-f": None, "--final_regressor": None, "-d": None, "--data": None,
    "-c": None, "--cache": None, "--cache_file": None, "-p": None, "--predictions": None, "-r": None,
    "--raw_predictions": None, "--readable_model": None, "--invert_hash": None, "--daemon": None, "--port": None,
    "--save_resume": None, "--preserve_performance_counters": None, "--save_per_pass": None,
}


def vw_args_problem(settings: LearnerSettings) -> str | None:
    """Why VW would not run with these settings, in VW's words, or None. Asked of VW
    itself at load: a throwaway workspace (with a small weight table) built from the same
    command line predicts and learns one decision of the deployment's shape, so arguments
    VW parses but cannot use with ADF examples are caught too, not at the first decision."""
    import shlex

    try:
        words = shlex.split(settings.extra_args)
    except ValueError as exc:
        return f"cannot split {settings.extra_args!r} into arguments: {exc}"
    for word in words:
        option = word.split("=", 1)[0]
        if option in _MANAGED_OPTIONS:
            setting = _MANAGED_OPTIONS[option]
            return (f"{option} is set by nextbest (the {setting!r} setting)" if setting else
                    f"{option} is not allowed: nextbest keeps the model, its examples and VW's output itself")
    if not 1 <= settings.bits <= MAX_BITS:
        return f"bits must be within [1, {MAX_BITS}], got {settings.bits}"
    probe_settings = dataclasses.replace(settings, bits=min(settings.bits, 12))
    shared, actions = "shared |Context channel=check", ["|Offer id=a", "|Offer id=b"]
    try:
        probe = Learner(probe_settings)
        try:
            if settings.slots:
                probe.predict_slot(shared, actions, ())
                probe.learn_slots(shared, actions, [(0, 0.5, 1.0), (1, 1.0, 0.0)])
            else:
                probe.predict_one(shared, actions)
                probe.learn_one(shared, actions, 0, 0.5, 1.0)
        finally:
            probe.close()
    except (RuntimeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        return f"VW refused '{settings.vw_args()}': {reason}"
    return None


class Learner:
    """Owns a VW workspace; ``learned`` counts the examples it has learned from,
    including those in the checkpoint it was loaded from."""

    def __init__(self, settings: LearnerSettings, model: bytes | None = None, learned: int = 0) -> None:
        self.settings = settings
        self.learned = learned
        self._vw = _workspace(settings.vw_args(), model)

    def predict_one(self, shared_line: str, action_lines: Sequence[str]) -> list[float]:
        """The exploration PMF over the candidates (of the first slot), normalized to sum to 1."""
        if self.settings.slots:
            return self.predict_slot(shared_line, action_lines, ())
        return normalize_pmf(self._run(adf_example(shared_line, action_lines), pylibvw.vw.predict_multi))

    def predict_slot(self, shared_line: str, action_lines: Sequence[str], shown: Sequence[int]) -> list[float]:
        """The PMF of the next slot given the actions ``shown`` in the slots before it (in
        slot order), over every candidate: zero on those already shown, normalized over
        the rest. Needs a CCB workspace (``slots=True``)."""
        slot_lines = [f"ccb slot {index} |" for index in shown] + ["ccb slot |"]
        scores = self._run(_ccb_example(shared_line, action_lines, slot_lines), pylibvw.vw.predict_multi,
                           decisions=True)
        raw = [0.0] * len(action_lines)
        for index, probability in scores[-1]:
            raw[index] = probability
        return normalize_available(raw, shown)

    def expected_rewards(self, shared_line: str, action_lines: Sequence[str]) -> list[float] | None:
        """The model's estimate of each candidate's reward in this context (of the first
        slot: nothing shown before it), or None where VW keeps none. The exploration PMF
        hides them, but every action line keeps the regressor's score (its predicted cost,
        ``partial_prediction``): the reward estimate is its negation. ``--cover`` scores the
        lines with its cover policies, not the reward regressor: no estimate then. For the
        agent desktop's "the model expects" (one more prediction, on that path only)."""
        if self.settings.exploration.algorithm == "cover":
            return None
        lines = (_ccb_example(shared_line, action_lines, ["ccb slot |"]) if self.settings.slots
                 else adf_example(shared_line, action_lines))
        examples = self._vw._parse("\n".join(lines))
        try:
            pylibvw.vw.predict_multi(self._vw, examples)
            return [-float(examples[1 + index].get_partial_prediction()) for index in range(len(action_lines))]
        finally:
            self._vw._finish_example_multi_ex(examples)

    def learn_one(
        self, shared_line: str, action_lines: Sequence[str], chosen: int, probability: float, reward: float
    ) -> None:
        """VW minimizes cost, so the cost is the negated reward."""
        self.learn_slots(shared_line, action_lines, [(chosen, probability, reward)])

    def learn_slots(self, shared_line: str, action_lines: Sequence[str],
                    slots: Sequence[tuple[int, float, float]]) -> None:
        """One decision, each slot as (shown action, its probability in that slot, reward)."""
        if self.settings.slots:
            slot_lines = [f"ccb slot {chosen}:{-reward!r}:{probability!r} |" for chosen, probability, reward in slots]
            self._run(_ccb_example(shared_line, action_lines, slot_lines), pylibvw.vw.learn_multi)
        else:
            if len(slots) != 1:
                raise ValueError(f"a --cb_explore_adf model learns one slot per decision, not {len(slots)}")
            chosen, probability, reward = slots[0]
            self._run(adf_example(shared_line, action_lines, (chosen, -reward, probability)), pylibvw.vw.learn_multi)
        self.learned += 1

    def _run(self, lines: list[str], step, decisions: bool = False) -> list:
        """Parse, predict or learn, and return the examples to VW's pool: pyvw's own
        wrappers do the same with a Python object per line, which costs 3-5x more.
        Returns the action scores, or per slot (``decisions``) the (action, probability)
        pairs."""
        examples = self._vw._parse("\n".join(lines))
        try:
            step(self._vw, examples)
            return examples[0].get_decision_scores() if decisions else examples[0].get_action_scores()
        finally:
            self._vw._finish_example_multi_ex(examples)

    def to_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory(prefix="nbmodel") as tmp:
            path = os.path.join(tmp, "model.vw")
            self._vw.save(path)
            with open(path, "rb") as fh:
                return fh.read()

    def close(self) -> None:
        self._vw.finish()


def _ccb_example(shared_line: str, action_lines: Sequence[str], slot_lines: list[str]) -> list[str]:
    """VW's CCB text form: the same shared and action lines as the ADF example, marked."""
    return ["ccb " + shared_line, *["ccb action " + line for line in action_lines], *slot_lines]


def _workspace(args: str, model: bytes | None) -> pyvw.Workspace:
    if model is None:
        return pyvw.Workspace(args)
    with tempfile.TemporaryDirectory(prefix="nbmodel") as tmp:
        path = os.path.join(tmp, "model.vw")
        with open(path, "wb") as fh:
            fh.write(model)
        return pyvw.Workspace(f"{args} -i {path}")
