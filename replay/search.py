"""Which learning settings to deploy, and which features carry the value: a search over
VW settings and a namespace ablation, both built on ``replay.evaluate``.

``optimize`` starts from the deployed settings (``replay.deployed``: the checkpoint
metadata of the data dir the log is in, or ``deployed_from``): they are the incumbent,
evaluated by progressive validation like every candidate around them (``replay.grid``),
and a change is recommended only when a candidate's DR *lower* bound beats the
incumbent's DR estimate (as Personalizer's auto-optimize did). Picking the best of many
by the same log favours whichever got lucky (the winner's curse); asking that the
lower bound clear the incumbent's value keeps a lucky candidate from displacing a
setting that is as good, and the paired difference to the incumbent (per-event DR
terms on the same events) says by how much. Confirm a change on newer traffic (or with
the service's control group) before trusting its number.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay.candidates import EvaluationError, log_namespaces
from replay.deployed import Deployed, find_deployed
from replay.estimators import Estimate
from replay.evaluate import EvaluationResult, PolicyResult, Progress, evaluate, mean_estimate, ranked
from replay.grid import (  # noqa: F401 (re-exported: callers import them from replay.search)
    EXPLORERS,
    LEARNING_RATES,
    MAX_DEFAULT,
    Grid,
    default_grid,
    expand,
    grid_around,
    join,
    search_space,
    service_default,
    split_args,
)

__all__ = ["AblationResult", "AblationRow", "Incumbent", "Recommendation", "SearchResult", "ablation",
           "default_grid", "grid_around", "optimize", "search_space", "service_default"]


@dataclass(frozen=True)
class Incumbent:
    """What a change is measured against: the deployed settings when they are known."""

    args: str
    source: str                      # the checkpoint file, or why the service's default was taken
    deployed: Deployed | None

    @property
    def floor(self) -> float:
        return self.deployed.floor if self.deployed is not None else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"args": self.args, "source": self.source, "propensity_floor": self.floor,
                "deployed": self.deployed.to_json() if self.deployed is not None else None}


@dataclass(frozen=True)
class Recommendation:
    """``change``: deploy ``policy`` instead of the incumbent; else keep the incumbent
    (``policy`` is then the incumbent). ``reason`` says why, with the numbers."""

    change: bool
    policy: PolicyResult
    reason: str
    difference: Estimate | None      # the policy's DR terms minus the incumbent's, paired (None: keep)

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, "name": self.policy.name, "args": self.policy.args, "reason": self.reason,
                "dr": self.policy.value.to_json(),
                "difference": self.difference.to_json() if self.difference is not None else None}


@dataclass(frozen=True)
class SearchResult:
    evaluation: EvaluationResult
    ranked: list[PolicyResult]        # the candidates, by DR lower bound, best first
    incumbent: PolicyResult | None = None
    incumbent_info: Incumbent | None = None
    recommendation: Recommendation | None = None

    @property
    def best(self) -> PolicyResult:
        return self.ranked[0]

    def to_json(self) -> dict[str, Any]:
        best = self.best
        out: dict[str, Any] = {"best": {"name": best.name, "args": best.args, "dr": best.value.to_json()},
                               "ranked": [r.name for r in self.ranked]}
        if self.incumbent is not None and self.incumbent_info is not None:
            out["incumbent"] = {"name": self.incumbent.name, "dr": self.incumbent.value.to_json(),
                                **self.incumbent_info.to_json()}
        if self.recommendation is not None:
            out["recommendation"] = self.recommendation.to_json()
        out["evaluation"] = self.evaluation.to_json()
        return out


def optimize(source: str | Path, *, grid: Grid | None = None, budget: int | None = None, seed: int = 0,
             alpha: float = 0.05, ci: str = "normal", workers: int | None = None,
             progress: Progress | None = None, format: str = "auto",
             deployed_from: str | Path | None = None) -> SearchResult:
    """Evaluate the incumbent and a grid of settings on the log, rank them by DR lower
    bound, and recommend a change only when one's lower bound beats the incumbent's DR.

    The incumbent: the deployed settings (``replay.deployed.find_deployed``: the newest
    checkpoint of ``deployed_from``, or of the data dir ``source`` lives in), else the
    service's default. Every candidate is floored as the deployed service floors its
    PMFs. ``grid``: candidate argument strings, or a mapping of dimensions to options
    (their product); default ``grid_around`` the incumbent (``default_grid`` without
    deployed settings). ``budget``: evaluate a random (``seed``) subset of that many: of
    ``grid`` when given, else of the whole ``search_space``; the incumbent always."""
    namespaces = log_namespaces(str(source), format)
    if budget is not None and budget < 1:
        raise EvaluationError(f"budget must be at least 1, got {budget}")
    deployed = find_deployed(source, deployed_from)
    if deployed is not None:
        info = Incumbent(split_args(deployed.args).render(), f"deployed settings: {deployed.source}", deployed)
    else:
        info = Incumbent(service_default(namespaces), "the service's default settings (no deployed settings "
                         "found: give the service's data dir, or --deployed-from DATA_DIR)", None)
    incumbent = info.args
    if grid is not None:
        configs = expand(grid)
    elif budget is not None:
        configs = expand(search_space(namespaces, split_args(incumbent).rest if deployed else ""))
    else:
        configs = grid_around(incumbent, namespaces) if deployed is not None else default_grid(namespaces)
    if not configs:
        raise EvaluationError("the grid is empty")
    configs = list(dict.fromkeys([incumbent, *configs]))
    if budget is not None and budget < len(configs):
        configs = [incumbent, *random.Random(seed).sample(configs[1:], budget - 1)] if budget > 1 else [incumbent]
    result = evaluate(source, configs, alpha=alpha, ci=ci, workers=workers, progress=progress, format=format,
                      propensity_floor=info.floor)
    held = result.candidates[0]
    kept = "the deployed settings" if deployed is not None else "the service's default settings"
    return SearchResult(result, ranked(result.candidates), held, info,
                        recommend(held, result.candidates[1:], alpha, ci, kept))


def recommend(incumbent: PolicyResult, others: list[PolicyResult], alpha: float, ci: str,
              kept: str = "the deployed settings") -> Recommendation:
    """A change only when a candidate's DR lower bound beats the incumbent's DR value:
    of those (support-flagged ones left out), the one with the highest lower bound. Otherwise keep the incumbent
    (``kept`` names it in the reason)."""
    held = incumbent.value
    better = [c for c in ranked(others)   # never a setting whose estimate rests on poorly explored actions
              if not c.flagged and math.isfinite(c.value.lower) and c.value.lower > held.value]
    if better:
        pick = better[0]
        difference = _paired(pick, incumbent, alpha, ci)
        v = pick.value
        reason = (f"change to {pick.name!r}: its DR lower bound {v.lower:.4f} beats the incumbent's DR estimate "
                  f"{held.value:.4f} (paired difference {difference.value:+.4f}, "
                  f"{1 - alpha:.0%} CI {difference.lower:+.4f} … {difference.upper:+.4f})")
        return Recommendation(True, pick, reason, difference)
    top = ranked(others)[0] if others else None
    reason = f"keep {kept}: no candidate's DR lower bound beats their DR estimate {held.value:.4f}"
    if top is not None:
        reason += f" (the highest: {top.value.lower:.4f}, {top.name!r}, DR {top.value.value:.4f})"
    return Recommendation(False, incumbent, reason, None)


def _paired(policy: PolicyResult, other: PolicyResult, alpha: float, ci: str) -> Estimate:
    """``policy`` minus ``other``: the mean of per-event DR-term differences on the same
    events, with its interval (the events' common noise cancels)."""
    if policy.terms is None or other.terms is None:
        raise EvaluationError("a candidate without per-event terms cannot be compared")
    return mean_estimate(policy.terms - other.terms, "dr_difference", alpha, ci)


@dataclass(frozen=True)
class AblationRow:
    initial: str                  # VW's namespace index: the name's first letter
    names: list[str]              # the namespaces with that initial
    result: PolicyResult          # the base arguments plus --ignore <initial>
    drop: Estimate                # DR(base) - DR(without): paired over the same events
    warning: str | None = None    # a drop that cannot be taken at its word

    def to_json(self) -> dict[str, Any]:
        return {"initial": self.initial, "namespaces": self.names, "args": self.result.args,
                "dr": self.result.value.to_json(), "drop": self.drop.to_json(), "warning": self.warning}


@dataclass(frozen=True)
class AblationResult:
    base: PolicyResult
    rows: list[AblationRow]       # by drop, largest first
    evaluation: EvaluationResult
    propensity_floor: float = 0.0  # the deployed service's, applied to every policy ablated

    @property
    def warnings(self) -> list[str]:
        return [f"{row.initial}: {row.warning}" for row in self.rows if row.warning]

    def to_json(self) -> dict[str, Any]:
        return {"base": {"name": self.base.name, "args": self.base.args, "dr": self.base.value.to_json()},
                "propensity_floor": self.propensity_floor, "namespaces": [row.to_json() for row in self.rows],
                "warnings": self.warnings, "evaluation": self.evaluation.to_json()}


def ablation(source: str | Path, base_args: str | None = None, *, alpha: float = 0.05, ci: str = "normal",
             workers: int | None = None, progress: Progress | None = None, format: str = "auto",
             deployed_from: str | Path | None = None) -> AblationResult:
    """Feature importance by namespace: ``base_args`` (default: the deployed settings,
    ``replay.deployed``) and, for each namespace initial in the log (shared and
    actions'), ``base_args --ignore <initial>``, floored as the deployed service floors.
    A namespace matters as much as its drop in DR value. The drop's interval is paired:
    the mean of per-event differences, full policy's DR terms minus the ablated one's on
    the same events; the two policies mostly agree, so their terms are strongly
    correlated and the paired interval far tighter than the two intervals apart. A drop
    larger than the whole policy's value is flagged (``warning``): the ablated policy's
    estimate then rests on events the log barely explored, or the base's on luck."""
    namespaces = log_namespaces(str(source), format)
    deployed = find_deployed(source, deployed_from)
    if base_args is None:
        if deployed is None:
            raise EvaluationError("no base policy: give its VW arguments (--policy), or the service's data dir "
                                  "(--deployed-from DATA_DIR) to ablate the deployed settings")
        base_args = split_args(deployed.args).render()
    names: dict[str, list[str]] = {}
    for initial, found in [*namespaces.shared.items(), *namespaces.actions.items()]:
        known = names.setdefault(initial, [])
        known += [name for name in found if name not in known]
    ignored = set("".join(_ignored(base_args)))
    initials = [i for i in names if i not in ignored]
    if not initials:
        raise EvaluationError("no namespace left to ablate: the log has none, or the base arguments ignore them all")
    floor = deployed.floor if deployed is not None else 0.0
    configs = [base_args, *(join(base_args, f"--ignore {initial}") for initial in initials)]
    result = evaluate(source, configs, alpha=alpha, ci=ci, baselines=False, workers=workers, progress=progress,
                      format=format, propensity_floor=floor)
    base, *others = result.candidates
    rows = []
    for initial, other in zip(initials, others):
        drop = _paired(base, other, alpha, ci)
        rows.append(AblationRow(initial, names[initial], other, drop, _drop_warning(drop, base.value)))
    return AblationResult(base, sorted(rows, key=lambda r: -r.drop.value), result, floor)


def _drop_warning(drop: Estimate, whole: Estimate) -> str | None:
    """Ignoring features cannot cost more than everything the policy earns (rewards at
    least 0): such a drop says an estimate is off, not that the features are worth it."""
    if math.isfinite(drop.value) and drop.value > abs(whole.value):
        return (f"the drop {drop.value:.4f} is larger than the whole policy's value {whole.value:.4f}: the "
                f"estimate without these features is not to be trusted (look at its ESS and its DM/IPS agreement)")
    return None


def _ignored(args: str) -> list[str]:
    tokens = args.split()
    found = [tokens[i + 1] for i, token in enumerate(tokens[:-1]) if token == "--ignore"]
    return found + [token.split("=", 1)[1] for token in tokens if token.startswith("--ignore=")]
