"""``report.html``: one self-contained page (inline SVG plots, no scripts, no network)
that a person opens to see whether the service learned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replay.html import figure as _figure
from replay.html import page, plt, table
from replay.html import svg as _svg
from simulator.summary import LABELS, num, num3, pct

COLORS = {"learned": "#1f77b4", "control": "#9467bd", "random": "#7f7f7f", "priority": "#ff7f0e",
          "oracle": "#2ca02c"}


def write_report(result: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    path.write_text(render(result), encoding="utf-8")
    return path


def render(result: dict[str, Any]) -> str:
    summary, curves = result["summary"], result["curves"]
    sections = [
        _headline(result),
        _policy_table(summary),
        _slot_table(summary),
        _figure("Learning curve: slate value per decision", _learning_curve(curves)),
        _figure("Cumulative regret of the learned policy against the oracle", _regret(curves)),
        _figure("Offers the learned policy served (any slot): observed take rate and true acceptance",
                _offers(summary)),
        _figure("Slate value per decision by channel", _channels(summary)),
        _details(result),
    ]
    return page("nextbest simulation", "\n".join(sections))


def _headline(result: dict[str, Any]) -> str:
    s = result["summary"]
    gap = s["gap_closed"]
    lift = s.get("lift_over_control")
    parts = [f"<p><b>{s['contacts']:,}</b> contacts, <b>{s['decisions']:,}</b> decisions, "
             f"{s['slots_per_decision']:.2f} slots per decision, seed {result['seed']}.",
             f" Over the last 20% of the run the learned policy closed <b>{gap:.0%}</b> of the gap in slate value "
             "per decision between a uniformly random slate and the oracle's.</p>" if gap is not None else "</p>"]
    if lift:
        v = lift["value_per_decision"]
        a = lift["acceptances_per_decision"]
        conf = 1 - lift["alpha"]
        parts.append(f"<p>Lift over the control group: value per decision {v['difference']:+.2f} "
                     f"({conf:.0%} CI {v['lower']:+.2f} … {v['upper']:+.2f}); offers taken per decision "
                     f"{a['difference']:+.3f} ({conf:.0%} CI {a['lower']:+.3f} … {a['upper']:+.3f}).</p>")
    return "\n".join(parts)


def _policy_table(summary: dict[str, Any]) -> str:
    rows = [[LABELS[name], f"{p['decisions']:,}", num3(p["acceptances_per_decision"]), num(p["value_per_decision"]),
             num(p["value_per_decision_last"]), num3(p.get("observed_acceptances_per_decision")),
             num(p.get("observed_value_per_decision"))] for name, p in summary["policies"].items()]
    head = ("policy", "decisions", "offers taken / decision (true)", "slate value / decision (true)",
            "slate value / decision, last 20%", "offers taken / decision (observed)",
            "value / decision (observed)")
    return ("<h2>Policies on the same contacts</h2>" + table(head, rows) + "<p class=note>Each policy fills as many "
            "slots as the service served. True figures are the slate's: Σ over its slots of P(heard) × P(accept) "
            "(× value) under the hidden truth; observed ones count what the subscribers answered (live policies "
            "only). With one slot they are the offer's acceptance rate and value.</p>")


def _slot_table(summary: dict[str, Any]) -> str:
    rows = [[s["slot"], f"{s['decisions']:,}", pct(s["attention"]), pct(s["acceptance"]),
             pct(s["observed_acceptance"]), num(s["value_per_decision"]), num(s["observed_value_per_decision"])]
            for s in summary["per_slot"]]
    head = ("slot", "decisions", "heard", "taken (true)", "taken (observed)", "value / decision (true)",
            "value / decision (observed)")
    return ("<h2>The learned policy's slots</h2>" + table(head, rows) + "<p class=note>Slot 1 is pitched first; "
            "later slots are heard by fewer subscribers (the simulator's position effect).</p>")


def _learning_curve(curves: dict[str, Any]) -> str:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for name, values in curves["value"].items():
        points = [(x, v) for x, v in zip(curves["x"], values) if v is not None]
        if points:
            ax.plot(*zip(*points), label=LABELS[name], color=COLORS[name], lw=2 if name == "learned" else 1.2)
    ax.set_xlabel("decisions")
    ax.set_ylabel("expected slate value per decision")
    ax.legend(loc="best", fontsize=8)
    return _svg(fig)


def _regret(curves: dict[str, Any]) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(curves["regret_x"], curves["regret"], color=COLORS["learned"])
    ax.set_xlabel("decisions")
    ax.set_ylabel("cumulative regret (value)")
    return _svg(fig)


def _offers(summary: dict[str, Any]) -> str:
    offers = summary["per_offer"]
    names = list(offers)
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [offers[n]["take_rate"] or 0 for n in names], 0.4, label="observed take rate")
    ax.bar([x + 0.2 for x in xs], [offers[n]["true_acceptance"] or 0 for n in names], 0.4, label="true acceptance")
    ax.set_xticks(list(xs), [f"{n}\n({offers[n]['served']:,})" for n in names], fontsize=7, rotation=30)
    ax.set_ylabel("acceptance rate")
    ax.legend(fontsize=8)
    return _svg(fig)


def _channels(summary: dict[str, Any]) -> str:
    channels = summary["per_channel"]
    names = list(channels)
    policies = ["learned", "random", "priority", "oracle"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(policies)
    for j, policy in enumerate(policies):
        ax.bar([i + (j - 1.5) * width for i in range(len(names))],
               [channels[c][f"{policy}_value_per_decision"] or 0 for c in names], width,
               label=LABELS[policy], color=COLORS[policy])
    ax.set_xticks(range(len(names)), [f"{c}\n({channels[c]['decisions']:,})" for c in names], fontsize=8)
    ax.set_ylabel("expected value per decision")
    ax.legend(fontsize=8)
    return _svg(fig)


def _details(result: dict[str, Any]) -> str:
    run, service = result["run"], result.get("service", {})
    model = service.get("model", {})
    items = [("contacts per second", run["contacts_per_second"]), ("decide p50 / p99 (ms)",
             f"{run['decide_p50_ms']} / {run['decide_p99_ms']}"), ("rewards posted", run["rewards_posted"]),
             ("rewards late (after the wait)", run["rewards_late"]),
             ("answers", ", ".join(f"{k} {v:,}" for k, v in result["summary"]["rewards"].items())),
             ("model version", model.get("version")), ("examples learned", model.get("examples_learned"))]
    return "<h2>Run</h2>" + table(("", ""), items)

