"""``report.html`` for ``nextbest replay evaluate``, ``optimize`` and ``ablate``: one
self-contained page (inline SVG) that says which policy would have earned most, how
sure that is, and how each candidate's estimate built up over the log."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from replay.estimators import Estimate
from replay.evaluate import EvaluationResult, PolicyResult, ranked
from replay.html import Raw, escape, figure, page, plt, svg, table
from replay.search import AblationResult, SearchResult

CANDIDATE, BASELINE, LOGGED = "#1f77b4", "#7f7f7f", "#ff7f0e"
MAX_CURVES = 8
MAX_OFFERS = 15


def write_report(result: EvaluationResult | SearchResult | AblationResult, directory: Path) -> Path:
    """Write ``directory/report.html`` (the directory is created) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    path.write_text(render(result), encoding="utf-8")
    return path


def render(result: EvaluationResult | SearchResult | AblationResult) -> str:
    if isinstance(result, AblationResult):
        return _ablation(result)
    if isinstance(result, SearchResult):
        return _evaluation(result.evaluation, "nextbest replay: settings search", ranked_first=True,
                           lead=_recommendation(result))
    return _evaluation(result, "nextbest replay: policy evaluation")


def _evaluation(result: EvaluationResult, title: str, ranked_first: bool = False, lead: str = "") -> str:
    candidates = ranked(result.candidates) if ranked_first else result.candidates
    sections = [
        lead,
        _headline(result),
        figure("Estimated value per decision", _values_plot(candidates, result.baselines, result.alpha),
               f"Headline estimate (DR; the logging policy: its mean logged reward) with its "
               f"{1 - result.alpha:.0%} interval ({result.ci})."),
    ]
    if candidates:
        sections.append(figure("Progressive validation: running DR estimate over the log",
                               _curves_plot(ranked(candidates)[:MAX_CURVES], result.baselines),
                               "Each candidate's DR estimate over the first n events, while it learns; the band is "
                               "the pointwise normal interval."))
    sections += ["<h2>Policies</h2>", _policy_table([*candidates, *result.baselines]), _offers_table(result),
                 _slots_table([*candidates, *result.baselines], result), _calibration(result), _details(result),
                 _NOTES]
    return page(title, "\n".join(sections))


def _recommendation(result: SearchResult) -> str:
    """``optimize``: which settings were the incumbent (and where they came from), and
    whether to change them, with the rule and the numbers."""
    held, info, rec = result.incumbent, result.incumbent_info, result.recommendation
    if held is None or info is None or rec is None:
        return ""
    v = held.value
    verdict = "Change the settings" if rec.change else "Keep the settings"
    return (f"<h2>Recommendation: {verdict.lower()}</h2>"
            f"<p>Incumbent: <code>{escape(held.name)}</code> ({escape(info.source)}; propensity floor "
            f"{info.floor:g}), DR <b>{_num(v.value)}</b> (CI {_num(v.lower)} … {_num(v.upper)}), evaluated by "
            f"progressive validation like every candidate.</p>"
            f"<p><b>{escape(rec.reason)}</b>.</p>"
            "<p class=\"note\">Rule: a change is recommended only when a candidate's DR lower bound beats the "
            "incumbent's DR estimate; of several, the highest lower bound.</p>")


def _headline(result: EvaluationResult) -> str:
    parts = [f"<p><b>{result.events:,}</b> events evaluated from <code>{escape(result.source)}</code>"
             f" ({result.skipped:,} skip-learn, {result.report.defects:,} defective left out).</p>"]
    best, logged = result.best, result.baseline("logging policy")
    if best is not None:
        v = best.value
        parts.append(f"<p>Best candidate by DR lower bound: <code>{escape(best.name)}</code>, "
                     f"<b>{_num(v.value)}</b> per decision ({1 - result.alpha:.0%} CI {_num(v.lower)} … "
                     f"{_num(v.upper)})" + (f"; the logging policy earned {_num(logged.value.value)}." if logged
                                            else ".") + "</p>")
    elif result.candidates:
        parts.append('<p class="warning"><b>No best candidate</b>: every candidate\'s estimate rests on poorly '
                     "explored actions (see the support column); none can be trusted to be ranked.</p>")
    flagged = sum(p.flagged for p in [*result.candidates, *result.baselines])
    if flagged:
        parts.append(f'<p class="warning">⚠ {flagged} estimate{"s" if flagged > 1 else ""} rest on poorly explored '
                     f"actions (target mass on logged p &lt; {result.support_rule.threshold:g}, or a small expected "
                     "ESS): shown, never picked as best.</p>")
    return "\n".join(parts)


def _support(support: Any) -> str | None:
    """The support cell: ok, or the warning with its figures."""
    if support is None:
        return None
    figures = (f"{support.poor_share + support.unsupported_share:.0%} on p<{support.threshold:g}, "
               f"expected ESS {support.ess:,.0f}, max weight {support.max_weight:,.0f}")
    return f"⚠ poor support: {figures}" if support.flagged else f"ok ({figures})"


def _calibration(result: EvaluationResult) -> str:
    c = result.calibration
    if c is None:
        return ""
    rows = [[f"{b['events']:,}", _num(b["predicted"]), _num(b["observed"]),
             f"{_num(b['lower'])} … {_num(b['upper'])}"] for b in c.bins]
    return ("<h2>Reward model calibration</h2><p class=\"note\">The reward model's prediction for each served "
            "action (made before it learned that event: progressive validation, out-of-sample) against the reward "
            f"observed, in bins of equal counts. Overall: predicted {_num(c.predicted)}, observed "
            f"{_num(c.observed)} over {c.events:,} events. A model off here biases DM, never DR's expectation "
            "(only its variance).</p>" + table(["events", "predicted", "observed", "observed CI"], rows))


def _values_plot(candidates: list[PolicyResult], baselines: list[PolicyResult], alpha: float) -> str:
    policies = [*candidates, *baselines]
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.38 * len(policies)))
    for y, policy in enumerate(reversed(policies)):
        e = policy.value
        color = CANDIDATE if policy.kind == "candidate" else LOGGED if policy.headline == "on_policy" else BASELINE
        ax.errorbar([e.value], [y], xerr=_err(e), fmt="o", color=color, capsize=4)
    ax.set_yticks(range(len(policies)), [_short(p.name) for p in reversed(policies)], fontsize=8)
    logged = next((b for b in baselines if b.headline == "on_policy"), None)
    if logged is not None:
        ax.axvline(logged.value.value, color=LOGGED, linestyle="--", linewidth=1, label="logging policy")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(f"value per decision ({1 - alpha:.0%} CI)")
    ax.grid(axis="x", alpha=0.3)
    return svg(fig)


def _curves_plot(candidates: list[PolicyResult], baselines: list[PolicyResult]) -> str:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = plt.get_cmap("tab10")
    for i, policy in enumerate(candidates):
        curve = policy.curve
        if curve is None:
            continue
        ax.plot(curve.events, curve.value, color=colors(i % 10), label=_short(policy.name, 50))
        ax.fill_between(curve.events, curve.lower, curve.upper, color=colors(i % 10), alpha=0.12, linewidth=0)
    for policy in baselines:
        if policy.curve is not None:
            ax.plot(policy.curve.events, policy.curve.value, color=LOGGED if policy.headline == "on_policy"
                    else BASELINE, linestyle="--", label=policy.name)
    ax.set_xlabel("events")
    ax.set_ylabel("running estimate of value per decision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return svg(fig)


def _policy_table(policies: list[PolicyResult]) -> str:
    rows = []
    for p in policies:
        e, get = p.value, p.estimates.get
        rows.append([Raw(f"<code>{escape(p.name)}</code>"), p.kind, _num(e.value), _ci(e), _value(get("ips")),
                     _value(get("snips")), _value(get("dm")), _value(get("switch_dr")),
                     _num(e.ess, 0) if p.headline != "on_policy" else None, _pct(e.matched),
                     _num(e.max_weight, 1), _support(p.support), _num(p.events_per_second, 0)])
    return table(["policy", "kind", "value", "CI", "IPS", "SNIPS", "DM", "switch-DR", "ESS", "matched",
                  "max weight", "support", "events/s"], rows)


def _offers_table(result: EvaluationResult) -> str:
    if not result.offers:
        return ""
    rows = [[Raw(f"<code>{escape(o.offer)}</code>"), f"{o.events:,}", f"{o.served:,}",
             _num(o.estimates["dr"].value), _ci(o.estimates["dr"]), _value(o.estimates["ips"]), _support(o.support)]
            for o in result.offers[:MAX_OFFERS]]
    more = len(result.offers) - MAX_OFFERS
    note = f'<p class="note">… and {more:,} more offers (all in the JSON).</p>' if more > 0 else ""
    return ("<h2>Single offers</h2><p class=\"note\">Always serving one offer, on the events where it was a "
            "candidate (DR and IPS), unflagged first by DR lower bound.</p>"
            + table(["offer", "events", "served", "DR", "CI", "IPS", "support"], rows) + note)


def _slots_table(policies: list[PolicyResult], result: EvaluationResult) -> str:
    """A multi-slot log: each policy's headline per slot, and the slot-only IPS beside it."""
    if result.slot_events is None:
        return ""
    rows = []
    for p in policies:
        for s, slot in enumerate(p.slots or []):
            e = slot[p.headline]
            rows.append([Raw(f"<code>{escape(p.name)}</code>"), f"{s + 1} ({result.slot_events[s]:,} events)",
                         _num(e.value), _ci(e), _value(slot.get("ips")), _value(slot.get("ips_independent")),
                         _num(slot["ips"].ess, 0) if "ips" in slot else None])
    return ('<h2>Per slot</h2><p class="note">The values above are the slate\'s (the sum over slots). '
            "Per slot: the headline and IPS weight slot s by the product of the ratios of slots 1..s (unbiased "
            "under the slot-by-slot factorisation); slot-only IPS uses slot s's ratio alone, which assumes the "
            "slots are independent.</p>"
            + table(["policy", "slot", "value", "CI", "IPS", "slot-only IPS", "ESS"], rows))


def _details(result: EvaluationResult) -> str:
    items = [("source", result.source), ("events evaluated", f"{result.events:,}"),
             ("skip-learn events", f"{result.skipped:,}"), ("defective events", f"{result.report.defects:,}"),
             ("reward model", result.reward_model), ("interval", f"{1 - result.alpha:.0%}, {result.ci}"),
             ("workers", result.workers), ("seconds", f"{result.seconds:.1f}")]
    items += [(f"candidate: {c.name}", c.args) for c in result.candidates]
    return "<h2>Run</h2>" + table(["", ""], [[k, v] for k, v in items])


def _ablation(result: AblationResult) -> str:
    rows = result.rows
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.45 * len(rows)))
    for y, row in enumerate(reversed(rows)):
        ax.errorbar([row.drop.value], [y], xerr=_err(row.drop), fmt="o", color=CANDIDATE, capsize=4)
    ax.set_yticks(range(len(rows)), [f"{r.initial}: {', '.join(r.names)}" for r in reversed(rows)], fontsize=8)
    ax.axvline(0.0, color=BASELINE, linewidth=1)
    ax.set_xlabel("drop in DR value without the namespace (paired CI)")
    ax.grid(axis="x", alpha=0.3)
    base = result.base.value
    body = [f"<p>Base policy <code>{escape(result.base.name)}</code>: DR <b>{_num(base.value)}</b> "
            f"(CI {_num(base.lower)} … {_num(base.upper)}) on {result.evaluation.events:,} events.</p>",
            figure("Drop in value without each namespace", svg(fig),
                   "A large drop: the namespace carries value; around zero: the policy does as well without it."),
            table(["namespace", "ignored with", "DR without", "drop", "drop CI (paired)", "warning"],
                  [[Raw(f"<code>{escape(r.initial)}</code> ({escape(', '.join(r.names))})"), f"--ignore {r.initial}",
                    _num(r.result.value.value), _num(r.drop.value), _ci(r.drop), r.warning or ""] for r in rows]),
            _details(result.evaluation)]
    return page("nextbest replay: namespace ablation", "\n".join(body))


def _err(e: Estimate) -> list[list[float]]:
    low = e.value - e.lower if math.isfinite(e.lower) else 0.0
    high = e.upper - e.value if math.isfinite(e.upper) else 0.0
    return [[max(low, 0.0)], [max(high, 0.0)]]


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _num(x: float | None, digits: int = 3) -> str | None:
    return None if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


def _pct(x: float | None) -> str | None:
    return None if x is None or not math.isfinite(x) else f"{x:.0%}"


def _ci(e: Estimate) -> str | None:
    return None if not (math.isfinite(e.lower) and math.isfinite(e.upper)) else f"{e.lower:.3f} … {e.upper:.3f}"


def _value(e: Estimate | None) -> Any:
    return None if e is None else _num(e.value)


_NOTES = Raw("""<h2>Reading this</h2><ul class="note">
<li>A candidate's value is what deploying that learner from scratch would have earned on this traffic:
progressive validation predicts each event before learning from it, so early mistakes count.</li>
<li>DR (doubly robust) is the headline: the reward model's prediction corrected by the importance-weighted error on
the logged action. IPS and SNIPS use only the propensities, DM only the model; agreement is reassuring.</li>
<li>ESS is the effective sample size of the importance weights, matched the share of events where the policy could
have chosen the logged action: a small ESS means a wide, fragile estimate.</li>
<li>A best single offer is valued on the events where it was a candidate only.</li>
</ul>""")
