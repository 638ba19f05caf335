"""Bulk profile loading speed: generate a synthetic telecom profile file (CSV and
Parquet, seeded, 12 feature columns) of N subscribers, load it into a fresh embedded
Redis with ``bandit.loader.load_profiles`` (what ``nextbest features load`` runs), and
print rows/s and the Redis memory per profile.

    .venv/bin/python bench/load_profiles.py [--rows 1000000] [--formats csv,parquet]
        [--batch-size 2000] [--no-schema] [--cli] [--keep] [--json]

The files go to a temporary directory and the embedded Redis to a short data dir
under /tmp (the unix socket path is limited to ~107 bytes); both are removed at the
end unless --keep. With --cli each load runs ``nextbest features load`` in a
subprocess (process start-up and the progress bar included).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The subscriber section of the telecom schema in docs/features.md.
SCHEMA_YAML = """\
features:
  subscriber:
    tariff: {type: categorical}
    region: {type: categorical}
    tenure_months: {type: numeric, transform: bucket, buckets: [3, 12, 36, 84]}
    arpu: {type: numeric, transform: log}
    balance: {type: numeric, transform: bucket, buckets: [0, 50, 200, 1000]}
    services: {type: set}
    recent_reasons: {type: set}
    long_distance_minutes: {type: numeric, transform: log, namespace: Usage}
    roaming_days: {type: numeric, transform: log, namespace: Usage}
    data_gb: {type: numeric, transform: log, namespace: Usage}
    sms_count: {type: numeric, transform: log, namespace: Usage}
    topups_30d: {type: numeric, transform: bucket, buckets: [1, 2, 4, 8], namespace: Usage}
"""

TARIFFS = ["smart", "smart_plus", "basic", "unlimited", "family", "business", "senior", "youth"]
REGIONS = ["Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Нижний Новгород",
           "Самара", "Омск", "Ростов-на-Дону", "Уфа", "Красноярск", "Пермь"]
SERVICES = ["sms_pack", "mail", "roaming", "music", "tv", "cloud", "antispam", "family_geo"]
REASONS = ["tariff_question", "balance", "roaming", "internet_slow", "billing_dispute", "porting", "add_service"]
COLUMNS = ["subscriber_id", "tariff", "region", "tenure_months", "arpu", "balance", "services",
           "long_distance_minutes", "roaming_days", "data_gb", "sms_count", "topups_30d", "recent_reasons"]


def generate(rows: int, seed: int) -> dict[str, list[Any]]:
    """The synthetic profiles, column-wise (sets as lists)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    # distinct 11-digit phone numbers in scrambled order: i → (i·p + offset) mod 10⁹ is a bijection
    offset = int(rng.integers(0, 1_000_000_000))
    ids = (79_000_000_000 + (np.arange(rows, dtype=np.int64) * 982_451_653 + offset) % 1_000_000_000).astype(str)
    ids = ids.tolist()

    def pick_sets(choices: list[str], mean: float) -> list[list[str]]:
        counts = np.minimum(rng.poisson(mean, rows), len(choices))
        picks = rng.random((rows, len(choices))).argsort(axis=1)
        return [[choices[j] for j in picks[i, :counts[i]]] for i in range(rows)]

    return {
        "subscriber_id": ids,
        "tariff": [TARIFFS[i] for i in rng.integers(0, len(TARIFFS), rows)],
        "region": [REGIONS[i] for i in rng.integers(0, len(REGIONS), rows)],
        "tenure_months": rng.integers(0, 240, rows).tolist(),
        "arpu": np.round(rng.lognormal(5.8, 0.6, rows), 2).tolist(),
        "balance": np.round(rng.normal(150, 200, rows), 2).tolist(),
        "services": pick_sets(SERVICES, 2.0),
        "long_distance_minutes": rng.poisson(60, rows).tolist(),
        "roaming_days": rng.poisson(0.5, rows).tolist(),
        "data_gb": np.round(rng.gamma(2.0, 6.0, rows), 1).tolist(),
        "sms_count": rng.poisson(25, rows).tolist(),
        "topups_30d": rng.poisson(2, rows).tolist(),
        "recent_reasons": pick_sets(REASONS, 1.0),
    }


def write_csv(columns: dict[str, list[Any]], path: Path) -> None:
    sets = {"services", "recent_reasons"}
    values = [[";".join(v) for v in columns[c]] if c in sets else columns[c] for c in COLUMNS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(zip(*values))


def write_parquet(columns: dict[str, list[Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({c: columns[c] for c in COLUMNS}), path)


async def load_api(path: Path, url: str, prefix: str, schema: Any, batch_size: int) -> Any:
    import redis.asyncio as aioredis

    from bandit.store.identity import SubscriberHasher
    from bandit.store.keys import Keys
    from bandit.loader import gc_paused, load_profiles
    from bandit.store.store import Store

    client = aioredis.Redis.from_url(url)
    try:
        keys = Keys(prefix)
        secret = await Store(client, keys).shared_secret(None)
        with gc_paused():   # as the CLI does
            return await load_profiles(path, client, keys, SubscriberHasher(secret), schema, batch_size=batch_size)
    finally:
        await client.aclose()


def load_cli(path: Path, data_dir: Path, schema_file: Path | None, batch_size: int) -> float:
    command = [str(Path(sys.executable).parent / "nextbest"), "features", "load", str(path),
               "--data-dir", str(data_dir), "--batch-size", str(batch_size)]
    if schema_file is not None:
        command += ["--schema", str(schema_file)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=sys.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="at most 10⁹")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--no-schema", action="store_true", help="load untyped (FeatureSchema.default())")
    parser.add_argument("--cli", action="store_true", help="run `nextbest features load` in a subprocess")
    parser.add_argument("--keep", action="store_true", help="keep the files and the data dir")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    import redis
    import yaml

    from bandit.store.embedded import EmbeddedRedis
    from policies.schema import FeatureSchema, parse_schema

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    work = Path(tempfile.mkdtemp(prefix="nbload", dir="/tmp"))
    data_dir = Path(tempfile.mkdtemp(prefix="nbr", dir="/tmp"))
    schema = FeatureSchema.default() if args.no_schema else parse_schema(yaml.safe_load(SCHEMA_YAML)["features"])
    schema_file = None
    if not args.no_schema:
        schema_file = work / "schema.yaml"
        schema_file.write_text(SCHEMA_YAML)
    results: dict[str, Any] = {
        "rows": args.rows, "batch_size": args.batch_size, "schema": not args.no_schema, "via": "cli" if args.cli
        else "api", "python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
        "cpu": _cpu_model(), "loads": {}}
    server = EmbeddedRedis(data_dir)
    try:
        started = time.perf_counter()
        columns = generate(args.rows, args.seed)
        files = {}
        if "csv" in formats:
            files["csv"] = work / "profiles.csv"
            write_csv(columns, files["csv"])
        if "parquet" in formats:
            files["parquet"] = work / "profiles.parquet"
            write_parquet(columns, files["parquet"])
        del columns
        _say(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s: " + ", ".join(
            f"{name} {path.stat().st_size / 1e6:.0f} MB" for name, path in files.items()), args.json)

        server.start()
        client = redis.Redis.from_url(server.url)
        for name, path in files.items():
            client.flushall()
            baseline = int(client.info("memory")["used_memory"])
            if args.cli:
                seconds = load_cli(path, data_dir, schema_file, args.batch_size)
                server.start()   # the CLI stopped it (no other client) ...
                client = redis.Redis.from_url(server.url)   # ... reconnect to the restarted one
                loaded, skipped = client.dbsize() - 1, None   # minus the secret
            else:
                report = asyncio.run(load_api(path, server.url, "nb", schema, args.batch_size))
                seconds, loaded, skipped = report.seconds, report.loaded, report.skipped
            used = int(client.info("memory")["used_memory"])
            profile_keys = sum(1 for _ in client.scan_iter(match="nb:profile:*", count=10_000))
            entry = {"seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds),
                     "loaded": loaded, "skipped": skipped, "profile_keys": profile_keys,
                     "file_mb": round(path.stat().st_size / 1e6, 1),
                     "redis_bytes_per_profile": round((used - baseline) / max(profile_keys, 1)),
                     "redis_used_memory_mb": round(used / 1e6, 1)}
            sample = client.get(next(client.scan_iter(match="nb:profile:*", count=10)))
            entry["sample_profile_bytes"] = len(sample or b"")
            results["loads"][name] = entry
            _say(f"{name:8s} {args.rows:,} rows in {seconds:.2f} s = {args.rows / seconds:,.0f} rows/s; "
                 f"{profile_keys:,} profiles; Redis {entry['redis_bytes_per_profile']} B/profile "
                 f"(JSON {entry['sample_profile_bytes']} B, e.g. {sample.decode()[:120]}…)", args.json)
        client.close()
    finally:
        server.stop(force=True)
        if args.keep:
            _say(f"kept {work} and {data_dir}", args.json)
        else:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))


def _say(text: str, quiet_stdout: bool) -> None:
    print(text, file=sys.stderr if quiet_stdout else sys.stdout, flush=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
