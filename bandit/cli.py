"""The ``nextbest`` command line. Every setting also reads NEXTBEST_<SETTING> (see docs/api.md)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import click

from bandit.auth import is_loopback
from bandit.config import ConfigError, Settings, load_settings
from bandit.embedded import EmbeddedRedisError
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
        return load_settings(config_file, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "NEXTBEST"})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """nextbest: real-time next-best-action decisions with a contextual bandit."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@common_options
@click.option("--host", help="Address to listen on. [127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on. [8080]")
@click.option("--insecure", is_flag=True, default=None, help="Allow a non-loopback --host with no API keys.")
@click.option("--catalog", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Offer catalog (YAML or JSON) to load into Redis at start.")
@click.option("--no-learner", "no_learner", is_flag=True, default=None,
              help="Only decide; a `nextbest learner` process (or another service) learns.")
def serve(config_file: Path | None, host: str | None, port: int | None, data_dir: Path | None,
          redis_url: str | None, insecure: bool | None, catalog: Path | None, no_learner: bool | None) -> None:
    """Run the decision service."""
    from aiohttp import web

    from bandit.app import create_app

    settings = settings_from(config_file, host=host, port=port, data_dir=data_dir, redis_url=redis_url,
                             catalog=catalog, insecure=insecure, run_learner=False if no_learner else None)
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
@click.option("--rounds", type=int, default=6000, show_default=True, help="Contacts to simulate.")
@click.option("--seed", type=int, default=7, show_default=True)
def demo(config_file: Path | None, data_dir: Path | None, redis_url: str | None, rounds: int, seed: int) -> None:
    """Start the service on the embedded Redis, drive a small example through the HTTP API, show what it learned."""
    from bandit.demo import run_demo

    from bandit.demo import EXAMPLE_CATALOG

    if not EXAMPLE_CATALOG.exists():
        raise click.ClickException(f"the example catalog {EXAMPLE_CATALOG} is missing: run the demo from a checkout")
    settings = settings_from(config_file, data_dir=data_dir or Path("nextbest-data/demo"), redis_url=redis_url,
                             reward_wait_seconds=5.0, catalog=EXAMPLE_CATALOG)
    ok = asyncio.run(run_demo(settings, rounds=rounds, seed=seed))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
