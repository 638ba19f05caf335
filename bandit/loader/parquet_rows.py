"""Parquet files (pyarrow): record batches converted by column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bandit.loader.batches import ID_COLUMN, CanonicalId, _assemble, _Batch, _canonical_ids, _check_header, _Source
from bandit.loader.convert import _MAX_EXACT_INT, _native, _numeric, _set, _text
from bandit.loader.errors import LoadError, RowError
from bandit.store.identity import MAX_SUBSCRIBER_ID
from policies.schema import FeatureSchema
from policies.vwtext import FeatureError


def _open_parquet(path: Path, schema: FeatureSchema, batch_size: int, canonical: CanonicalId | None = None) -> _Source:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise LoadError(f"{path}: reading Parquet needs the 'pyarrow' package (pip install pyarrow)") from None
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"{path}: cannot read as Parquet: {exc}") from None
    arrow_schema = parquet.schema_arrow
    names = _check_header([str(name) for name in arrow_schema.names], str(path), "column")
    for arrow_field in arrow_schema:
        _check_parquet_type(path, arrow_field.name, arrow_field.type, arrow_field.name == ID_COLUMN)
    batches = _parquet_batches(parquet, names, schema, batch_size, canonical)
    return _Source("row", parquet.metadata.num_rows, batches, parquet.close)


def _check_parquet_type(path: Path, name: str, type_: Any, is_id: bool) -> None:
    import pyarrow as pa

    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if is_id:
        if not (pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_integer(type_)
                or pa.types.is_null(type_) or getattr(pa.types, "is_string_view", lambda t: False)(type_)):
            raise LoadError(f"{path}: column {ID_COLUMN!r} has type {type_}: expected strings or integers")
        return
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        if pa.types.is_nested(type_.value_type):
            raise LoadError(f"{path}: column {name!r} has type {type_}: list items must be strings or numbers")
        return
    if pa.types.is_nested(type_):
        raise LoadError(f"{path}: column {name!r} has type {type_}, which a profile cannot hold "
                        f"(expected strings, numbers, booleans, dates or lists of them)")


def _parquet_batches(parquet: Any, names: list[str], schema: FeatureSchema, batch_size: int,
                     canonical: CanonicalId | None = None) -> Iterator[_Batch]:
    id_index = names.index(ID_COLUMN)
    features = [(index, name, schema.subscriber.get(name)) for index, name in enumerate(names) if index != id_index]
    feature_names = [name for _, name, _ in features]
    start = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        bad: dict[int, str] = {}
        ids = _canonical_ids(_parquet_ids(batch.column(id_index), bad), bad, canonical)
        columns = [_parquet_column(name, spec, batch.column(index), bad) for index, name, spec in features]
        kept_ids, profiles = _assemble(feature_names, ids, columns, bad)
        errors = [RowError(start + i, reason) for i, reason in sorted(bad.items())]
        start += batch.num_rows
        yield _Batch(kept_ids, profiles, errors, start)


def _parquet_ids(array: Any, bad: dict[int, str]) -> list[str | None]:
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    values = array.to_pylist()
    if pa.types.is_integer(array.type):
        values = [None if v is None else str(v) for v in values]
    for i, value in enumerate(values):
        if value is None or not value or value.isspace():
            bad[i] = f"{'missing' if value is None else 'empty'} {ID_COLUMN}"
            values[i] = None
        elif len(value) > MAX_SUBSCRIBER_ID:
            bad[i] = f"{ID_COLUMN} longer than {MAX_SUBSCRIBER_ID} characters"
            values[i] = None
    return values


def _parquet_column(name: str, spec: Any, array: Any, bad: dict[int, str]) -> list[Any]:
    """A column of one batch as profile values (None: left out); a row whose value
    cannot be converted goes into ``bad`` (the first reason per row)."""
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    type_ = array.type
    if pa.types.is_decimal(type_) or pa.types.is_float16(type_):
        array = array.cast(pa.float64())
        type_ = array.type
    if pa.types.is_floating(type_) and array.null_count < len(array):
        import pyarrow.compute as pc

        array = pc.if_else(pc.is_nan(array), pa.scalar(None, type_), array)   # NaN: missing
    values = array.to_pylist()
    declared = spec.type if spec is not None else None
    # Fast paths for the common column types; everything else goes value by value.
    if pa.types.is_integer(type_) and declared in (None, "numeric"):
        if declared is None or not _has_large(array):
            return values
    elif pa.types.is_floating(type_) and declared in (None, "numeric") and not _has_infinity(array):
        if declared is None:
            return values
        limit = _MAX_EXACT_INT
        return [int(v) if v is not None and v.is_integer() and -limit <= v <= limit else v for v in values]
    elif (pa.types.is_string(type_) or pa.types.is_large_string(type_)) and declared in (None, "categorical",
                                                                                           "text"):
        return [v or None for v in values]
    elif pa.types.is_boolean(type_) and declared is None:
        return values
    elif _is_list_of_strings(type_) and declared in (None, "set"):
        return [(list(filter(None, v)) or None) if v else None for v in values]
    elif pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        values = _decode_binary(name, values, bad)
    convert = {None: _native, "numeric": _numeric, "categorical": _text, "text": _text, "set": _set}[declared]
    out: list[Any] = []
    append = out.append
    for i, value in enumerate(values):
        if value is None:
            append(None)
            continue
        try:
            append(convert(name, value))
        except FeatureError as exc:
            bad.setdefault(i, str(exc))
            append(None)
    return out


def _decode_binary(name: str, values: list[Any], bad: dict[int, str]) -> list[Any]:
    out: list[Any] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(value.decode())
        except UnicodeDecodeError:
            bad.setdefault(i, str(FeatureError(name, "binary value that is not UTF-8 text")))
            out.append(None)
    return out


def _is_list_of_strings(type_: Any) -> bool:
    import pyarrow as pa

    return ((pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_))
            and (pa.types.is_string(type_.value_type) or pa.types.is_large_string(type_.value_type)))


def _has_large(array: Any) -> bool:
    import pyarrow.compute as pc

    bounds = pc.min_max(array)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low is not None and (low < -_MAX_EXACT_INT or high > _MAX_EXACT_INT)


def _has_infinity(array: Any) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.is_inf(array)).as_py())
