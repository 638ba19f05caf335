"""CSV files: batches of records with their physical line numbers, converted by column."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bandit.loader.batches import ID_COLUMN, CanonicalId, _assemble, _Batch, _canonical_ids, _check_header, _Source
from bandit.loader.convert import _MAX_EXACT_INT, _clip, _guess, _number, _split_set
from bandit.loader.errors import LoadError, RowError
from bandit.store.identity import MAX_SUBSCRIBER_ID
from policies.schema import FeatureSchema
from policies.vwtext import FeatureError


def _open_csv(path: Path, schema: FeatureSchema, batch_size: int, canonical: CanonicalId | None = None) -> _Source:
    try:
        raw = open(path, "rb")   # noqa: SIM115 (the source closes it)
        total = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        # Lines as the csv module wants them (newline=""); a UTF-8 byte order mark (as
        # Excel writes) is dropped; bytes that are not UTF-8 pass as surrogates, and
        # the records holding them are refused by line (_non_utf8_lines).
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise LoadError(f"{path}: the file is empty: expected a header line naming the columns, "
                            f"with {ID_COLUMN!r} among them") from None
        except csv.Error as exc:
            raise LoadError(f"{path}:1: cannot read the header: {exc}") from None
        try:
            "".join(header).encode()
        except UnicodeEncodeError:
            raise LoadError(f"{path}:1: the header is not UTF-8 text (save the file as UTF-8)") from None
        names = _check_header([name.strip() for name in header], f"{path}:1", "column")
    except BaseException:
        raw.close()
        raise
    return _Source("line", total, _csv_batches(path, raw, reader, names, schema, batch_size, canonical), raw.close)


def _non_utf8_lines(path: Path) -> set[int]:
    """The numbers of the lines that are not UTF-8 text: none, usually, which one
    decoding pass at C speed shows; else a second pass finds them."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        try:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return set()
        except UnicodeDecodeError:
            pass
        f.seek(0)
        bad = set()
        lines = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
        for number, line in enumerate(lines, 1):
            if not line.isascii():
                try:
                    line.encode()
                except UnicodeEncodeError:
                    bad.add(number)
        lines.detach()
        return bad


def _csv_batches(path: Path, raw: Any, reader: Any, names: list[str], schema: FeatureSchema,
                 batch_size: int, canonical: CanonicalId | None = None) -> Iterator[_Batch]:
    bad_lines = _non_utf8_lines(path)
    width = len(names)
    id_index = names.index(ID_COLUMN)
    features = [(index, name, _declared(schema, name)) for index, name in enumerate(names) if index != id_index]
    feature_names = [name for _, name, _ in features]
    last = reader.line_num          # the last physical line read
    done = False
    while not done:
        # Read a batch of records at C speed. Which line each starts on is worked out
        # afterwards, and only when some record is bad.
        records: list[list[str]] = []
        runs: list[tuple[int, int]] = []    # (first record, its line) of each stretch read without error
        errors: list[RowError] = []
        while not done and len(records) < batch_size:
            first = len(records)
            runs.append((first, last + 1))
            try:
                records.extend(itertools.islice(reader, batch_size - first))   # keeps what it read on error
            except csv.Error as exc:    # the reader goes on with the next line
                errors.append(RowError(last + 1 + _lines_of(records[first:]), f"malformed CSV: {exc}"))
                last = reader.line_num
                runs.append((len(records), last + 1))
                continue
            done = len(records) < batch_size
            last = reader.line_num
        runs.append((len(records), last + 1))
        lines: list[int] | None = None
        if bad_lines or not _all_width(records, width):
            lines = _record_lines(records, runs)
            kept: list[int] = []
            for i, record in enumerate(records):
                if bad_lines and (utf8 := _bad_line_in(record, lines[i], bad_lines)):
                    errors.append(RowError(utf8, "not UTF-8 text"))
                elif len(record) == width:
                    kept.append(i)
                elif record:            # (a blank line is no record)
                    errors.append(RowError(lines[i], f"expected {width} cells, got {len(record)}"))
            records = [records[i] for i in kept]
            lines = [lines[i] for i in kept]
        bad: dict[int, str] = {}
        if records:
            cells = list(zip(*records))
            ids = cells[id_index]
            if "" in ids or any(map(str.isspace, ids)) or max(map(len, ids)) > MAX_SUBSCRIBER_ID:
                for i, subscriber_id in enumerate(ids):
                    if not subscriber_id or subscriber_id.isspace():
                        bad[i] = f"empty {ID_COLUMN}"
                    elif len(subscriber_id) > MAX_SUBSCRIBER_ID:
                        bad[i] = f"{ID_COLUMN} longer than {MAX_SUBSCRIBER_ID} characters"
            ids = _canonical_ids(ids, bad, canonical)
            columns = [_csv_column(name, declared, cells[index], bad) for index, name, declared in features]
            kept_ids, profiles = _assemble(feature_names, ids, columns, bad)
        else:
            kept_ids, profiles = [], []
        if bad:
            if lines is None:
                lines = _record_lines(records, runs)
            errors.extend(RowError(lines[i], reason) for i, reason in bad.items())
        if errors:
            errors.sort(key=operator.attrgetter("line"))
        yield _Batch(kept_ids, profiles, errors, raw.tell())


def _all_width(records: list[list[str]], width: int) -> bool:
    return not records or set(map(len, records)) == {width}


def _breaks(record: list[str]) -> int:
    """Line breaks inside a record's quoted fields (as newline="" reading splits lines)."""
    joined = "".join(record)
    return joined.count("\n") + joined.count("\r") - joined.count("\r\n")


def _lines_of(records: list[list[str]]) -> int:
    """Physical lines these records took up."""
    return len(records) + sum(map(_breaks, records))


def _record_lines(records: list[list[str]], runs: list[tuple[int, int]]) -> list[int]:
    """The line each record starts on. ``runs`` gives the first line of stretches of
    records read without error (the last entry: the line after the batch)."""
    lines: list[int] = []
    for (start, line), (end, next_line) in itertools.pairwise(runs):
        if next_line - line == end - start:     # one line each: the usual case
            lines.extend(range(line, next_line))
            continue
        for record in records[start:end]:
            lines.append(line)
            line += 1 + _breaks(record)
    return lines


def _bad_line_in(record: list[str], line: int, bad_lines: set[int]) -> int:
    """The first line of the record that is not UTF-8, or 0."""
    for number in range(line, line + 1 + _breaks(record)):
        if number in bad_lines:
            return number
    return 0


def _declared(schema: FeatureSchema, name: str) -> str | None:
    spec = schema.subscriber.get(name)
    return spec.type if spec is not None else None


def _csv_column(name: str, declared: str | None, cells: tuple[str, ...], bad: dict[int, str]) -> Any:
    """One column of a batch of CSV records as profile values (None: left out); a row
    whose cell cannot be converted goes into ``bad`` (its first reason)."""
    if declared in ("categorical", "text"):
        return [cell or None for cell in cells] if "" in cells else cells
    if declared == "set":
        joined = ";".join(filter(None, cells))
        if not joined or (joined[0] != ";" != joined[-1] and ";;" not in joined and len(joined.split()) == 1):
            # no empty items, no spaces: split as it is
            return [cell.split(";") if cell else None for cell in cells]
        return [_split_set(cell) if cell else None for cell in cells]
    numbers = _numbers(cells)
    if numbers is not None:
        return numbers
    if declared is None:
        return list(map(_guess, cells))
    out: list[Any] = []
    append = out.append
    for i, cell in enumerate(cells):
        if not cell:
            append(None)
            continue
        try:
            append(_number(cell))
        except ValueError:
            bad.setdefault(i, str(FeatureError(name, f"expected a number, got {_clip(cell)!r}")))
            append(None)
    return out


def _numbers(cells: tuple[str, ...]) -> list[Any] | None:
    """The column as numbers (None for empty cells) when every other cell is a plain
    finite number, converted at C speed; None when some cell needs a closer look."""
    if "" in cells:
        present = list(filter(None, cells))
        if not present:
            return [None] * len(cells)
        values = _numbers(tuple(present))
        if values is None:
            return None
        it = iter(values)
        return [next(it) if cell else None for cell in cells]
    text = "".join(cells)
    if "_" in text or not text.isascii():
        return None
    try:
        ints = list(map(int, cells))
    except ValueError:
        pass
    else:
        if -_MAX_EXACT_INT <= min(ints) and max(ints) <= _MAX_EXACT_INT:
            return ints
        return None
    try:
        floats = list(map(float, cells))
    except ValueError:
        return None
    if not math.isfinite(sum(floats)):   # a NaN or an infinity (or a sum too large: look closer)
        return None
    limit = _MAX_EXACT_INT
    return [int(v) if v.is_integer() and -limit <= v <= limit else v for v in floats]
