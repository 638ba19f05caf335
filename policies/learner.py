"""The contextual-bandit learner: one VW ``--cb_explore_adf`` workspace behind a
tiny ``predict_one`` / ``learn_one`` interface shared by the service and replay."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Sequence

import pylibvw
from vowpalwabbit import pyvw

from policies.exploration import Exploration, normalize_pmf
from policies.vwtext import adf_example


@dataclass(frozen=True)
class LearnerSettings:
    exploration: Exploration = field(default_factory=Exploration)
    bits: int = 18
    interactions: tuple[str, ...] = ("CO", "SO")
    learning_rate: float | None = None
    extra_args: str = ""

    def vw_args(self) -> str:
        parts = ["--cb_explore_adf", self.exploration.vw_args(), f"-b {self.bits}"]
        parts += [f"--interactions {pair}" for pair in self.interactions]
        if self.learning_rate is not None:
            parts.append(f"-l {self.learning_rate}")
        if self.extra_args:
            parts.append(self.extra_args)
        parts.append("--quiet")
        return " ".join(parts)


class Learner:
    """Owns a VW workspace; ``learned`` counts the examples it has learned from,
    including those in the checkpoint it was loaded from."""

    def __init__(self, settings: LearnerSettings, model: bytes | None = None, learned: int = 0) -> None:
        self.settings = settings
        self.learned = learned
        self._vw = _workspace(settings.vw_args(), model)

    def predict_one(self, shared_line: str, action_lines: Sequence[str]) -> list[float]:
        """The exploration PMF over the candidates, normalized to sum to 1."""
        return normalize_pmf(self._run(adf_example(shared_line, action_lines), pylibvw.vw.predict_multi))

    def learn_one(
        self, shared_line: str, action_lines: Sequence[str], chosen: int, probability: float, reward: float
    ) -> None:
        """VW minimizes cost, so the cost is the negated reward."""
        self._run(adf_example(shared_line, action_lines, (chosen, -reward, probability)), pylibvw.vw.learn_multi)
        self.learned += 1

    def _run(self, lines: list[str], step) -> list[float]:
        """Parse, predict or learn, and return the examples to VW's pool: pyvw's own
        wrappers do the same with a Python object per line, which costs 3-5x more."""
        examples = self._vw._parse("\n".join(lines))
        try:
            step(self._vw, examples)
            return examples[0].get_action_scores()
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


def _workspace(args: str, model: bytes | None) -> pyvw.Workspace:
    if model is None:
        return pyvw.Workspace(args)
    with tempfile.TemporaryDirectory(prefix="nbmodel") as tmp:
        path = os.path.join(tmp, "model.vw")
        with open(path, "wb") as fh:
            fh.write(model)
        return pyvw.Workspace(f"{args} -i {path}")
