"""The settings ``optimize`` evaluates: candidate VW argument strings around an incumbent
(the deployed settings, or the service's default when none are known), one thing varied
at a time, and the search space ``budget`` samples from.

A grid around the code's defaults compares candidates with a setting nobody runs; around
the deployed one, every candidate is a concrete change to what is running, and the
incumbent itself is always evaluated, the same way (progressive validation), next to them.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from policies.exploration import Exploration
from replay.candidates import Namespaces

__all__ = ["EXPLORERS", "LEARNING_RATES", "MAX_DEFAULT", "Grid", "Parts", "default_grid", "expand", "grid_around",
           "join", "search_space", "service_default", "split_args"]

EXPLORERS = ("epsilon", "softmax", "bag", "cover", "squarecb")
LEARNING_RATES = ("0.1", "0.5", "2")
MAX_DEFAULT = 24
Grid = Sequence[str] | Mapping[str, Sequence[str]]

# VW's exploration options for --cb_explore_adf / --ccb_explore_adf, and how many values each takes.
_EXPLORE_OPTIONS = {"--epsilon": 1, "--softmax": 0, "--lambda": 1, "--bag": 1, "--cover": 1, "--squarecb": 0,
                    "--gamma_scale": 1, "--gamma_exponent": 1, "--regcb": 0, "--regcbopt": 0, "--first": 1,
                    "--psi": 1, "--nounif": 0, "--mellowness": 1, "--synthcover": 0, "--rnd": 1, "--elim": 0,
                    "--large_action_space": 0}


def _explore(algorithm: str) -> str:
    """The service's own defaults for each algorithm (``policies.exploration``)."""
    return Exploration(algorithm=algorithm).vw_args()   # type: ignore[arg-type]


def _interactions(pairs: Sequence[str]) -> str:
    return " ".join(f"--interactions {pair}" for pair in pairs)


def join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class Parts:
    """A candidate's arguments split into what the grid varies; ``rest`` (``-b 22``, …)
    is kept as it is in every variant."""

    explore: str = ""
    rate: str = ""                        # "-l 0.5", or "" (VW's default)
    power_t: str = ""                     # "--power_t 0", or ""
    interactions: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    rest: str = ""

    def render(self) -> str:
        return join(self.explore, self.rate, self.power_t, _interactions(self.interactions),
                    " ".join(f"--ignore {n}" for n in self.ignore), self.rest)


def split_args(args: str) -> Parts:
    """Split VW arguments (without the reduction) into ``Parts``. Options of the form
    ``--name=value`` are read as ``--name value``."""
    tokens: list[str] = []
    for token in shlex.split(args):
        tokens += token.split("=", 1) if token.startswith("--") and "=" in token else [token]
    explore, rest, interactions, ignore = [], [], [], []
    rate = power_t = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in _EXPLORE_OPTIONS:
            width = _EXPLORE_OPTIONS[token]
            explore += tokens[i:i + 1 + width]
            i += 1 + width
        elif token in ("-l", "--learning_rate") and value:
            rate, i = f"-l {value}", i + 2
        elif token == "--power_t" and value:
            power_t, i = f"--power_t {value}", i + 2
        elif token in ("--interactions", "-q") and value:
            interactions.append(value)
            i += 2
        elif token == "--ignore" and value:
            ignore.append(value)
            i += 2
        else:
            rest.append(token)
            i += 1
    return Parts(" ".join(explore), rate, power_t, tuple(interactions), tuple(ignore), shlex.join(rest))


def service_default(namespaces: Namespaces) -> str:
    """The service's default learning settings, with the log's interactions."""
    return join(_explore("epsilon"), "-l 0.5", _interactions(namespaces.pairs))


def default_grid(namespaces: Namespaces) -> list[str]:
    """At most 24 configurations around the service's default (epsilon 0.1, every
    shared×action interaction): each exploration algorithm at learning rates 0.1, 0.5
    and 2; epsilon with ``--power_t 0`` (no learning-rate decay: for drifting traffic);
    epsilon with fewer interactions; epsilon with each shared namespace ignored."""
    every = _interactions(namespaces.pairs)
    grid = [join(_explore(a), f"-l {lr}", every) for a in EXPLORERS for lr in LEARNING_RATES]
    grid += [join(_explore("epsilon"), f"-l {lr}", "--power_t 0", every) for lr in LEARNING_RATES]
    base = join(_explore("epsilon"), "-l 0.5")
    subsets = [[]] + ([[pair] for pair in namespaces.pairs] if len(namespaces.pairs) > 1 else [])
    grid += [join(base, _interactions(subset)) for subset in subsets]
    grid += [join(base, every, f"--ignore {initial}") for initial in namespaces.shared]
    return list(dict.fromkeys(grid))[:MAX_DEFAULT]


def grid_around(incumbent: str, namespaces: Namespaces) -> list[str]:
    """At most 24 configurations, the incumbent first, each changing one thing of it:
    the exploration algorithm (the service's defaults for each), the learning rate (0.1,
    0.5, 2), ``--power_t 0`` on or off, one interaction dropped or one of the log's
    shared×action pairs added, one shared namespace ignored. Everything else of the
    incumbent (``-b``, other options) stays."""
    base = split_args(incumbent)
    variants = [base]
    variants += [replace(base, explore=_explore(a)) for a in EXPLORERS]
    variants += [replace(base, rate=f"-l {lr}") for lr in LEARNING_RATES]
    variants.append(replace(base, power_t="" if base.power_t else "--power_t 0"))
    if len(base.interactions) > 1:
        variants += [replace(base, interactions=tuple(p for p in base.interactions if p != pair))
                     for pair in base.interactions]
    variants += [replace(base, interactions=(*base.interactions, pair)) for pair in namespaces.pairs
                 if pair not in base.interactions]
    variants += [replace(base, ignore=(*base.ignore, initial)) for initial in namespaces.shared
                 if initial not in base.ignore]
    return list(dict.fromkeys(v.render() for v in variants))[:MAX_DEFAULT]


def search_space(namespaces: Namespaces, rest: str = "") -> dict[str, list[str]]:
    """The dimensions ``budget`` samples from when no grid is given: their product
    (``rest``: the incumbent's other options, kept in every point)."""
    pairs = namespaces.pairs
    subsets = [list(c) for r in range(len(pairs), -1, -1) for c in itertools.combinations(pairs, r)]
    space = {"exploration": [_explore(a) for a in EXPLORERS],
             "learning rate": [f"-l {lr}" for lr in LEARNING_RATES],
             "power_t": ["", "--power_t 0"],
             "interactions": [_interactions(s) for s in subsets],
             "ignore": ["", *(f"--ignore {initial}" for initial in namespaces.shared)]}
    if rest:
        space["other options"] = [rest]
    return space


def expand(grid: Grid) -> list[str]:
    if isinstance(grid, Mapping):
        return [join(*combo) for combo in itertools.product(*grid.values())]
    return [str(args) for args in grid]
