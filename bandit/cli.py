"""The ``nextbest`` command line. Every setting also reads NEXTBEST_<SETTING> (see docs/api.md)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import click

from bandit.http.auth import is_loopback
from bandit.config import ConfigError, Settings, load_settings
from bandit.store.embedded import EmbeddedRedisError
from bandit.runtime import StartupError, run_learner

_COMMON = [
    click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
                 envvar="NEXTBEST_CONFIG", help="YAML settings file."),
    click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                 help="Data directory: embedded Redis, decision log, model checkpoints. [./nextbest-data]"),
    click.option("--redis-url", help="Use this Redis instead of the embedded one (redis://, rediss://, unix://)."),
]


def common_options(func):
    for option in reversed(_COMMON):
        func = option(func)
    return func


def settings_from(config_file: Path | None, **overrides: Any) -> Settings:
    try:
        settings = load_settings(config_file, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.log_format != "text":   # set in the config file: logging started before it was read
        from bandit.observe.logging_json import formatter_for

        for handler in logging.getLogger().handlers:
            handler.setFormatter(formatter_for(settings.log_format))
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "NEXTBEST"})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", envvar="NEXTBEST_LOG_FORMAT",
              show_default=True, show_envvar=True, help="Log lines as text or as one JSON object per line.")
def main(verbose: bool, log_format: str) -> None:
    """nextbest: real-time next-best-action decisions with a contextual bandit."""
    from bandit.observe.logging_json import configure_logging

    configure_logging(log_format, logging.DEBUG if verbose else logging.INFO, sys.stderr)


@main.command()
@common_options
@click.option("--host", help="Address to listen on. [127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on. [8080]")
@click.option("--insecure", is_flag=True, default=None, help="Allow a non-loopback --host with no API keys.")
@click.option("--catalog", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Offer catalog (YAML or JSON): seeds the catalog in Redis if it is empty; a catalog "
                   "already there (with its live edits) is kept.")
@click.option("--catalog-replace", "catalog_replace", is_flag=True, default=None,
              help="With --catalog: replace the catalog in Redis with the file, live edits included.")
@click.option("--no-learner", "no_learner", is_flag=True, default=None,
              help="Only decide; a `nextbest learner` process (or another service) learns.")
def serve(config_file: Path | None, host: str | None, port: int | None, data_dir: Path | None,
          redis_url: str | None, insecure: bool | None, catalog: Path | None, catalog_replace: bool | None,
          no_learner: bool | None) -> None:
    """Run the decision service."""
    from aiohttp import web

    from bandit.app import create_app
    from bandit.store.eventloop import new_event_loop

    settings = settings_from(config_file, host=host, port=port, data_dir=data_dir, redis_url=redis_url,
                             catalog=catalog, catalog_replace=catalog_replace, insecure=insecure,
                             run_learner=False if no_learner else None)
    if not settings.api_keys:
        if not is_loopback(settings.host) and not settings.insecure:
            raise click.ClickException(
                f"refusing to listen on {settings.host} with no API keys configured: anyone on the network could "
                "decide, post rewards and change offers. Configure api_keys (NEXTBEST_API_KEYS), or pass --insecure.")
        logging.getLogger("nextbest").warning(
            "NO API KEYS CONFIGURED: the API, offers included, is open to anyone who can reach %s:%d",
            settings.host, settings.port)
    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port,
                    loop=new_event_loop(settings.busy_poll_us),
                    access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
                    print=lambda msg: click.echo(f"nextbest listening on http://{settings.host}:{settings.port}"))
    except (StartupError, EmbeddedRedisError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@common_options
def learner(config_file: Path | None, data_dir: Path | None, redis_url: str | None) -> None:
    """Learn from the joined stream and write the decision log, without serving HTTP."""
    settings = settings_from(config_file, data_dir=data_dir, redis_url=redis_url)
    try:
        asyncio.run(run_learner(settings))
    except (StartupError, EmbeddedRedisError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def status(config_file: Path | None, data_dir: Path | None, redis_url: str | None, as_json: bool) -> None:
    """Who leads, each stream consumer's backlog and lag, and the model: read from the
    configured Redis (the data dir's embedded one is read, never started)."""
    import orjson

    from bandit.observe.status import StatusError, read_status, render

    settings = settings_from(config_file, data_dir=data_dir, redis_url=redis_url)
    try:
        report = asyncio.run(read_status(settings))
    except StatusError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(orjson.dumps(report).decode() if as_json else render(report))


# --------------------------------------------------------------------------- features

_SHOWN_ERRORS = 20
# `features load` loaded the good rows but skipped bad ones: not 0, so a script cannot take a
# partial load for a full one; not 1 (nothing loaded: a bad file, --strict, no Redis).
EXIT_ROWS_SKIPPED = 3


@main.group()
def features() -> None:
    """Subscriber features: bulk-load profiles into Redis."""


@features.command("load")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@common_options
@click.option("--strict", is_flag=True, help="Check the whole file first; load nothing if any row is bad.")
@click.option("--batch-size", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Rows per Redis pipeline.")
@click.option("--schema", "schema_file", type=click.Path(path_type=Path, dir_okay=False),
              help="YAML file whose top-level 'features:' mapping types the columns (docs/features.md); "
                   "a service config file will do. [the 'features' setting] Undeclared CSV cells that read "
                   "as numbers become numbers, the others strings.")
def load_features(file: Path, config_file: Path | None, data_dir: Path | None, redis_url: str | None,
                  strict: bool, batch_size: int, schema_file: Path | None) -> None:
    """Load subscriber profiles from a CSV or Parquet FILE: one JSON document per subscriber,
    keyed by the keyed hash of its subscriber_id column, replacing any profile stored.
    Bad rows are reported (CSV: by line, Parquet: by row index) and skipped, and the exit
    code is then 3; with --strict any bad row refuses the whole file (exit code 1)."""
    from redis.exceptions import RedisError

    from bandit.loader import LoadError, check_file, load_into_redis

    settings = settings_from(config_file, data_dir=data_dir, redis_url=redis_url)
    schema = _read_feature_schema(schema_file) if schema_file is not None else settings.features
    try:
        check_file(file)   # a missing file or a bad header fails before Redis is touched
        report = asyncio.run(load_into_redis(settings, file, schema, strict=strict, batch_size=batch_size))
    except LoadError as exc:
        _echo_row_errors(exc.errors, exc.skipped, exc.unit, err=True)
        raise click.ClickException(str(exc)) from None
    except (StartupError, EmbeddedRedisError, RedisError, OSError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}" if isinstance(exc, RedisError)
                                   else str(exc)) from None
    click.echo(f"loaded {report.loaded:,} profile{'' if report.loaded == 1 else 's'}, "
               f"skipped {report.skipped:,} row{'' if report.skipped == 1 else 's'} "
               f"in {report.seconds:.1f} s ({report.rate:,.0f} rows/s)")
    _echo_row_errors(report.errors, report.skipped, report.unit, err=False)
    if report.skipped:
        click.echo(f"INCOMPLETE: {report.skipped:,} bad row{'' if report.skipped == 1 else 's'} skipped, not "
                   f"loaded (exit code {EXIT_ROWS_SKIPPED}; --strict refuses such a file whole)", err=True)
        sys.exit(EXIT_ROWS_SKIPPED)


def _read_feature_schema(path: Path) -> Any:
    from bandit.store.yamlfile import compose, line_at, value_of
    from policies.schema import SchemaError, parse_schema

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        root = compose(path, text, SchemaError)
        raw = value_of(root) if root is not None else None
        if not isinstance(raw, dict) or "features" not in raw:
            raise SchemaError(f"{path}: expected a top-level 'features:' mapping (with a 'subscriber:' section)")
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        schema = parse_schema(raw["features"], where="features")
    except SchemaError as exc:   # the line of the mistake itself
        raise click.ClickException(f"{path}:{line_at(root, exc.path)}: {exc}") from None
    for warning in schema.unmarked_personal():
        logging.getLogger("nextbest").warning("%s: %s", path, warning)
    return schema


def _echo_row_errors(errors: list[Any], skipped: int, unit: str, err: bool) -> None:
    for error in errors[:_SHOWN_ERRORS]:
        click.echo(f"  {unit} {error.line}: {error.reason}", err=err)
    if skipped > min(len(errors), _SHOWN_ERRORS):
        click.echo(f"  ... and {skipped - min(len(errors), _SHOWN_ERRORS):,} more", err=err)


def _register_tools() -> None:
    """Subcommands that live outside the service (the simulator's ``demo`` and ``simulate``,
    replay's ``replay``) come in through the ``nextbest.commands`` entry points declared in
    pyproject.toml, so ``bandit`` never imports them by name."""
    from importlib.metadata import entry_points

    for point in sorted(entry_points(group="nextbest.commands"), key=lambda p: p.name):
        main.add_command(point.load(), point.name)


_register_tools()

if __name__ == "__main__":
    main()
