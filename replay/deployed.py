"""The deployed settings: what the service that wrote a log was running, read from the
checkpoint metadata it keeps in ``data_dir/models/model-*.json`` (``args``: the VW
command line; ``settings``: the propensity floor, the value prior, the control group).

``optimize`` makes them the incumbent: a change is recommended only when a candidate is
confidently better than what is deployed, not than the code's defaults. Reading JSON
files, not Redis: replay imports nothing of the service.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from replay.candidates import EXPLORE, SLATE_EXPLORE, EvaluationError

__all__ = ["Deployed", "candidate_args", "find_deployed", "read_deployed"]

MODELS = "models"
DECISIONS = "decisions"


@dataclass(frozen=True)
class Deployed:
    """The newest checkpoint's settings. ``args`` is a candidate string (the reduction and
    ``--quiet`` taken out: evaluation adds the log's own); ``floor`` the propensity floor
    the service applied (0 for a checkpoint written before it was recorded)."""

    args: str
    floor: float
    source: str                          # the checkpoint file they were read from
    version: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    recorded_floor: bool = True          # False: an older checkpoint without settings

    def to_json(self) -> dict[str, Any]:
        return {"args": self.args, "propensity_floor": self.floor, "source": self.source, "version": self.version,
                "settings": dict(self.settings), "floor_recorded": self.recorded_floor}


def candidate_args(vw_args: str) -> str:
    """The service's VW command line as a candidate: without ``--cb_explore_adf`` /
    ``--ccb_explore_adf`` and ``--quiet``."""
    return shlex.join(t for t in shlex.split(vw_args) if t not in (EXPLORE, SLATE_EXPLORE, "--quiet"))


def read_deployed(data_dir: str | Path) -> Deployed | None:
    """The settings of the newest checkpoint in ``data_dir/models`` (or ``data_dir`` itself
    when it is the models directory); None when there is none. A checkpoint file that
    cannot be read is an ``EvaluationError`` naming it."""
    root = Path(data_dir)
    models = root if root.name == MODELS else root / MODELS
    files = sorted(models.glob("model-*.json")) if models.is_dir() else []
    if not files:
        return None
    newest = files[-1]
    try:
        meta = orjson.loads(newest.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise EvaluationError(f"{newest}: cannot read the checkpoint metadata: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("args"), str):
        raise EvaluationError(f"{newest}: not a checkpoint's metadata (no \"args\")")
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    floor = settings.get("propensity_floor", 0.0)
    if not isinstance(floor, (int, float)) or not 0.0 <= floor <= 1.0:
        raise EvaluationError(f"{newest}: settings.propensity_floor must be a number within [0, 1], got {floor!r}")
    return Deployed(candidate_args(meta["args"]), float(floor), str(newest), int(meta.get("version", 0)),
                    settings, "propensity_floor" in settings)


def find_deployed(logs: str | Path, deployed_from: str | Path | None = None) -> Deployed | None:
    """``deployed_from`` (a data dir, or its models dir) when given: then a missing
    checkpoint is an error. Otherwise the data dir the log lives in, when it is one: LOGS
    is ``<data_dir>/decisions`` or ``<data_dir>`` itself."""
    if deployed_from is not None:
        found = read_deployed(deployed_from)
        if found is None:
            raise EvaluationError(f"{deployed_from}: no checkpoint metadata (models/model-*.json) to read the "
                                  f"deployed settings from")
        return found
    path = Path(logs)
    if not path.is_dir():
        return None
    return read_deployed(path.parent if path.name == DECISIONS else path)
