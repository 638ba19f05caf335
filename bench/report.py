"""The benchmark's terminal report: one row per phase, the ratios, the targets, and the
profile breakdowns when there are any."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\nnextbest bench {result['timestamp']}: {m['nproc']} x {m['cpu_model']}, Python {m['python']}, "
          f"{result['settings']['layout']}")
    header = ("phase", "rps", "p50 ms", "p99 ms", "srv cpu", "srv us/req", "redis us/req", "client cpu",
              "others", "errors")
    rows = []
    for name, p in result["phases"].items():
        lat = p["latency_ms"]["from_schedule"] if p["tool"] == "openloop.py" else p["latency_ms"]
        rps = p["rps"] if p["tool"] == "wrk" else p.get("achieved_rate")
        if p["tool"] == "wrk":
            errors = p["non_2xx"] + p["socket_errors"]
        else:
            errors = p["sent"] - sum(v for k, v in p["status_counts"].items() if k.startswith("2"))
        rows.append((name, fmt(rps, 0), fmt(lat.get("p50")), fmt(lat.get("p99")),
                     fmt(p.get("server_cpu_util")), fmt(p.get("server_cpu_us_per_request"), 0),
                     fmt(p.get("redis_cpu_us_per_request"), 0), fmt(p.get("client_cpu_util")),
                     fmt(p.get("server_core_foreign_util", p.get("foreign_cpu_util"))) + ("!" if p.get("noisy") else ""),
                     str(errors)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % widths[0] if i == 0 else "{:>%d}" % w for i, w in enumerate(widths))
    print(line.format(*header))
    for row in rows:
        print(line.format(*row))
    s = result["summary"]
    rew = result["phases"]["reward_max"]
    print(f"\nreference {s['reference_rps']:.0f} rps (runs {s['reference_rps_runs']}); "
          f"decide {s['decide_rps']:.0f} rps = {s['decide_vs_reference']:.0%} of reference; "
          + (f"three-slot decide {s['decide_slots_rps']:.0f} rps = {s['decide_slots_vs_reference']:.0%} of reference, "
             f"{s['decide_slots_vs_decide']:.2f}x one-slot; " if "decide_slots_rps" in s else "")
          + f"reward {s['reward_rps']:.0f} rps = {s['reward_vs_reference']:.0%} of reference, "
          f"{s['reward_vs_decide']:.2f}x decide")
    exhausted = (f"the ids ran out after {rew['duration_s']:.1f}s"
                 + (f", all learned and logged at {rew['caught_up_s']:.1f}s" if rew.get("caught_up_s") else "")
                 if rew["ids_exhausted"] else "ids left over")
    print(f"reward phase: learner backlog at end {rew['learn_backlog_at_end']}, log backlog "
          f"{rew['log_backlog_at_end']}, drained in {rew['drain_seconds']}s -> sustained {s['reward_rps_sustained']:.0f} "
          f"rps ({s['reward_sustained_vs_decide']:.2f}x decide: rewards / time until all were learned); {exhausted}")
    print(f"latency at {s['latency_rate']:.0f}/s (open loop): decide p50 {fmt(s['decide_p50_ms'])} ms, "
          f"p99 {fmt(s['decide_p99_ms'])} ms from the due time ({fmt(s['decide_p99_ms_from_send'])} ms from the send); "
          f"reward p50 {fmt(s['reward_p50_ms'])} / p99 {fmt(s['reward_p99_ms'])} ms; "
          f"reference p50 {fmt(s['reference_p50_ms'])} / p99 {fmt(s['reference_p99_ms'])} ms")
    light_load_tax(result["phases"])
    print(f"closed loop, 1 connection: decide {fmt(s['decide_c1_rps'], 0)} rps, p50 {fmt(s['decide_c1_p50_ms'])} / "
          f"p99 {fmt(s['decide_c1_p99_ms'])} ms; reference p50 {fmt(s['reference_c1_p50_ms'])} / "
          f"p99 {fmt(s['reference_c1_p99_ms'])} ms")
    for name, p in result["phases"].items():
        if "gc" in p:
            g = p["gc"]["generations"]
            print(f"gc during {name}: " + ", ".join(
                f"gen{k} {v['count']}x max {v['max_ms']:.1f} ms (>5 ms: {v['over_5ms']})" for k, v in g.items()))
    behind = [name for name, p in result["phases"].items() if p.get("client_kept_up") is False]
    if behind:
        print(f"WARNING: the open-loop client fell behind its target rate in {', '.join(behind)}: "
              "those latencies include the client's own queueing")
    noisy = [name for name, p in result["phases"].items() if p.get("noisy")]
    if noisy:
        print(f"WARNING: other processes used the server's CPU during {', '.join(noisy)} (column 'others', "
              "in cores): those figures are low; rerun on a quiet machine")
    for name, phase in result["phases"].items():   # --stalls: the loop stopped inside the process
        stalls = (phase.get("gc") or {}).get("stalls")
        if stalls:
            worst = max(stalls, key=lambda st: st.get("ms", 0))
            print(f"event-loop stops over 10 ms in {name}: {len(stalls)}, longest {worst.get('ms')} ms in "
                  + " < ".join(reversed(worst.get("where") or ["?"])))
    forks = [f"{name} ({phase['redis_latest_fork_ms']} ms)" for name, phase in result["phases"].items()
             if phase.get("redis_latest_fork_ms") is not None]
    if forks:   # an AOF rewrite: Redis stops for the fork, and every request waiting on it too
        print("redis-server forked (AOF rewrite) during: " + ", ".join(forks))
    print("targets: " + "; ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in result["targets"].items()))
    for name, prof in result["profile"].items():
        print(f"\nprofile: {name} ({prof['samples']} samples, {prof['file']})")
        print("  by activity:")
        for item in prof["by_activity"]:
            print(f"    {item['percent']:5.1f}%  {item['frame']}")
        print("  by component (event-loop thread only):")
        for item in prof["by_component"]:
            print(f"    {item['percent']:5.1f}%  {item['frame']}")
        print("  top frames by own time:")
        for item in prof["top_own"][:15]:
            print(f"    {item['percent']:5.1f}%  {item['frame']}")


def light_load_tax(phases: dict[str, Any]) -> None:
    """The bare reference's CPU per request at the latency rate against at its max: how
    much dearer this machine makes a request that arrives alone (bench/coldpath.py)."""
    light = phases.get("reference_latency", {}).get("server_cpu_us_per_request")
    full = [phases[name].get("server_cpu_us_per_request") for name in ("reference_max", "reference_max_again")
            if name in phases]
    full = [us for us in full if us]
    if light and full:
        base = sum(full) / len(full)
        print(f"light-load tax: the bare reference used {light:.0f} µs of CPU per request at the latency rate, "
              f"{base:.0f} µs at its max (x{light / base:.1f})")
