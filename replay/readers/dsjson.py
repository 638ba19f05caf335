"""DSJSON decision logs, line by line: the service's (with ``_nb``) and plain VW ones.

Files are read as bytes with a cap on the line length, so neither a huge file nor a
file of junk without newlines is ever held in memory; a gzipped file is decompressed
as it streams. See docs/log-format.md for the fields.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import orjson

from replay.readers.event import (
    DEFAULT_CHUNK_SIZE,
    LoggedEvent,
    Progress,
    chunked,
    integer,
    number,
    numbers,
    objects,
    slate_fields,
    strings,
)
from replay.readers.slots import is_slate, parse_slots
from replay.validate import (
    BAD_PDROP,
    BAD_PMF,
    MALFORMED,
    MISSING_PROBABILITY,
    MISSING_REWARD,
    NO_ACTIONS,
    UNPARSEABLE,
    UNREADABLE,
    Checker,
    Defect,
    LogError,
    ValidationReport,
    clip,
)

SUFFIXES = (".dsjson", ".dsjson.gz")
MAX_LINE_BYTES = 32 << 20
"""Longer lines are refused unread: a service line with 200 offers is well under 1 MiB."""
_BOM = b"\xef\xbb\xbf"
_NB_FIELDS = ("policy", "offers")   # the _nb fields LoggedEvent has a place for; the rest go to extra
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_dsjson(path: str | Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE, strict: bool = False,
                report: ValidationReport | None = None,
                progress: Progress | None = None) -> Iterator[list[LoggedEvent]]:
    """Chunks of good events from a DSJSON file (``.gz`` is decompressed) or a directory
    of them (``*.dsjson`` and ``*.dsjson.gz`` in name order: the service's names sort
    oldest first). Defects go to ``report`` and are skipped, or with ``strict`` raise
    ``LogError``. A missing path raises ``LogError`` at once, before any iteration."""
    files = dsjson_files(Path(path))
    checker = Checker(report if report is not None else ValidationReport(), strict)
    return chunked(_events(files, checker, progress), chunk_size)


DECISIONS = "decisions"
"""The decision log's directory inside the service's data dir (bandit.config: ``decisions_dir``)."""


def log_directory(path: str | Path) -> Path:
    """Where the log files of ``path`` are: a directory with DSJSON files is itself; the
    service's data dir (no log files, but a ``decisions/`` directory) is its
    ``decisions/``; a file is itself. So a data dir names the log and, through its
    ``models/``, the deployed settings (``replay.deployed``)."""
    path = Path(path)
    if path.is_dir() and not _has_logs(path) and (path / DECISIONS).is_dir():
        return path / DECISIONS
    return path


def _has_logs(directory: Path) -> bool:
    try:
        return any(p.name.endswith(SUFFIXES) and p.is_file() for p in directory.iterdir())
    except OSError:
        return False


def dsjson_files(path: Path) -> list[Path]:
    """A file as itself; a directory's log files in name order (not the ``.tmp`` of a
    compression in progress); a data dir's ``decisions/`` files (``log_directory``). Not
    bandit.learn.decision_log.log_files: that needs the service's ``decisions-`` prefix,
    and importing it pulls in the service (Redis, VW, aiohttp)."""
    if path.is_dir():
        given, path = path, log_directory(path)
        files = sorted(p for p in path.iterdir() if p.name.endswith(SUFFIXES) and p.is_file())
        if not files and path == given:
            raise LogError(f"{path}: no {' or '.join(SUFFIXES)} files in this directory and no {DECISIONS}/ "
                           f"directory: expected a decision log directory or the service's data dir")
        if not files:
            raise LogError(f"{path}: no {' or '.join(SUFFIXES)} files in the data dir's decision log")
        return files
    if not path.exists():
        raise LogError(f"{path}: no such file or directory")
    return [path]


def _events(files: list[Path], checker: Checker, progress: Progress | None) -> Iterator[LoggedEvent]:
    sizes = [_size(path) for path in files]
    total, before = sum(sizes), 0
    for path, size in zip(files, sizes):
        position = (lambda read, base=before: progress(base + read, total)) if progress else None
        yield from _file_events(path, checker, position)
        before += size
        if progress:
            progress(before, total)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _file_events(path: Path, checker: Checker, position: Callable[[int], None] | None) -> Iterator[LoggedEvent]:
    name = str(path)
    try:
        raw = open(path, "rb")   # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        checker.reject(Defect(UNREADABLE, f"cannot open: {exc.strerror or exc}"), name, None, b"")
        return
    packed = path.name.endswith(".gz")
    lineno = 0
    with raw, (gzip.GzipFile(fileobj=raw, mode="rb") if packed else nullcontext(raw)) as fh:
        try:
            while line := fh.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if position is not None and not lineno & 0xFFF:
                    position(raw.tell())
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    _skip_rest_of_line(fh)
                    too_long = Defect(UNPARSEABLE, f"a line longer than {MAX_LINE_BYTES >> 20} MiB")
                    checker.reject(too_long, name, lineno, line)
                    continue
                if lineno == 1 and line.startswith(_BOM):
                    line = line[len(_BOM):]
                if line.isspace():
                    continue
                try:
                    event = parse_line(line)
                    checker.admit(event)
                except Defect as defect:
                    torn = defect.kind == UNPARSEABLE and not line.endswith(b"\n")
                    checker.reject(Defect(UNPARSEABLE, f"{defect.reason} (a torn last line: no newline at its end)")
                                   if torn else defect, name, lineno, line)
                    continue
                yield event
        except (OSError, EOFError, zlib.error) as exc:   # not gzip, truncated, corrupt, an I/O error
            checker.reject(Defect(UNREADABLE, f"cannot read on after line {lineno}: {exc}"), name, lineno + 1, b"")


def _skip_rest_of_line(fh: gzip.GzipFile | io.BufferedReader) -> None:
    while (piece := fh.readline(MAX_LINE_BYTES)) and not piece.endswith(b"\n"):
        pass


def parse_line(line: bytes) -> LoggedEvent:
    """One DSJSON line as an event; raises ``Defect`` for what is missing or wrong.
    A multi-slot (CCB) line, with ``_outcomes`` and ``c._slots``, gives an event with
    ``slots`` (``replay.readers.slots``); a single-slot line reads as it always did."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise Defect(UNPARSEABLE, f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Defect(UNPARSEABLE, f"a JSON {_JSON_TYPES.get(type(doc), 'value')}, not an object")
    event_id = doc.get("EventId")
    if not isinstance(event_id, str) or not event_id:
        raise Defect(MALFORMED, "no EventId" if event_id is None else f"EventId {clip(repr(event_id), 40)} "
                     "is not a non-empty string")
    timestamp = doc.get("Timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        raise Defect(MALFORMED, f"Timestamp {clip(repr(timestamp), 40)} is not a string")
    features = doc.get("c")
    if not isinstance(features, dict):
        if features is None:
            raise Defect(NO_ACTIONS, "no features ('c'), so no candidate actions")
        raise Defect(MALFORMED, f"'c' is a JSON {_JSON_TYPES.get(type(features), 'value')}, not an object")
    multi = features.get("_multi")
    if not multi:
        raise Defect(NO_ACTIONS, "no candidate actions: 'c._multi' is missing or empty")
    actions = objects(multi, MALFORMED, "c._multi")
    slots = parse_slots(doc, features) if is_slate(doc, features) else None
    if slots is not None:
        chosen, probability, pmf, reward = slate_fields(slots, len(actions))
    else:
        chosen = _chosen(doc)
        probability = number(doc.get("_label_probability"), MISSING_PROBABILITY, "_label_probability")
        reward = 0.0 - number(doc.get("_label_cost"), MISSING_REWARD, "_label_cost")   # 0.0 -: no -0.0
        pmf = _pmf(doc.get("a"), doc.get("p"), len(actions), chosen)
    nb = doc.get("_nb")
    if nb is None:
        nb = {}
    elif not isinstance(nb, dict):
        raise Defect(MALFORMED, f"_nb is a JSON {_JSON_TYPES.get(type(nb), 'value')}, not an object")
    offers = nb.get("offers")
    policy = nb.get("policy")
    if policy is not None and not isinstance(policy, str):
        raise Defect(MALFORMED, f"_nb.policy {clip(repr(policy), 40)} is not a string")
    shared, extra = dict(features), dict(nb)
    del shared["_multi"]
    shared.pop("_slots", None)
    tag = _tag(shared.pop("_tag", None), doc.get("_tag"))
    pdrop = doc.get("pdrop")
    pdrop = 0.0 if pdrop is None else number(pdrop, BAD_PDROP, "pdrop")
    for key in _NB_FIELDS:
        extra.pop(key, None)
    return LoggedEvent(
        event_id=event_id, timestamp=timestamp, shared=shared, actions=actions,
        action_ids=None if offers is None else strings(offers, MALFORMED, "_nb.offers"),
        chosen=chosen, probability=probability, pmf=pmf, reward=reward,
        skip_learn=doc.get("_skipLearn") is True, policy=policy, extra=extra, slots=slots, tag=tag, pdrop=pdrop,
    )


def _tag(inside: Any, top: Any) -> str | None:
    """VW's example tag: ``c._tag`` (where VW's DSJSON parser reads it), else a top-level
    ``_tag`` (VW ignores that one; some loggers write it there); a number as its text."""
    value = inside if inside is not None else top
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return orjson.dumps(value).decode()
    raise Defect(MALFORMED, f"_tag {clip(repr(value), 40)} is not a string")


def _chosen(doc: dict[str, Any]) -> int:
    """The served action, 0-based: ``_labelIndex``, else ``_label_Action`` (1-based)."""
    index, action = doc.get("_labelIndex"), doc.get("_label_Action")
    if index is None and action is None:
        raise Defect(MALFORMED, "no _labelIndex or _label_Action: the served action is unknown")
    if index is None:
        return integer(action, MALFORMED, "_label_Action") - 1
    index = integer(index, MALFORMED, "_labelIndex")
    if action is not None and integer(action, MALFORMED, "_label_Action") != index + 1:
        raise Defect(MALFORMED, f"_labelIndex {index} and _label_Action {action} name different actions")
    return index


def _pmf(a: Any, p: Any, n: int, chosen: int) -> list[float] | None:
    """The PMF in action order from ``a`` (1-based action indices, served first) and ``p``
    (their probabilities); None without ``p``."""
    if p is None:
        return None
    if a is None:
        raise Defect(BAD_PMF, "'p' without 'a': which action each probability belongs to is unknown")
    probabilities = numbers(p, BAD_PMF, "'p'")
    if not isinstance(a, list) or len(a) != len(probabilities):
        raise Defect(BAD_PMF, f"'a' and 'p' differ in length: {clip(repr(a), 40)}, {clip(repr(p), 40)}")
    if len(a) != n:
        raise Defect(BAD_PMF, f"'a' lists {len(a)} of the {n} actions")
    if not (set(map(type, a)) <= {int} and min(a) >= 1 and max(a) <= n and len(set(a)) == n):
        raise Defect(BAD_PMF, f"'a' is not an ordering of the actions 1..{n}: {clip(repr(a), 60)}")
    pmf = [0.0] * n
    for action, probability in zip(a, probabilities):
        pmf[action - 1] = probability
    if 0 <= chosen < n and a[0] != chosen + 1:   # (an out-of-range chosen is reported as such)
        raise Defect(BAD_PMF, f"'a' starts with action {a[0]}, not the served one ({chosen + 1})")
    return pmf
