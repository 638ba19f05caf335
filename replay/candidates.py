"""Vowpal Wabbit over a decision log: candidate policies' arguments checked, and the
passes of progressive validation that counterfactual evaluation is built from.

A *pass* streams the whole log once through one VW workspace: for each event (in log
order, ``skip_learn`` events left out) it predicts, then learns from the logged label
(chosen action, cost = -reward, logged probability). A candidate's pass yields its PMF
over each event's actions before it learned from that event; the reward-model pass
yields predicted rewards, and the logged facts the estimators need (rewards,
propensities, chosen actions, offer ids). Each pass reads the log itself, so passes run
in separate processes and hold only their flat output arrays.

VW gets each event as a DSJSON line: its own JSON parser reads the namespaces exactly as
``vw --dsjson`` does on the log, which trains the service's very model
(docs/log-format.md), whatever features another system logged.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from policies.exploration import apply_floor, normalize_pmf
from replay.logs import (
    DEFAULT_CHUNK_SIZE,
    LogError,
    LoggedEvent,
    ValidationReport,
    read_logs,
)

if TYPE_CHECKING:
    from replay.slate_passes import SlateFacts

# Options a candidate may not use: they change the reduction (the candidate must be a
# --cb_explore_adf policy, so its output is a PMF over the event's actions) or VW's I/O,
# which the evaluation owns.
_REDUCTIONS = ("--cb_adf", "--cb", "--cb_explore", "--ccb_explore_adf", "--slates", "--cbify", "--cats",
               "--cats_pdf", "--cb_continuous", "--csoaa", "--csoaa_ldf", "--wap_ldf", "--oaa", "--ect",
               "--multilabel_oaa", "--cs_active", "--cb_to_cb_adf", "--search", "--lrq", "--lda")
_IO = ("-d", "--data", "-i", "--initial_regressor", "-f", "--final_regressor", "-c", "--cache", "--cache_file",
       "--passes", "--json", "--dsjson", "-p", "--predictions", "-r", "--raw_predictions", "--readable_model",
       "--invert_hash", "--daemon", "--port", "--audit", "-a", "--save_resume", "--preserve_performance_counters")
EXPLORE = "--cb_explore_adf"
SLATE_EXPLORE = "--ccb_explore_adf"   # a multi-slot (CCB) log's candidates: the same options, this reduction
SLOT_NAMESPACE = "Slot"
"""The reward model's namespace for a slot's position (``slot=2``) on a multi-slot log."""
DEFAULT_REWARD_MODEL = "--cb_adf --cb_type mtr"
PASS_CHUNK = 1024   # events read ahead of VW: small, so the progress in bytes tracks the events learned
TYPECODES = {"value": "f", "probability": "f", "index": "i"}
"""``array`` typecodes of what a pass keeps per event and per action (docs/replay.md,
"Memory"): VW's values (its scores are float32) and logged probabilities as float32,
indices as int32; rewards stay float64. ("d", "d", "q": the float64 arrays of before,
against which tests check that the estimates agree.)"""


class EvaluationError(Exception):
    """Evaluation cannot run: bad arguments, an unreadable or empty log. One line."""


class PolicyArgsError(EvaluationError):
    """A candidate's VW arguments are refused (by us or by VW); the message names them."""


# ----------------------------------------------------------------- arguments


def policy_args(args: str, *, slates: bool = False) -> str:
    """The full VW arguments for a candidate: ``--cb_explore_adf`` and ``--quiet`` added
    when missing. Raises ``PolicyArgsError`` naming the offending argument, here or from
    VW (the workspace is built once to check, and must predict a PMF).

    For a multi-slot (CCB) log (``slates``) the reduction is ``--ccb_explore_adf``
    instead (a ``--cb_explore_adf`` given is replaced): the same exploration options
    then choose slot by slot, so one candidate string serves both kinds of log."""
    explore = SLATE_EXPLORE if slates else EXPLORE
    try:
        tokens = shlex.split(args)
    except ValueError as exc:
        raise PolicyArgsError(f"policy {args!r}: cannot split the arguments: {exc}") from None
    if slates:
        tokens = [token for token in tokens if token != EXPLORE]
    for token in tokens:
        name = token.split("=", 1)[0]
        if name in _REDUCTIONS and name != explore:
            raise PolicyArgsError(f"policy {args!r}: {name} changes the reduction; a candidate is a {explore} "
                                  f"policy (give only its options, e.g. --epsilon 0.05, --squarecb, --interactions CO)")
        if name in _IO:
            raise PolicyArgsError(f"policy {args!r}: {name} is not allowed: the evaluation feeds VW the log itself")
    if explore not in tokens:
        tokens.insert(0, explore)
    if "--quiet" not in tokens:
        tokens.append("--quiet")
    full = shlex.join(tokens)
    check_args(full, kind="policy", shown=args, slates=slates)
    return full


def check_args(args: str, *, kind: str, shown: str | None = None, slates: bool = False) -> None:
    """Build the workspace once: VW's own refusal, with the argument it is about."""
    from vowpalwabbit import pyvw

    shown = args if shown is None else shown
    try:
        workspace = pyvw.Workspace(args + " --dsjson")
    except Exception as exc:   # VW raises RuntimeError (or others from pybind): all are refusals
        message = str(exc).strip() or type(exc).__name__
        try:
            tokens = shlex.split(args)
        except ValueError:
            tokens = args.split()
        culprit = _culprit(tokens, message)
        about = f" (about {culprit})" if culprit else ""
        raise PolicyArgsError(f"{kind} {shown!r}: VW refused the arguments{about}: {message}") from None
    policy = kind == "policy"
    expected = pyvw.PredictionType.ACTION_PROBS if policy else pyvw.PredictionType.ACTION_SCORES
    label = pyvw.LabelType.CONTEXTUAL_BANDIT
    if policy and slates:
        expected, label = pyvw.PredictionType.DECISION_SCORES, pyvw.LabelType.CONDITIONAL_CONTEXTUAL_BANDIT
    try:
        bandit = workspace.get_label_type() == label
        if workspace.get_prediction_type() != expected or not bandit:
            made = ("--ccb_explore_adf policy (a PMF over actions per slot)" if slates else
                    f"{EXPLORE} policy (a PMF over actions)") if policy else "--cb_adf regressor (a score per action)"
            raise PolicyArgsError(f"{kind} {shown!r}: these arguments do not make a {made}")
    finally:
        workspace.finish()


def _culprit(tokens: list[str], message: str) -> str | None:
    """The option (with its value) VW's message is about: VW names an unknown option, but
    for a bad value says only e.g. "Failed to convert abc to f"."""
    for index, token in enumerate(tokens):
        if token.startswith("-") and re.search(rf"(?<![\w-]){re.escape(token.split('=', 1)[0])}(?![\w-])", message):
            value = tokens[index + 1] if index + 1 < len(tokens) and not tokens[index + 1].startswith("--") else None
            return token if value is None or "=" in token else f"{token} {value}"
    for index, token in enumerate(tokens):
        if not token.startswith("-") and re.search(rf"(?<!\w){re.escape(token)}(?!\w)", message):
            return f"{tokens[index - 1]} {token}" if index and tokens[index - 1].startswith("-") else token
    return None


def interactions(shared: list[str], actions: list[str]) -> list[str]:
    """Every shared-by-action namespace pair (initials), as the service's ``CO``, ``SO``."""
    return [s + a for s in shared for a in actions]


def reward_model_args(pairs: list[str]) -> str:
    return " ".join([DEFAULT_REWARD_MODEL, *(f"--interactions {pair}" for pair in pairs), "--quiet"])


@dataclass(frozen=True)
class Namespaces:
    """Namespace initials (VW's namespace index) seen in the log's first chunk, each with
    the full names that share it: shared (context) ones and actions' ones."""

    shared: dict[str, list[str]]
    actions: dict[str, list[str]]
    slates: bool = False   # some event is multi-slot (CCB): the shared ones include the slot's namespaces

    @property
    def pairs(self) -> list[str]:
        return interactions(sorted(self.shared), sorted(self.actions))


def log_namespaces(source: str, format: str = "auto", limit: int = DEFAULT_CHUNK_SIZE) -> Namespaces:
    """The namespaces of the first ``limit`` good events (one chunk: cheap). A namespace
    first seen later is learned from but gets no default interaction. Features outside
    any namespace (VW's default namespace) and non-ASCII initials cannot be named in
    arguments and are left out. ``EvaluationError`` for an unreadable or empty log."""
    shared: dict[str, set[str]] = {}
    actions: dict[str, set[str]] = {}
    try:
        chunk = next(iter(read_logs(source, format, chunk_size=limit)), [])
    except LogError as exc:
        raise EvaluationError(str(exc)) from None
    if not chunk:
        raise EvaluationError(f"{source}: no events to evaluate (empty, or every event defective: "
                              f"see `nextbest replay validate`)")
    slates = False
    for event in chunk:
        _collect(event.shared, shared)
        for action in event.actions:
            _collect(action, actions)
        if event.slots is not None:
            slates = True
            for slot in event.slots:
                _collect(slot.features, shared)
    if slates:   # the reward model sees each slot with its position (replay.slate_passes)
        _collect({SLOT_NAMESPACE: {}}, shared)
    return Namespaces({k: sorted(v) for k, v in sorted(shared.items())},
                      {k: sorted(v) for k, v in sorted(actions.items())}, slates)


def _collect(features: dict[str, Any], into: dict[str, set[str]]) -> None:
    for name, value in features.items():
        if isinstance(value, dict) and name and name[0].isascii() and name[0].isalnum():
            into.setdefault(name[0], set()).add(name)


# ----------------------------------------------------------------- passes


@dataclass(frozen=True)
class Pass:
    """One pass over the log: ``kind`` "policy" (a candidate's PMF) or "reward" (the
    reward model, plus the logged facts); ``index`` is its progress slot."""

    index: int
    kind: str
    args: str
    source: str
    format: str = "auto"
    slates: bool = False   # a multi-slot (CCB) evaluation: replay.slate_passes runs it
    floor: float = 0.0     # a candidate's PMFs floored as the service floors its own (propensity_floor)
    ids: bool = False      # the reward pass keeps each event's id and _tag (per_event: ~100 bytes an event)


@dataclass
class LogFacts:
    """What the log says about each scored event, in order; per-action arrays are flat
    (event i's actions are the next ``counts[i]`` entries)."""

    rewards: np.ndarray          # float64 (n,): any real reward, so full precision
    logged_p: np.ndarray         # float32 (n,): a probability (weights then agree with float64's to ~1e-7)
    chosen: np.ndarray           # int32 (n,)
    counts: np.ndarray           # int32 (n,): actions per event
    offer_codes: np.ndarray      # int32 (Σ counts,): index into offer_names
    offer_names: list[str]       # offer ids; "action k" (by position) when the log has none
    policy_codes: np.ndarray     # int8 (n,): index into policy_names
    policy_names: list[str]      # "model", "control", "" (not said)
    skipped: int                 # skip_learn events: neither scored nor learned
    report: ValidationReport = field(default_factory=ValidationReport)
    # float32 (Σ counts,): the logged PMF over every action (``a``/``p``); NaN for the
    # actions of an event logged without it (only the served action's probability known).
    # What the support diagnostics (replay.support) read: the log's chance for each action.
    logged_pmf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # float64 (n,): 1/(1 − pdrop), how many events each stands for (replay.weighting); 1 without pdrop
    sample_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # (n,) when the pass was asked (``Pass.ids``, evaluate's per_event), else empty: to join
    # per-event outputs back; tags are VW's _tag, None where absent
    event_ids: list[str] = field(default_factory=list)
    tags: list[str | None] = field(default_factory=list)


@dataclass
class PassResult:
    index: int
    values: np.ndarray           # float32, flat (Σ counts,): a PMF per event, or predicted rewards
    events: int
    seconds: float
    facts: LogFacts | SlateFacts | None = None   # (SlateFacts: a multi-slot log's reward pass)


# Progress: each pass writes (share of bytes read, events done) into its two slots of a
# shared array; in-process runs may also set a callback that reads them.
_slots: Any = None
_tick: Callable[[], None] | None = None


def init_worker(slots: Any, tick: Callable[[], None] | None = None) -> None:
    global _slots, _tick
    _slots, _tick = slots, tick


def run_pass(job: Pass) -> PassResult:
    """Run one pass (in a worker process or in-process). Any failure becomes an
    ``EvaluationError`` with one line: it crosses the process boundary intact."""
    from vowpalwabbit import pyvw

    try:
        workspace = pyvw.Workspace(job.args + " --dsjson")
    except Exception as exc:
        raise EvaluationError(f"VW refused {job.args!r}: {exc}") from None
    try:
        if job.slates:
            from replay.slate_passes import run_slate_pass

            return run_slate_pass(job, workspace)
        return _run(job, workspace)
    except LogError as exc:
        raise EvaluationError(str(exc)) from None
    finally:
        workspace.finish()


def _run(job: Pass, workspace: Any) -> PassResult:
    import pylibvw

    predict, learn = pylibvw.vw.predict_multi, pylibvw.vw.learn_multi
    parse, finish = workspace._parse, workspace._finish_example_multi_ex
    reward = job.kind == "reward"
    facts = _FactsBuilder(ValidationReport(), job.ids) if reward else None
    values = array(TYPECODES["value"])
    started, events, skipped = time.perf_counter(), 0, 0

    def position(done: int, total: int) -> None:
        report_progress(job.index, done / total if total else 0.0, events)

    chunks = read_logs(job.source, job.format, chunk_size=PASS_CHUNK, report=facts.report if facts else None,
                       progress=position)
    for chunk in chunks:
        for event in chunk:
            if event.skip_learn:
                skipped += 1
                continue
            if event.slots is not None:
                raise EvaluationError(f"event {event.event_id!r} is a multi-slot (CCB) event, but the log's first "
                                      f"events are single-slot: evaluate it as a multi-slot log (slates=True, "
                                      f"--slates)")
            examples = parse(_vw_line(event))
            if len(examples) != len(event.actions) + 1:   # (not finished: VW crashes finishing what it misread)
                raise unreadable(event, len(examples), len(event.actions) + 1)
            try:
                predict(workspace, examples)
                scores = examples[0].get_action_scores()
                learn(workspace, examples)
            finally:
                finish(examples)
            if reward:
                values.extend([-s for s in scores])
                facts.add(event)
            else:
                values.extend(apply_floor(normalize_pmf(scores), job.floor))
            events += 1
            if not events & 0x3FF:
                report_progress(job.index, None, events)
    report_progress(job.index, 1.0, events)
    if facts is not None:
        facts.skipped = skipped
    return PassResult(job.index, view(values), events, time.perf_counter() - started,
                      facts.build() if facts else None)


def unreadable(event: LoggedEvent, read: int, expected: int) -> EvaluationError:
    """An event whose features VW's JSON parser cannot read (it then hands back fewer
    examples, which must not be learned or finished: VW crashes)."""
    return EvaluationError(f"event {event.event_id!r}: VW read {read} example(s) where {expected} were expected: "
                           f"its features are not in a form VW's JSON parser reads (e.g. nested arrays)")


def report_progress(index: int, share: float | None, events: int) -> None:
    if _slots is None:
        return
    if share is not None:
        _slots[2 * index] = share
    _slots[2 * index + 1] = events
    if _tick is not None:
        _tick()


def _vw_line(event: LoggedEvent) -> bytes:
    """The event as the DSJSON VW reads: the label, ``a`` (VW's parser needs it to read
    the actions; served action first) and the features; ``pdrop`` when the logger
    sub-sampled (VW then learns the event with weight 1/(1 − pdrop), as ``vw --dsjson``
    on the log would); nothing else."""
    chosen = event.chosen
    order = [chosen + 1, *(i + 1 for i in range(len(event.actions)) if i != chosen)]
    return orjson.dumps({"_label_cost": -event.reward, "_label_probability": event.probability,
                         "_label_Action": chosen + 1, "_labelIndex": chosen, "a": order,
                         "c": {**event.shared, "_multi": event.actions}, **pdrop_field(event)})


def pdrop_field(event: LoggedEvent) -> dict[str, float]:
    """``{"pdrop": p}`` for a sub-sampled event, else nothing (the line stays as it was)."""
    return {"pdrop": event.pdrop} if event.pdrop > 0 else {}


class _FactsBuilder:
    def __init__(self, report: ValidationReport, keep_ids: bool = False) -> None:
        self.report = report
        # compact per-event arrays (docs/replay.md, "Memory"), handed to numpy without a copy
        probability, index = TYPECODES["probability"], TYPECODES["index"]
        self.rewards, self.logged_p = array("d"), array(probability)
        self.chosen, self.counts, self.offers, self.policies = array(index), array(index), array(index), array("b")
        self.pmf, self.sample_weight = array(probability), array("d")   # (sample weights: Hájek sums in float64)
        self.keep_ids = keep_ids
        self.event_ids: list[str] = []
        self.tags: list[str | None] = []
        self.offer_index: dict[str, int] = {}
        self.policy_index: dict[str, int] = {}
        self.skipped = 0

    def add(self, event: LoggedEvent) -> None:
        self.rewards.append(event.reward)
        self.logged_p.append(event.probability)
        self.chosen.append(event.chosen)
        self.counts.append(len(event.actions))
        self.sample_weight.append(event.sample_weight)
        if self.keep_ids:
            self.event_ids.append(event.event_id)
            self.tags.append(event.tag)
        if event.pmf is not None:
            self.pmf.extend(event.pmf)
        else:
            known = [math.nan] * len(event.actions)
            known[event.chosen] = event.probability
            self.pmf.extend(known)
        ids = event.action_ids or [f"action {i + 1}" for i in range(len(event.actions))]
        index = self.offer_index
        self.offers.extend([index.setdefault(offer, len(index)) for offer in ids])
        self.policies.append(self.policy_index.setdefault(event.policy or "", len(self.policy_index)))

    def build(self) -> LogFacts:
        return LogFacts(
            rewards=view(self.rewards), logged_p=view(self.logged_p), chosen=view(self.chosen),
            counts=view(self.counts), offer_codes=view(self.offers), offer_names=list(self.offer_index),
            policy_codes=view(self.policies), policy_names=list(self.policy_index),
            skipped=self.skipped, report=self.report, logged_pmf=view(self.pmf),
            sample_weight=view(self.sample_weight), event_ids=self.event_ids, tags=self.tags,
        )


def view(values: array) -> np.ndarray:
    """An ``array.array`` as a numpy array of the same item type, without a copy (the
    array is held by the view)."""
    dtype = np.dtype(values.typecode)
    return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)


def pad_to_mask(flat: np.ndarray, mask: np.ndarray, *, copy: bool = True) -> np.ndarray:
    """Per-action values read in one pass (events × their actions, flattened) back into the
    events × actions matrix (of ``flat``'s dtype); a pass that read other events than the
    facts is an error. ``copy=False``: when every event has the most actions, the flat
    values reshaped (a view: no second n×K array)."""
    if flat.size != mask.sum():
        raise EvaluationError("the passes read different events: did the log change while it was read?")
    if not copy and mask.all():
        return flat.reshape(mask.shape)
    matrix = np.zeros(mask.shape, dtype=flat.dtype)
    matrix[mask] = flat
    return matrix
