"""``nextbest replay``: check a decision log, export it as a Parquet table, and evaluate
policies on it counterfactually (evaluate, optimize, ablate).

A click group, registered under the ``nextbest`` command. Reports go to stdout, the
progress bar (bytes read; only on a terminal) to stderr; every expected failure is a
one-line message with exit code 1, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from replay.cli_inputs import LOGS as _LOGS
from replay.cli_inputs import write_per_event
from replay.logs import FORMATS, LogError, ValidationReport, read_logs
from replay.validate import KINDS

_FORMAT = click.option("--format", "log_format", type=click.Choice(FORMATS), default="auto", show_default=True,
                       help="Log format; auto: a directory or .dsjson[.gz]/.json[l] is DSJSON, .parquet/.csv a table.")


@click.group()
def replay() -> None:
    """Replay: read, check and export decision logs (DSJSON from the service or VW, or tables),
    and estimate what other policies would have earned on them."""


@replay.command()
@_LOGS
@click.option("--strict", is_flag=True, help="Exit 1 if any event is defective.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file.")
@_FORMAT
def validate(logs: Path, strict: bool, json_file: Path | None, log_format: str) -> None:
    """Check every event in LOGS (a log directory, the service's data dir, or a file):
    count each kind of defect, with examples (file:line). Defective events are what replay would skip."""
    report = ValidationReport()
    with _progress(f"checking {logs.name}") as progress, _errors():
        for _ in read_logs(logs, log_format, report=report, progress=progress):
            pass
    _print_report(report)
    if json_file is not None:
        with _errors():
            json_file.parent.mkdir(parents=True, exist_ok=True)
            json_file.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if strict and report.defects:
        sys.exit(1)


@replay.command()
@_LOGS
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The Parquet file to write (replaced if it exists).")
@click.option("--strict", is_flag=True, help="Stop at the first defective event, naming file and line; write nothing.")
@_FORMAT
def export(logs: Path, out: Path, strict: bool, log_format: str) -> None:
    """Write the good events of LOGS to one Parquet table (the columns of docs/replay.md),
    skipping and reporting defective ones."""
    from replay.export import export_parquet

    with _progress(f"exporting {logs.name}") as progress, _errors():
        report = export_parquet(logs, out, format=log_format, strict=strict, progress=progress)
    click.echo(f"wrote {report.good:,} event{'' if report.good == 1 else 's'} to {out}")
    if report.defects:
        _print_report(report)


@contextmanager
def _errors() -> Iterator[None]:
    """A log that cannot be read, a strict defect, a file that cannot be written: one line."""
    try:
        yield
    except LogError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None] | None]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_report(report: ValidationReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    console.print(f"[bold]{report.good:,}[/] good event{'' if report.good == 1 else 's'}, "
                  f"[bold]{report.defects:,}[/] defective")
    if report.multi_slot:
        per_slot = ", ".join(f"{count:,} in slot {s + 1}" for s, count in enumerate(report.per_slot))
        console.print(f"{report.multi_slot:,} multi-slot event{'' if report.multi_slot == 1 else 's'} "
                      f"({report.slots:,} slots: {per_slot}), {report.good - report.multi_slot:,} single-slot",
                      highlight=False)
    if not report.defects:
        return
    table = Table("defect", "count", "meaning")
    for kind, count in sorted(report.counts.items(), key=lambda item: -item[1]):
        table.add_row(kind, f"{count:,}", KINDS[kind])
    console.print(table)
    for kind in sorted(report.counts, key=lambda k: -report.counts[k]):
        console.print(f"[bold]{kind}[/]:", highlight=False)
        for example in report.examples.get(kind, []):
            console.print(f"  {example.where}: {example.reason}", markup=False, highlight=False)
            if example.snippet:
                console.print(f"    {example.snippet}", markup=False, highlight=False)


# ----------------------------------------------------------------- counterfactual evaluation

def _evaluation_options(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--json", "json_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                     help="Also write the results as JSON to this file ('-': to stdout, instead of the table)."),
        click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Write report.html (plots, tables) into this directory."),
        click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
                     show_default=True, help="Intervals are (1 - alpha) two-sided."),
        click.option("--ci", type=click.Choice(["normal", "bootstrap", "bernstein", "cs"]), default="cs",
                     show_default=True, help="Interval kind; cs: the anytime-valid betting confidence sequence "
                                             "(chosen by coverage on the simulator, docs/replay.md)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Processes, one pass over the log each  [default: every core; one for a log "
                          "under 8 MiB]."),
        _FORMAT,
    ]
    for option in reversed(options):
        command = option(command)
    return command


@replay.command()
@_LOGS
@click.option("--policy", "policies", multiple=True, required=True, metavar="VW_ARGS",
              help='A candidate: VW arguments for --cb_explore_adf, e.g. "--epsilon 0.05 --interactions CO". Repeat.')
@click.option("--no-baselines", is_flag=True, help="Skip the logging-policy, uniform and single-offer baselines.")
@click.option("--slates/--single-slot", "slates", default=None,
              help="Evaluate as a multi-slot (CCB) log, or as a single-slot one  [default: multi-slot when "
                   "one of the first 10,000 events is].")
@click.option("--support-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01,
              show_default=True, help="A logged probability below this explores poorly: an estimate with more than "
                                      "5% of its target's mass there is flagged, never picked as best.")
@click.option("--propensity-floor", "propensity_floor", type=click.FloatRange(0, 1), default=None, metavar="P",
              help="Floor each candidate's PMF as the service floors its own (every action at least P/K), in "
                   "[0, 1]  [default: the deployed floor when LOGS is (in) the service's data dir with a "
                   "checkpoint, else 0].")
@click.option("--per-event", "per_event", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also write one row per scored event to this .parquet or .csv file: event_id, "
                                   "tag (VW's _tag) and each policy's per-event term, to join results back.")
@_evaluation_options
def evaluate(logs: Path, policies: tuple[str, ...], no_baselines: bool, slates: bool | None, support_threshold: float,
             propensity_floor: float | None, per_event: Path | None, json_file: Path | None, report_dir: Path | None,
             alpha: float, ci: str, workers: int | None, log_format: str) -> None:
    """Estimate what each --policy would have earned on LOGS (progressive validation:
    each event is predicted, then learned from), with IPS, SNIPS, DM, DR and switch-DR,
    next to the logging policy, uniform random and the best single offer. On a
    multi-slot (CCB) log: per slot and for the slate, next to the logging policy,
    uniform random and priority by value."""
    from replay.deployed import find_deployed
    from replay.evaluate import evaluate as run
    from replay.support import SupportRule

    if per_event is not None and per_event.suffix.lower() not in (".parquet", ".csv"):
        raise click.BadParameter(f"{per_event}: expected a .parquet or .csv name", param_hint="'--per-event'")
    with _progress_events("evaluating") as progress, _evaluation_errors():
        floor, floor_source = propensity_floor, "--propensity-floor"
        if floor is None:
            deployed = find_deployed(logs)
            floor, floor_source = (deployed.floor, deployed.source) if deployed else (0.0, "default: no checkpoint")
        result = run(logs, list(policies), alpha=alpha, ci=ci, baselines=not no_baselines, workers=workers,
                     progress=progress, format=log_format, slates=slates,
                     support_rule=SupportRule(threshold=support_threshold), propensity_floor=floor,
                     per_event=per_event is not None)
        result = dataclasses.replace(result, propensity_floor_source=floor_source)

    def show() -> None:
        _print_policies([*result.candidates, *result.baselines], result)
        _console().print(f"candidates' propensity floor {result.propensity_floor:g} ({result.propensity_floor_source})",
                         markup=False, highlight=False)
    _emit(result, json_file, report_dir, show)
    if per_event is not None:
        with _errors():
            write_per_event(result.per_event_terms(), per_event)
        click.echo(f"wrote {per_event}", err=json_file is not None and str(json_file) == "-")


_DEPLOYED = click.option("--deployed-from", "deployed_from", type=click.Path(exists=True, file_okay=False,
                                                                            path_type=Path),
                         help="The service's data dir (or its models/ dir): the deployed settings are read from "
                              "its newest checkpoint  [default: LOGS itself when it is the data dir, or the data "
                              "dir LOGS is in].")


@replay.command()
@_LOGS
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Evaluate this many settings drawn at random from the whole search space "
                   "[default: a fixed grid of at most 24 around the deployed settings].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --budget draw.")
@_DEPLOYED
@_evaluation_options
def optimize(logs: Path, budget: int | None, seed: int, deployed_from: Path | None, json_file: Path | None,
             report_dir: Path | None, alpha: float, ci: str, workers: int | None, log_format: str) -> None:
    """Which learning settings to deploy: the deployed settings (the incumbent) and a grid
    around them (exploration algorithms, learning rates, --power_t, interactions, ignored
    namespaces) evaluated on LOGS, ranked by the lower bound of their DR value. A change
    is recommended only when its lower bound beats the incumbent's DR estimate."""
    from replay.search import optimize as run

    with _progress_events("searching") as progress, _evaluation_errors():
        found = run(logs, budget=budget, seed=seed, alpha=alpha, ci=ci, workers=workers, progress=progress,
                    format=log_format, deployed_from=deployed_from)

    def show() -> None:
        from rich.markup import escape

        result, best, held, info = found.evaluation, found.best, found.incumbent, found.incumbent_info
        _print_policies([*found.ranked, *result.baselines], result)
        console = _console()
        v = held.value
        console.print(f"incumbent: [bold]{escape(held.name)}[/]  DR {v.value:.4f} "
                      f"({1 - alpha:.0%} CI {v.lower:.4f} … {v.upper:.4f}); {escape(info.source)}; "
                      f"propensity floor {info.floor:g}", highlight=False)
        if best.flagged:
            console.print("no best setting: every one rests on poorly explored actions (support)")
            console.print(f"[bold]recommendation[/]: {escape(found.recommendation.reason)}", highlight=False)
            return
        v = best.value
        console.print(f"best by lower bound: [bold]{escape(best.name)}[/]  DR {v.value:.4f} "
                      f"({1 - alpha:.0%} CI {v.lower:.4f} … {v.upper:.4f})", highlight=False)
        console.print(f"[bold]recommendation[/]: {escape(found.recommendation.reason)}", highlight=False)
    _emit(found, json_file, report_dir, show)


@replay.command()
@_LOGS
@click.option("--policy", default=None, metavar="VW_ARGS",
              help="The base policy's VW arguments  [default: the deployed settings].")
@_DEPLOYED
@_evaluation_options
def ablate(logs: Path, policy: str | None, deployed_from: Path | None, json_file: Path | None,
           report_dir: Path | None, alpha: float, ci: str, workers: int | None, log_format: str) -> None:
    """Feature importance by namespace: the DR value of --policy (or of the deployed
    settings), and its drop when each namespace of LOGS is ignored (--ignore), with
    paired intervals; a drop larger than the whole policy's value is flagged."""
    from replay.search import ablation

    with _progress_events("ablating") as progress, _evaluation_errors():
        found = ablation(logs, policy, alpha=alpha, ci=ci, workers=workers, progress=progress, format=log_format,
                         deployed_from=deployed_from)

    def show() -> None:
        from rich.markup import escape
        from rich.table import Table

        base = found.base.value
        console = _console()
        console.print(f"base: [bold]{escape(found.base.name)}[/]  DR {base.value:.4f} "
                      f"(CI {base.lower:.4f} … {base.upper:.4f}), {found.evaluation.events:,} events", highlight=False)
        table = Table("namespace", "DR without", "drop", f"{1 - alpha:.0%} CI of the drop (paired)", "")
        for row in found.rows:
            table.add_row(f"{row.initial} ({', '.join(row.names)})", f"{row.result.value.value:.4f}",
                          f"{row.drop.value:+.4f}", f"{row.drop.lower:+.4f} … {row.drop.upper:+.4f}",
                          "[yellow]warning[/]" if row.warning else "")
        console.print(table)
        for warning in found.warnings:
            console.print(f"[yellow]warning[/] {escape(warning)}", highlight=False)
    _emit(found, json_file, report_dir, show)


@contextmanager
def _evaluation_errors() -> Iterator[None]:
    """``_errors``, and bad VW arguments or an empty log: one line too."""
    from replay.candidates import EvaluationError

    with _errors():
        try:
            yield
        except EvaluationError as exc:
            raise click.ClickException(str(exc)) from None


def _emit(result: Any, json_file: Path | None, report_dir: Path | None, show: Callable[[], None]) -> None:
    """The table (unless the JSON goes to stdout), the JSON, the report."""
    if json_file is None or str(json_file) != "-":
        show()
    with _errors():
        if json_file is not None:
            text = json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
            if str(json_file) == "-":
                click.echo(text, nl=False)
            else:
                json_file.parent.mkdir(parents=True, exist_ok=True)
                json_file.write_text(text, encoding="utf-8")
        if report_dir is not None:
            from replay.report import write_report

            path = write_report(result, report_dir)
            click.echo(f"wrote {path}", err=str(json_file) == "-")


def _print_policies(policies: list[Any], result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    def num(x: float | None) -> str:
        return "–" if x is None or x != x else f"{x:.4f}"

    console = _console()
    stands = getattr(result, "represented", None)
    console.print(f"[bold]{result.events:,}[/] events ({result.skipped:,} skip-learn, {result.report.defects:,} "
                  f"defective left out){'' if stands is None else f', standing for {stands:,.0f} (pdrop)'}; "
                  f"reward model: {result.reward_model}", highlight=False)
    table = Table("policy", "DR value", f"{1 - result.alpha:.0%} CI ({result.ci})", "IPS", "SNIPS", "ESS",
                  "matched", "support",
                  caption="* on-policy: the mean logged reward" if any(p.headline == "on_policy" for p in policies)
                  else None)
    table.columns[0].overflow = "fold"
    for column in table.columns[1:]:
        column.no_wrap = True
    for policy in policies:
        e, get = policy.value, policy.estimates.get
        label = escape(policy.name) if policy.kind == "candidate" else f"[dim]{escape(policy.name)}[/]"
        table.add_row(label + ("*" if policy.headline == "on_policy" else ""), num(e.value),
                      f"{num(e.lower)} … {num(e.upper)}", num(get("ips") and get("ips").value),
                      num(get("snips") and get("snips").value), "–" if e.ess is None else f"{e.ess:,.0f}",
                      "–" if e.matched is None else f"{e.matched:.0%}", _support_cell(policy.support))
    console.print(table)
    flagged = [p for p in policies if p.flagged]
    if flagged:
        console.print(f"[bold yellow]⚠ {len(flagged)} estimate{'s' if len(flagged) > 1 else ''} rest on poorly "
                      f"explored actions[/] (support): shown, never picked as best", highlight=False)
        for policy in flagged[:5]:
            console.print(f"  {escape(policy.name)}: {escape('; '.join(policy.support.reasons))}", highlight=False)
    if any(p.kind == "candidate" for p in policies) and getattr(result, "best", True) is None:
        console.print("[bold]no best candidate[/]: every candidate rests on poorly explored actions", highlight=False)
    if getattr(result, "slot_events", None) is not None:
        _print_slots(policies, result, num)


def _support_cell(support: Any) -> str:
    """ok, or ⚠ with the target's mass on poorly explored actions and the expected ESS."""
    if support is None:
        return "–"
    share = support.poor_share + support.unsupported_share
    text = f"{share:.0%} p<{support.threshold:g}, ESS {support.ess:,.0f}"
    return f"[yellow]⚠ {text}[/]" if support.flagged else f"ok ({text})"


def _print_slots(policies: list[Any], result: Any, num: Callable[[float | None], str]) -> None:
    """A multi-slot log: each policy's value per slot (DR; on-policy for the logging policy)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table("policy", *(f"slot {s + 1} ({n:,})" for s, n in enumerate(result.slot_events)),
                  caption="per slot: DR (CI), slot s weighted by the product of the ratios of slots 1..s; the "
                          "values above are the slate's, the sum over slots")
    table.columns[0].overflow = "fold"
    for policy in policies:
        if policy.slots is None:
            continue
        cells = []
        for slot in policy.slots:
            e = slot[policy.headline]
            cells.append(f"{num(e.value)} ({num(e.lower)} … {num(e.upper)})")
        label = escape(policy.name) if policy.kind == "candidate" else f"[dim]{escape(policy.name)}[/]"
        table.add_row(label + ("*" if policy.headline == "on_policy" else ""), *cells)
    _console().print(table)


def _console() -> Any:
    """stdout; not a terminal (a file, a pipe): wide, so policy arguments are not folded."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    return console if console.is_terminal else Console(soft_wrap=True, width=max(console.width, 160))


@contextmanager
def _progress_events(description: str) -> Iterator[Callable[[float, int], None] | None]:
    """A bar over the passes' share of the log read, with events processed (all passes)."""
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[events]:,} events"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=1.0, events=0)
        yield lambda share, events: bar.update(task, completed=share, events=events)
