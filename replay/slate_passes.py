"""The passes of progressive validation over a multi-slot (VW CCB) log.

A candidate is a ``--ccb_explore_adf`` learner. For each event, in log order, it
predicts its PMF for every slot, *then* learns from the logged slate (every slot's
shown action, cost and probability). The estimators (``replay.slate_estimates``) use the
conditional factorisation of the slate's probability, so slot s's PMF must be the one
*given the logged earlier slots*: slot s is predicted on the event cut to slots 1..s,
slots 1..s-1 forced to their logged actions (``_inc``: a slot whose only allowed action
is the logged one; VW then leaves it out of the later slots) and slot s's PMF read.
That is s predictions per event (S(S+1)/2 slot scorings) and one learn.

The reward model is a ``--cb_adf`` regressor over (event, slot) pairs: the slot's
actions still available, the shared features plus the slot's own and its position
(``Slot`` namespace, ``slot=<s>``), labelled with the slot's shown action. Every slot of
an event is predicted before the model learns any of them, so no prediction has seen the
reward it is judged on.

Per (event, slot) the passes output one value per *available* action (all the event's
actions but those shown in earlier slots), in action order: ``SlateFacts.available``.
A single-slot event in a multi-slot log is a slate of one slot. VW reads ``_outcomes``
only after ``c`` (a line with ``_outcomes`` first parses as one empty example), so the
lines here keep that order.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from policies.exploration import apply_floor, normalize_pmf
from replay.candidates import (
    SLOT_NAMESPACE,
    Pass,
    PassResult,
    pdrop_field,
    report_progress,
    unreadable,
)
from replay.logs import LoggedEvent, SlotOutcome, ValidationReport, read_logs

PASS_CHUNK = 1024


def event_slots(event: LoggedEvent) -> list[SlotOutcome]:
    """The event's slots; a single-slot event as a slate of one slot (its ``a``/``p``
    order when logged, else only the served action)."""
    if event.slots is not None:
        return event.slots
    if event.pmf is None:
        actions, pmf = [event.chosen], [event.probability]
    else:
        rest = sorted((a for a in range(len(event.actions)) if a != event.chosen), key=lambda a: -event.pmf[a])
        actions = [event.chosen, *rest]
        pmf = [event.pmf[a] for a in actions]
    return [SlotOutcome(slot=1, id=None, chosen=event.chosen, probability=event.probability, actions=actions,
                        pmf=pmf, reward=event.reward)]


def available(slots: list[SlotOutcome], n: int) -> list[list[int]]:
    """Per slot, the actions still available there (not shown in an earlier slot), in
    action order: the order of every per-action output of a slate pass."""
    shown: set[int] = set()
    out = []
    for slot in slots:
        out.append([a for a in range(n) if a not in shown])
        shown.add(slot.chosen)
    return out


def ccb_line(event: LoggedEvent, slots: list[SlotOutcome], forced: int = 0) -> bytes:
    """The event (cut to ``slots``) as the CCB DSJSON VW reads: ``c`` with ``_slots``,
    then ``_outcomes``. The first ``forced`` slots allow only their logged action; a
    logged ``_inc`` is dropped (replay takes every action not shown before as available
    in a slot, as the service logs them)."""
    objects = [{**{k: v for k, v in slot.features.items() if k != "_inc"},
                **({"_inc": [slot.chosen]} if i < forced else {})} for i, slot in enumerate(slots)]
    outcomes = [{"_id": slot.id if slot.id is not None else str(slot.slot), "_label_cost": -slot.reward,
                 "_a": slot.actions, "_p": slot.pmf} for slot in slots]
    return orjson.dumps({"c": {**event.shared, "_multi": event.actions, "_slots": objects}, "_outcomes": outcomes,
                         **pdrop_field(event)})


def slot_line(event: LoggedEvent, slot: SlotOutcome, actions: list[int]) -> bytes:
    """One slot as a single-slot (cb) line for the reward model: its available actions,
    the shared features with the slot's own and its position, its label."""
    position = actions.index(slot.chosen)
    order = [position + 1, *(i + 1 for i in range(len(actions)) if i != position)]
    own = {k: v for k, v in slot.features.items() if not k.startswith("_")}
    shared = {**event.shared, **own, SLOT_NAMESPACE: {f"slot={slot.slot}": 1}}
    return orjson.dumps({"_label_cost": -slot.reward, "_label_probability": slot.probability,
                         "_label_Action": position + 1, "_labelIndex": position, "a": order,
                         "c": {**shared, "_multi": [event.actions[a] for a in actions]}, **pdrop_field(event)})


@dataclass
class SlateFacts:
    """What the log says about each scored (event, slot), in order (an event's slots
    together, slot 1 first). Per-action arrays are flat over the available actions:
    row j's are the next ``counts[j]`` entries."""

    event_of: np.ndarray        # int64 (m,): the event's index among the n scored events
    slot: np.ndarray            # int64 (m,): 1-based
    rewards: np.ndarray         # float64 (m,)
    logged_p: np.ndarray        # float64 (m,): the shown action's probability given the earlier slots
    chosen: np.ndarray          # int64 (m,): the shown action's position among the available ones
    counts: np.ndarray          # int64 (m,): available actions
    logged_pmf: np.ndarray      # float64 (Σ counts,): the logged slot PMF (0 for actions not in _a)
    values: np.ndarray          # float64 (Σ counts,): the actions' business values (_nb.values), NaN if none
    events: int                 # n
    policy_codes: np.ndarray    # int8 (n,)
    policy_names: list[str]
    skipped: int = 0
    report: ValidationReport = field(default_factory=ValidationReport)
    sample_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (n,): 1/(1 − pdrop) per event
    event_ids: list[str] = field(default_factory=list)     # (n,) when asked (Pass.ids), else empty
    tags: list[str | None] = field(default_factory=list)   # (n,): VW's _tag, the same


class _FactsBuilder:
    def __init__(self, report: ValidationReport, keep_ids: bool = False) -> None:
        self.report = report
        self.event_of, self.slot, self.chosen, self.counts = array("q"), array("q"), array("q"), array("q")
        self.rewards, self.logged_p, self.logged_pmf, self.values = array("d"), array("d"), array("d"), array("d")
        self.policies, self.sample_weight = array("b"), array("d")
        self.policy_index: dict[str, int] = {}
        self.events = 0
        self.keep_ids = keep_ids   # Pass.ids: evaluate's per_event
        self.event_ids: list[str] = []
        self.tags: list[str | None] = []

    def add(self, event: LoggedEvent, slots: list[SlotOutcome], sets: list[list[int]]) -> None:
        values = event.extra.get("values")
        if not (isinstance(values, list) and len(values) == len(event.actions)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
            values = None
        for slot, actions in zip(slots, sets):
            pmf = dict(zip(slot.actions, slot.pmf))
            self.event_of.append(self.events)
            self.slot.append(slot.slot)
            self.rewards.append(slot.reward)
            self.logged_p.append(slot.probability)
            self.chosen.append(actions.index(slot.chosen))
            self.counts.append(len(actions))
            self.logged_pmf.extend([pmf.get(a, 0.0) for a in actions])
            self.values.extend([float(values[a]) if values else float("nan") for a in actions])
        self.policies.append(self.policy_index.setdefault(event.policy or "", len(self.policy_index)))
        self.sample_weight.append(event.sample_weight)
        if self.keep_ids:
            self.event_ids.append(event.event_id)
            self.tags.append(event.tag)
        self.events += 1

    def build(self, skipped: int) -> SlateFacts:
        def ints(a: array) -> np.ndarray:
            return np.array(a, dtype=np.int64)

        return SlateFacts(
            event_of=ints(self.event_of), slot=ints(self.slot), rewards=np.array(self.rewards, dtype=np.float64),
            logged_p=np.array(self.logged_p, dtype=np.float64), chosen=ints(self.chosen), counts=ints(self.counts),
            logged_pmf=np.array(self.logged_pmf, dtype=np.float64), values=np.array(self.values, dtype=np.float64),
            events=self.events, policy_codes=np.asarray(self.policies, dtype=np.int8),
            policy_names=list(self.policy_index), skipped=skipped, report=self.report,
            sample_weight=np.array(self.sample_weight, dtype=np.float64), event_ids=self.event_ids, tags=self.tags)


def run_slate_pass(job: Pass, workspace: Any) -> PassResult:
    """One pass over a multi-slot log: a candidate's per-slot PMFs (``job.kind``
    "policy") or the reward model's per-slot predictions and the facts ("reward")."""
    import pylibvw

    predict, learn = pylibvw.vw.predict_multi, pylibvw.vw.learn_multi
    parse, finish = workspace._parse, workspace._finish_example_multi_ex
    reward = job.kind == "reward"
    facts = _FactsBuilder(ValidationReport(), job.ids) if reward else None
    values = array("d")
    started, events, skipped = time.perf_counter(), 0, 0

    def position(done: int, total: int) -> None:
        report_progress(job.index, done / total if total else 0.0, events)

    def run(line: bytes, expected: int, event: LoggedEvent, step: Any) -> Any:
        examples = parse(line)
        if len(examples) != expected:   # (not finished: VW crashes finishing an example set it could not read)
            raise unreadable(event, len(examples), expected)
        try:
            return step(examples)
        finally:
            finish(examples)

    def decide(slot: int) -> Any:
        def step(examples: Any) -> list[tuple[int, float]]:
            predict(workspace, examples)
            return examples[0].get_decision_scores()[slot]
        return step

    def scores(examples: Any) -> list[float]:
        predict(workspace, examples)
        return examples[0].get_action_scores()

    def update(examples: Any) -> None:
        learn(workspace, examples)

    chunks = read_logs(job.source, job.format, chunk_size=PASS_CHUNK, report=facts.report if facts else None,
                       progress=position)
    for chunk in chunks:
        for event in chunk:
            if event.skip_learn:
                skipped += 1
                continue
            slots, k = event_slots(event), len(event.actions)
            sets = available(slots, k)
            if reward:
                lines = [slot_line(event, slot, actions) for slot, actions in zip(slots, sets)]
                for line, actions in zip(lines, sets):   # every slot predicted before any is learned
                    values.extend([-s for s in run(line, len(actions) + 1, event, scores)])
                for line, actions in zip(lines, sets):
                    run(line, len(actions) + 1, event, update)
                facts.add(event, slots, sets)
            else:
                for s, actions in enumerate(sets):
                    decision = run(ccb_line(event, slots[: s + 1], forced=s), 1 + k + s + 1, event, decide(s))
                    pmf = dict(decision)
                    values.extend(apply_floor(normalize_pmf([pmf.get(a, 0.0) for a in actions]), job.floor))
                run(ccb_line(event, slots), 1 + k + len(slots), event, update)
            events += 1
            if not events & 0x3FF:
                report_progress(job.index, None, events)
    report_progress(job.index, 1.0, events)
    return PassResult(job.index, np.array(values, dtype=np.float64), events, time.perf_counter() - started,
                      facts.build(skipped) if facts else None)
