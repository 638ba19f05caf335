"""Which learning settings to deploy, and which features carry the value: a search over
VW settings and a namespace ablation, both built on ``replay.evaluate``.

Picking the best of many candidates by the same log favours whichever got lucky (the
winner's curse): the ranking uses each candidate's DR *lower* bound, which penalises
noisy estimates, but the best one's interval is still optimistic by a little. With a
few configurations and thousands of events it is a small effect; confirm a winner on
newer traffic (or with the service's control group) before trusting its number.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.exploration import Exploration
from replay.candidates import EvaluationError, Namespaces, log_namespaces
from replay.estimators import Estimate
from replay.evaluate import EvaluationResult, PolicyResult, Progress, evaluate, mean_estimate, ranked

__all__ = ["AblationResult", "AblationRow", "SearchResult", "ablation", "default_grid", "optimize", "search_space",
           "service_default"]

EXPLORERS = ("epsilon", "softmax", "bag", "cover", "squarecb")
LEARNING_RATES = ("0.1", "0.5", "2")
MAX_DEFAULT = 24
Grid = Sequence[str] | Mapping[str, Sequence[str]]


def _explore(algorithm: str) -> str:
    """The service's own defaults for each algorithm (``policies.exploration``)."""
    return Exploration(algorithm=algorithm).vw_args()   # type: ignore[arg-type]


def _interactions(pairs: Sequence[str]) -> str:
    return " ".join(f"--interactions {pair}" for pair in pairs)


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def service_default(namespaces: Namespaces) -> str:
    """The service's default learning settings, with the log's interactions."""
    return _join(_explore("epsilon"), "-l 0.5", _interactions(namespaces.pairs))


def default_grid(namespaces: Namespaces) -> list[str]:
    """At most 24 configurations around the service's default (epsilon 0.1, every
    shared×action interaction): each exploration algorithm at learning rates 0.1, 0.5
    and 2; epsilon with ``--power_t 0`` (no learning-rate decay: for drifting traffic);
    epsilon with fewer interactions; epsilon with each shared namespace ignored."""
    every = _interactions(namespaces.pairs)
    grid = [_join(_explore(a), f"-l {lr}", every) for a in EXPLORERS for lr in LEARNING_RATES]
    grid += [_join(_explore("epsilon"), f"-l {lr}", "--power_t 0", every) for lr in LEARNING_RATES]
    base = _join(_explore("epsilon"), "-l 0.5")
    subsets = [[]] + ([[pair] for pair in namespaces.pairs] if len(namespaces.pairs) > 1 else [])
    grid += [_join(base, _interactions(subset)) for subset in subsets]
    grid += [_join(base, every, f"--ignore {initial}") for initial in namespaces.shared]
    return list(dict.fromkeys(grid))[:MAX_DEFAULT]


def search_space(namespaces: Namespaces) -> dict[str, list[str]]:
    """The dimensions ``budget`` samples from when no grid is given: their product."""
    pairs = namespaces.pairs
    subsets = [list(c) for r in range(len(pairs), -1, -1) for c in itertools.combinations(pairs, r)]
    return {"exploration": [_explore(a) for a in EXPLORERS],
            "learning rate": [f"-l {lr}" for lr in LEARNING_RATES],
            "power_t": ["", "--power_t 0"],
            "interactions": [_interactions(s) for s in subsets],
            "ignore": ["", *(f"--ignore {initial}" for initial in namespaces.shared)]}


def _expand(grid: Grid) -> list[str]:
    if isinstance(grid, Mapping):
        return [_join(*combo) for combo in itertools.product(*grid.values())]
    return [str(args) for args in grid]


@dataclass(frozen=True)
class SearchResult:
    evaluation: EvaluationResult
    ranked: list[PolicyResult]        # the candidates, by DR lower bound, best first

    @property
    def best(self) -> PolicyResult:
        return self.ranked[0]

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {"best": {"name": best.name, "args": best.args, "dr": best.value.to_json()},
                "ranked": [r.name for r in self.ranked], "evaluation": self.evaluation.to_json()}


def optimize(source: str | Path, *, grid: Grid | None = None, budget: int | None = None, seed: int = 0,
             alpha: float = 0.05, ci: str = "normal", workers: int | None = None,
             progress: Progress | None = None, format: str = "auto") -> SearchResult:
    """Evaluate a grid of settings on the log and rank them by DR lower bound.

    ``grid``: candidate argument strings, or a mapping of dimensions to options (their
    product); default ``default_grid``. ``budget``: evaluate a random (``seed``) subset
    of that many: of ``grid`` when given, else of the whole ``search_space`` (always
    including the service's default setting)."""
    namespaces = log_namespaces(str(source), format)
    if budget is not None and budget < 1:
        raise EvaluationError(f"budget must be at least 1, got {budget}")
    if grid is not None:
        configs = list(dict.fromkeys(_expand(grid)))
    elif budget is not None:
        configs = list(dict.fromkeys(_expand(search_space(namespaces))))
    else:
        configs = default_grid(namespaces)
    if not configs:
        raise EvaluationError("the grid is empty")
    if budget is not None and budget < len(configs):
        first = service_default(namespaces) if grid is None else configs[0]
        rest = [c for c in configs if c != first]
        configs = [first, *random.Random(seed).sample(rest, budget - 1)]
    result = evaluate(source, configs, alpha=alpha, ci=ci, workers=workers, progress=progress, format=format)
    return SearchResult(result, ranked(result.candidates))


@dataclass(frozen=True)
class AblationRow:
    initial: str                  # VW's namespace index: the name's first letter
    names: list[str]              # the namespaces with that initial
    result: PolicyResult          # the base arguments plus --ignore <initial>
    drop: Estimate                # DR(base) - DR(without): paired over the same events

    def to_json(self) -> dict[str, Any]:
        return {"initial": self.initial, "namespaces": self.names, "args": self.result.args,
                "dr": self.result.value.to_json(), "drop": self.drop.to_json()}


@dataclass(frozen=True)
class AblationResult:
    base: PolicyResult
    rows: list[AblationRow]       # by drop, largest first
    evaluation: EvaluationResult

    def to_json(self) -> dict[str, Any]:
        return {"base": {"name": self.base.name, "args": self.base.args, "dr": self.base.value.to_json()},
                "namespaces": [row.to_json() for row in self.rows], "evaluation": self.evaluation.to_json()}


def ablation(source: str | Path, base_args: str, *, alpha: float = 0.05, ci: str = "normal",
             workers: int | None = None, progress: Progress | None = None, format: str = "auto") -> AblationResult:
    """Feature importance by namespace: ``base_args`` and, for each namespace initial in
    the log (shared and actions'), ``base_args --ignore <initial>``. A namespace matters
    as much as its drop in DR value; the drop's interval is paired (per-event DR
    differences on the same events), so far tighter than the two intervals apart."""
    namespaces = log_namespaces(str(source), format)
    names: dict[str, list[str]] = {}
    for initial, found in [*namespaces.shared.items(), *namespaces.actions.items()]:
        known = names.setdefault(initial, [])
        known += [name for name in found if name not in known]
    ignored = set("".join(_ignored(base_args)))
    initials = [i for i in names if i not in ignored]
    if not initials:
        raise EvaluationError("no namespace left to ablate: the log has none, or the base arguments ignore them all")
    configs = [base_args, *(_join(base_args, f"--ignore {initial}") for initial in initials)]
    result = evaluate(source, configs, alpha=alpha, ci=ci, baselines=False, workers=workers, progress=progress,
                      format=format)
    base, *others = result.candidates
    rows = [AblationRow(initial, names[initial], other,
                        mean_estimate(base.terms - other.terms, "dr_difference", alpha, ci))
            for initial, other in zip(initials, others)]
    return AblationResult(base, sorted(rows, key=lambda r: -r.drop.value), result)


def _ignored(args: str) -> list[str]:
    tokens = args.split()
    found = [tokens[i + 1] for i, token in enumerate(tokens[:-1]) if token == "--ignore"]
    return found + [token.split("=", 1)[1] for token in tokens if token.startswith("--ignore=")]
