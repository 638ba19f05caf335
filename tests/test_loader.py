"""The bulk profile loader (bandit.loader, `nextbest features load`) against real Redis:
the embedded server and, when REDIS_URL is set, that one too."""

from __future__ import annotations

import csv
import io
import math
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
import redis.asyncio as aioredis
from click.testing import CliRunner

from bandit.cli import main
from bandit.store.embedded import EmbeddedRedis
from bandit.store.identity import SubscriberHasher
from bandit.store.keys import Keys
from bandit.loader import LoadError, LoadReport, RowError, load_profiles
from policies.schema import FeatureSchema, parse_schema
from tests.harness import short_tempdir

SECRET = b"loader-test-secret"
HASHER = SubscriberHasher(SECRET)

SCHEMA = parse_schema({"subscriber": {
    "tariff": "categorical",
    "code": "categorical",
    "arpu": {"type": "numeric", "transform": "log"},
    "tenure_months": "numeric",
    "services": "set",
    "note": "text",
}})


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def workdir() -> Iterator[Path]:
    directory = short_tempdir("nbld")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


async def profile(client: aioredis.Redis, keys: Keys, subscriber_id: str, hasher: SubscriberHasher = HASHER) -> Any:
    raw = await client.get(keys.profile(hasher(subscriber_id)))
    return orjson.loads(raw) if raw is not None else None


async def stored_keys(client: aioredis.Redis, keys: Keys) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{keys.prefix}:*", count=5000)]


async def load(path: Path, client: aioredis.Redis, keys: Keys, schema: FeatureSchema = SCHEMA,
               **options: Any) -> LoadReport:
    return await load_profiles(path, client, keys, HASHER, schema, **options)


# --------------------------------------------------------------------------- typing

async def test_csv_values_typed_by_the_schema(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    path = write(workdir / "p.csv",
                 "subscriber_id,tariff,code,arpu,tenure_months,services,note,extra_num,extra_text\n"
                 "79160000001,smart,007,12.50,14,sms_pack;mail,hello world,42,abc\n"
                 "79160000002,basic,12,3.0,1e2, a ; b;;c ;,,-1.5,007x\n"
                 "79160000003,,,,,,,,\n"
                 "79160000004,x,y, 7 ,0,;,  ,nan,inf\n"
                 "79160000005,x,y,1_000,,z,,1_000,+5\n")
    report = await load(path, client, keys)
    assert report.errors == [RowError(6, "feature 'arpu': expected a number, got '1_000'")]
    assert (report.loaded, report.skipped, report.unit) == (4, 1, "line")
    assert await profile(client, keys, "79160000001") == {
        "tariff": "smart", "code": "007", "arpu": 12.5, "tenure_months": 14, "services": ["sms_pack", "mail"],
        "note": "hello world", "extra_num": 42, "extra_text": "abc"}
    second = await profile(client, keys, "79160000002")
    assert second == {"tariff": "basic", "code": "12", "arpu": 3, "tenure_months": 100, "services": ["a", "b", "c"],
                      "extra_num": -1.5, "extra_text": "007x"}
    assert type(second["arpu"]) is int and type(second["tenure_months"]) is int
    assert await profile(client, keys, "79160000003") == {}   # every empty cell is left out
    # an empty set is left out; text keeps its spaces; NaN and infinities are no numbers
    assert await profile(client, keys, "79160000004") == {
        "tariff": "x", "code": "y", "arpu": 7, "tenure_months": 0, "note": "  ", "extra_num": "nan", "extra_text": "inf"}
    assert await profile(client, keys, "79160000005") is None
    # the raw subscriber id is nowhere in Redis: keys hold its keyed hash
    stored = await stored_keys(client, keys)
    assert len(stored) == 4 and not any(b"7916000000" in key for key in stored)
    assert all(b"7916000000" not in value for value in await client.mget(stored))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
async def test_phone_ids_are_loaded_in_e164_and_a_bad_one_skips_its_row(workdir: Path, client: aioredis.Redis,
                                                                          keys: Keys, kind: str) -> None:
    """With ``subscriber_ids: phone`` the loader keys profiles as decide reads them: the
    number in E.164 whatever its spelling; a row whose id is no number is skipped, with why."""
    from bandit.store.identity import phone_e164

    ids = ["8 916 000-00-01", "79160000002", "+7 (916) 000 00 03", "abc"]
    if kind == "csv":
        path = write(workdir / "p.csv", "subscriber_id,tariff\n" + "".join(f"{i},smart\n" for i in ids))
    else:
        path = workdir / "p.parquet"
        pq.write_table(pa.table({"subscriber_id": ids, "tariff": ["smart"] * 4}), path)
    report = await load(path, client, keys, canonical=lambda raw: phone_e164(raw, "RU"))
    assert (report.loaded, report.skipped) == (3, 1)
    [error] = report.errors
    assert error.line == (5 if kind == "csv" else 3) and error.reason.startswith("subscriber_id: \u201cabc\u201d is not a phone number")
    for n in (1, 2, 3):
        assert await profile(client, keys, f"+7916000000{n}") == {"tariff": "smart"}


async def test_csv_without_a_schema_guesses_numbers(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    path = write(workdir / "p.csv",
                 "tariff,subscriber_id,arpu,tenure,services,code,big,mixed\n"
                 "smart,1,12.5,14,sms;mail,007,123456789012345678901,12\n"
                 "basic,2,1e3,0,,+7,1.5e400,abc\n")
    report = await load(path, client, keys, FeatureSchema.default())
    assert (report.loaded, report.skipped) == (2, 0)
    assert await profile(client, keys, "1") == {"tariff": "smart", "arpu": 12.5, "tenure": 14, "services": "sms;mail",
                                                "code": 7, "big": 1.2345678901234568e20, "mixed": 12}
    assert await profile(client, keys, "2") == {"tariff": "basic", "arpu": 1000, "tenure": 0, "code": 7,
                                                "big": "1.5e400", "mixed": "abc"}


async def test_csv_byte_order_mark_and_crlf(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    path = write(workdir / "p.csv", b"\xef\xbb\xbfsubscriber_id ,tariff\r\n1,smart\r\n2,\"two\r\nlines\"\r\n3,x\r\n")
    report = await load(path, client, keys)
    assert (report.loaded, report.skipped) == (3, 0)
    assert await profile(client, keys, "2") == {"tariff": "two\r\nlines"}
    assert await profile(client, keys, "3") == {"tariff": "x"}


async def test_existing_profiles_are_replaced_whole(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    await client.set(keys.profile(HASHER("1")), orjson.dumps({"tariff": "old", "balance": 5}))
    await client.set(keys.profile(HASHER("2")), orjson.dumps({"tariff": "untouched"}))
    report = await load(write(workdir / "p.csv", "subscriber_id,tariff\n1,new\n"), client, keys)
    assert report.loaded == 1
    assert await profile(client, keys, "1") == {"tariff": "new"}
    assert await profile(client, keys, "2") == {"tariff": "untouched"}


# --------------------------------------------------------------------------- bad rows

BAD_CSV = (
    b"subscriber_id,tariff,arpu\n"              # 1
    b"1,smart,10\n"                             # 2
    b"2,\"multi\nline\",20\n"                   # 3-4
    b",basic,30\n"                              # 5  empty id
    b"4,basic,abc\n"                            # 6  not a number
    b"5,basic\n"                                # 7  too few cells
    b"6,\xff\xfe,40\n"                          # 8  not UTF-8
    b"\n"                                       # 9  blank: no record
    b"   ,basic,1\n"                            # 10 blank id
    b"10,\"a\"b,1\n"                            # 11 malformed quoting
    b"11,\"x\ny\",1,extra\n"                    # 12-13 too many cells, over two lines
    b"12,\"\n\n\",50\n"                         # 14-16
    b"13,ok,60\n"                               # 17
)
BAD_CSV_ERRORS = [
    RowError(5, "empty subscriber_id"),
    RowError(6, "feature 'arpu': expected a number, got 'abc'"),
    RowError(7, "expected 3 cells, got 2"),
    RowError(8, "not UTF-8 text"),
    RowError(10, "empty subscriber_id"),
    RowError(11, "malformed CSV: ',' expected after '\"'"),
    RowError(12, "expected 3 cells, got 4"),
]


@pytest.mark.parametrize("batch_size", [2000, 1, 3])
async def test_bad_csv_rows_are_skipped_and_reported_by_physical_line(
        workdir: Path, client: aioredis.Redis, keys: Keys, batch_size: int) -> None:
    report = await load(write(workdir / "bad.csv", BAD_CSV), client, keys, batch_size=batch_size)
    assert report.errors == BAD_CSV_ERRORS
    assert (report.loaded, report.skipped) == (4, len(BAD_CSV_ERRORS))
    assert await profile(client, keys, "2") == {"tariff": "multi\nline", "arpu": 20}
    assert await profile(client, keys, "12") == {"tariff": "\n\n", "arpu": 50}
    assert await profile(client, keys, "13") == {"tariff": "ok", "arpu": 60}
    assert len(await stored_keys(client, keys)) == 4


async def test_strict_refuses_the_whole_file_and_writes_nothing(
        workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    with pytest.raises(LoadError) as caught:
        await load(write(workdir / "bad.csv", BAD_CSV), client, keys, strict=True, batch_size=3)
    assert "7 bad rows; nothing was written" in str(caught.value)
    assert caught.value.errors == BAD_CSV_ERRORS and caught.value.skipped == 7
    assert await stored_keys(client, keys) == []
    # the bad row is the file's very last one
    late = write(workdir / "late.csv", "subscriber_id,arpu\n" + "".join(f"{i},{i}\n" for i in range(5000)) + "x,y\n")
    with pytest.raises(LoadError):
        await load(late, client, keys, strict=True)
    assert await stored_keys(client, keys) == []
    report = await load(write(workdir / "good.csv", "subscriber_id,arpu\n1,2\n"), client, keys, strict=True)
    assert (report.loaded, report.skipped) == (1, 0)


async def test_an_unusable_file_fails_at_once(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    cases = {
        "missing.csv": (None, "no such file"),
        "empty.csv": ("", "the file is empty"),
        "noid.csv": ("id,tariff\n1,x\n", "no 'subscriber_id' column"),
        "dup.csv": ("subscriber_id,tariff,tariff\n1,x,y\n", "duplicate column name 'tariff' (columns 2 and 3)"),
        "unnamed.csv": ("subscriber_id,,tariff\n1,x,y\n", "column 2 has no name"),
        "header.csv": (b"subscriber_id,t\xffriff\n1,x\n", ":1: the header is not UTF-8 text"),
    }
    for name, (content, message) in cases.items():
        path = workdir / name
        if content is not None:
            write(path, content)
        with pytest.raises(LoadError, match="^" + str(path)) as caught:
            await load(path, client, keys)
        assert message in str(caught.value), name
    with pytest.raises(LoadError, match="is a directory"):
        await load(workdir, client, keys)
    assert await stored_keys(client, keys) == []


# --------------------------------------------------------------------------- Parquet

async def test_parquet_types_sets_and_bad_rows(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    table = pa.table({
        "subscriber_id": ["1", "2", None, "4", "", "6", "7"],
        "tariff": pa.array(["smart", "basic", "x", "y", "z", None, "w"]).dictionary_encode(),
        "code": [7, 8, 9, 10, 11, 12, 13],                      # categorical from ints
        "arpu": [12.5, 3.0, 1.0, float("nan"), 2.0, None, 1.0],  # NaN: missing
        "tenure_months": ["14", "2.50", "1", "x", "1", "1", "1"],   # numeric from strings
        "services": [["sms", "mail"], [], ["a"], None, ["b", None, ""], ["c"], ["d"]],
        "extra_int": pa.array([1, 2, 3, 4, 5, None, 7], pa.int64()),
        "extra_float": [0.5, 2.0, 1.0, 1.0, 1.0, 1.0, float("inf")],
        "extra_bool": [True, False, None, True, True, True, True],
        "extra_list": [[1, 2], None, [], [3], [4], [5], [6]],
    })
    path = workdir / "p.parquet"
    pq.write_table(table, path, row_group_size=3)
    report = await load(path, client, keys, batch_size=2)
    assert report.unit == "row"
    assert report.errors == [
        RowError(2, "missing subscriber_id"),
        RowError(3, "feature 'tenure_months': expected a number, got 'x'"),
        RowError(4, "empty subscriber_id"),
        RowError(6, "feature 'extra_float': numeric values must be finite"),
    ]
    assert (report.loaded, report.skipped) == (3, 4)
    assert await profile(client, keys, "1") == {
        "tariff": "smart", "code": "7", "arpu": 12.5, "tenure_months": 14, "services": ["sms", "mail"],
        "extra_int": 1, "extra_float": 0.5, "extra_bool": True, "extra_list": ["1", "2"]}
    assert await profile(client, keys, "2") == {
        "tariff": "basic", "code": "8", "arpu": 3, "tenure_months": 2.5, "extra_int": 2, "extra_float": 2.0,
        "extra_bool": False}
    assert await profile(client, keys, "6") == {
        "code": "12", "tenure_months": 1, "services": ["c"], "extra_float": 1.0, "extra_bool": True,
        "extra_list": ["5"]}
    assert len(await stored_keys(client, keys)) == 3


async def test_parquet_integer_ids_strict_and_header(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    path = workdir / "ids.parquet"
    pq.write_table(pa.table({"subscriber_id": [79160000001, 79160000002], "arpu": [1, 2]}), path)
    report = await load(path, client, keys)
    assert (report.loaded, report.skipped) == (2, 0)
    assert await profile(client, keys, "79160000002") == {"arpu": 2}

    bad = workdir / "bad.parquet"
    pq.write_table(pa.table({"subscriber_id": ["a", "b"], "arpu": ["1", "oops"]}), bad)
    with pytest.raises(LoadError, match="1 bad row; nothing was written") as caught:
        await load(bad, client, keys, strict=True)
    assert caught.value.errors == [RowError(1, "feature 'arpu': expected a number, got 'oops'")]
    assert caught.value.unit == "row"
    assert await profile(client, keys, "a") is None

    noid = workdir / "noid.parquet"
    pq.write_table(pa.table({"id": ["a"]}), noid)
    with pytest.raises(LoadError, match="no 'subscriber_id' column"):
        await load(noid, client, keys)
    nested = workdir / "nested.parquet"
    pq.write_table(pa.table({"subscriber_id": ["a"], "s": [{"x": 1}]}), nested)
    with pytest.raises(LoadError, match="column 's' has type struct"):
        await load(nested, client, keys)
    assert len(await stored_keys(client, keys)) == 2


async def test_a_parquet_file_that_breaks_off_says_how_far_the_load_got(
        workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    path = workdir / "broken.parquet"
    pq.write_table(pa.table({"subscriber_id": [str(i) for i in range(3000)], "x": list(range(3000))}), path,
                   row_group_size=1000)
    offset = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset + 5:offset + 200] = b"\xff" * 195   # the second row group's first page header
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match=r"broken.parquet: cannot read on: .*; 1,000 profiles were loaded before"):
        await load(path, client, keys, batch_size=500)
    assert len(await stored_keys(client, keys)) == 1000
    with pytest.raises(LoadError, match="cannot read as Parquet"):
        await load(write(workdir / "cut.parquet", data[:len(data) // 2]), client, keys)


# --------------------------------------------------------------------------- Unicode

UNICODE_VALUES = [
    ("+7 (916) 000-00-01", {"tariff": "Безлимит | Плюс", "note": "звонки: дорого, связь|плохая", "region": "Москва"}),
    ("абонент:42|x", {"tariff": "a:b c", "note": "  пробелы  ", "region": "Ёлкино"}),
    ("id with spaces", {"tariff": "日本語", "note": "emoji 📞 ok", "region": "São Paulo"}),
]


async def test_unicode_survives_the_round_trip(workdir: Path, client: aioredis.Redis, keys: Keys) -> None:
    schema = parse_schema({"subscriber": {"tariff": "categorical", "note": "text", "services": "set"}})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["subscriber_id", "tariff", "note", "region", "services"])
    for subscriber_id, values in UNICODE_VALUES:
        writer.writerow([subscriber_id, values["tariff"], values["note"], values["region"], "СМС-пакет; роуминг|EU"])
    csv_path = write(workdir / "u.csv", buffer.getvalue())
    parquet_path = workdir / "u.parquet"
    pq.write_table(pa.table({
        "subscriber_id": [s for s, _ in UNICODE_VALUES],
        **{name: [v[name] for _, v in UNICODE_VALUES] for name in ("tariff", "note", "region")},
        "services": [["СМС-пакет", "роуминг|EU"]] * len(UNICODE_VALUES)}), parquet_path)
    for path in (csv_path, parquet_path):
        report = await load(path, client, keys, schema)
        assert (report.loaded, report.skipped) == (3, 0)
        for subscriber_id, values in UNICODE_VALUES:
            assert await profile(client, keys, subscriber_id) == {**values, "services": ["СМС-пакет", "роуминг|EU"]}
        await client.delete(*await stored_keys(client, keys))


# --------------------------------------------------------------------------- volume

def synthetic(rows: int, seed: int) -> tuple[list[list[str]], dict[str, dict[str, Any]]]:
    """CSV records and the profile each must become under SCHEMA."""
    rng = random.Random(seed)
    records, expected = [], {}
    for i in range(rows):
        subscriber_id = f"7916{i:07d}"
        arpu = round(rng.uniform(0, 2000), rng.choice([0, 1, 2]))
        tenure = rng.randrange(0, 240)
        services = rng.sample(["sms", "mail", "tv", "музыка", "roaming"], rng.randrange(0, 4))
        extra = rng.choice(["", "x", "y z", str(rng.randrange(100))])
        records.append([subscriber_id, rng.choice(["smart", "basic", "Безлимит"]), repr(arpu), str(tenure),
                        ";".join(services), extra])
        profile_: dict[str, Any] = {"tariff": records[-1][1], "arpu": int(arpu) if arpu.is_integer() else arpu,
                                    "tenure_months": tenure}
        if services:
            profile_["services"] = services
        if extra:
            profile_["extra"] = int(extra) if extra.isdigit() else extra
        expected[subscriber_id] = profile_
    return records, expected


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_100k_rows_load_and_read_back_exactly(workdir: Path, client: aioredis.Redis, keys: Keys,
                                                    fmt: str) -> None:
    records, expected = synthetic(100_000, seed=11)
    header = ["subscriber_id", "tariff", "arpu", "tenure_months", "services", "extra"]
    if fmt == "csv":
        path = workdir / "big.csv"
        buffer = io.StringIO(newline="")
        csv.writer(buffer).writerows([header, *records])
        write(path, buffer.getvalue())
    else:
        path = workdir / "big.parquet"
        columns = list(zip(*records))
        pq.write_table(pa.table({
            "subscriber_id": columns[0], "tariff": columns[1], "arpu": [float(a) for a in columns[2]],
            "tenure_months": [int(t) for t in columns[3]],
            "services": [s.split(";") if s else None for s in columns[4]],
            "extra": [e or None for e in columns[5]]}), path)   # Parquet strings stay strings
        for record in records:
            if record[5].isdigit():
                expected[record[0]]["extra"] = record[5]
    report = await load(path, client, keys)
    assert (report.loaded, report.skipped, report.errors) == (100_000, 0, [])
    assert report.seconds > 0 and report.rate > 0
    stored = await stored_keys(client, keys)
    assert len(stored) == 100_000
    assert set(stored) == {keys.profile(HASHER(s)).encode() for s in expected}
    sample = random.Random(5).sample(sorted(expected), 3000)
    values = await client.mget([keys.profile(HASHER(s)) for s in sample])
    for subscriber_id, raw in zip(sample, values):
        got = orjson.loads(raw)
        assert got == expected[subscriber_id], subscriber_id
        assert all(type(got[name]) is type(expected[subscriber_id][name]) for name in got)


async def test_progress_bar_goes_to_stderr(workdir: Path, client: aioredis.Redis, keys: Keys,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write(workdir / "p.csv", "subscriber_id,arpu\n" + "".join(f"{i},{i}\n" for i in range(3000)))
    report = await load(path, client, keys, progress=True, batch_size=500)
    assert report.loaded == 3000
    out, err = capsys.readouterr()
    assert out == "" and "rows/s" in err and "3,000" in err


# --------------------------------------------------------------------------- the CLI

def stored_profile(url: str, prefix: str, secret: bytes, subscriber_id: str) -> Any:
    client = redis.Redis.from_url(url)
    try:
        raw = client.get(Keys(prefix).profile(SubscriberHasher(secret)(subscriber_id)))
        return orjson.loads(raw) if raw is not None else None
    finally:
        client.close()


def test_cli_loads_into_the_embedded_redis_and_stops_it(workdir: Path) -> None:
    data_dir = short_tempdir("nbcli")
    try:
        path = write(workdir / "p.csv", "subscriber_id,tariff,balance\n1,smart,12.5\n2,Базовый,x\n,a,1\n3,a,7\n")
        result = CliRunner().invoke(main, ["features", "load", str(path), "--data-dir", str(data_dir)],
                                    env={"NEXTBEST_KEY_PREFIX": None, "NEXTBEST_SUBSCRIBER_SECRET": None})
        assert result.exit_code == 3, result.output   # loaded, but not every row
        assert "loaded 3 profiles, skipped 1 row in " in result.stdout
        assert "INCOMPLETE: 1 bad row skipped, not loaded (exit code 3" in result.stderr
        assert "rows/s" in result.stdout
        assert "  line 4: empty subscriber_id" in result.stdout
        assert not (data_dir / "redis.sock").exists()   # the CLI started the server, and stopped it
        server = EmbeddedRedis(data_dir).start()
        holder = redis.Redis.from_url(server.url)   # another client (a service, say) on the server
        try:
            secret = holder.get("nb:secret")   # the secret generated for the service
            assert secret
            assert stored_profile(server.url, "nb", secret, "2") == {"tariff": "Базовый", "balance": "x"}
            assert stored_profile(server.url, "nb", secret, "1") == {"tariff": "smart", "balance": 12.5}

            # --strict: refused, exit 1, nothing written
            bad = write(workdir / "bad.csv", "subscriber_id,balance\n9,1\n10,oops\n")
            schema = write(workdir / "schema.yaml", "features:\n  subscriber:\n    balance: {type: numeric}\n")
            result = CliRunner().invoke(main, ["features", "load", str(bad), "--data-dir", str(data_dir), "--strict",
                                               "--schema", str(schema)])
            assert result.exit_code == 1
            assert "line 3: feature 'balance': expected a number, got 'oops'" in result.stderr
            assert "1 bad row; nothing was written (--strict)" in result.stderr
            assert stored_profile(server.url, "nb", secret, "9") is None
            # the server was in use by another client: the CLI left it running
            assert holder.ping()
        finally:
            holder.close()
            server.stop(force=True)
    finally:
        EmbeddedRedis(data_dir).start().stop(force=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_cli_refuses_a_missing_file_without_starting_redis(workdir: Path) -> None:
    data_dir = workdir / "data"
    result = CliRunner().invoke(main, ["features", "load", str(workdir / "nope.csv"), "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "nope.csv: no such file" in result.stderr
    assert not (data_dir / "redis.sock").exists()
    noid = write(workdir / "noid.csv", "id,x\n1,2\n")
    result = CliRunner().invoke(main, ["features", "load", str(noid), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "no 'subscriber_id' column" in result.stderr
    bad_schema = write(workdir / "s.yaml", "features:\n  subscriber:\n    x: {type: nope}\n")
    result = CliRunner().invoke(main, ["features", "load", str(noid), "--data-dir", str(data_dir),
                                       "--schema", str(bad_schema)])
    assert result.exit_code == 1 and f"{bad_schema}:3: features.subscriber.x.type: unknown type 'nope'" in result.stderr
    assert not (data_dir / "redis.sock").exists()


def test_cli_with_redis_url_config_schema_and_parquet(workdir: Path, redis_url: str, key_prefix: str) -> None:
    config = write(workdir / "nextbest.yaml", "features:\n  subscriber:\n    code: {type: categorical}\n")
    path = workdir / "p.parquet"
    pq.write_table(pa.table({"subscriber_id": ["a", "b", None], "code": [7, 8, 9], "n": [1.5, math.nan, 2.0]}), path)
    env = {"NEXTBEST_KEY_PREFIX": key_prefix, "NEXTBEST_SUBSCRIBER_SECRET": "s3cret"}
    result = CliRunner().invoke(main, ["features", "load", str(path), "--redis-url", redis_url, "--config",
                                       str(config), "--batch-size", "1"], env=env)
    assert result.exit_code == 3, result.output   # a row was skipped
    assert "loaded 2 profiles, skipped 1 row in " in result.stdout
    assert "  row 2: missing subscriber_id" in result.stdout
    assert stored_profile(redis_url, key_prefix, b"s3cret", "a") == {"code": "7", "n": 1.5}
    assert stored_profile(redis_url, key_prefix, b"s3cret", "b") == {"code": "8"}


async def test_a_subscriber_id_past_the_limit_is_a_bad_row_in_csv_and_parquet(workdir: Path, client: aioredis.Redis,
                                                                                keys: Keys) -> None:
    long_id = "7" * 257
    report = await load(write(workdir / "p.csv", f"subscriber_id,tariff\n1,smart\n{long_id},super\n"), client, keys)
    assert report.loaded == 1 and report.errors == [RowError(3, "subscriber_id longer than 256 characters")]
    path = workdir / "p.parquet"
    pq.write_table(pa.table({"subscriber_id": ["2", long_id], "tariff": ["a", "b"]}), path)
    report = await load(path, client, keys)
    assert report.loaded == 1 and [e.reason for e in report.errors] == ["subscriber_id longer than 256 characters"]
    assert await profile(client, keys, long_id) is None
