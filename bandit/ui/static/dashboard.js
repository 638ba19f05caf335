// nextbest UI: the marketing dashboard. Deployment-wide counters by offer, channel and
// policy (/ui/api/analytics), the model (/v1/stats), caps and consumer lag
// (/ui/api/overview), and the offer editor over the admin API (PATCH /v1/offers/{id}).
"use strict";

(() => {
  const { h, api, fmt } = NB;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 5000;
  const CAPS = [["accepts_per_day", "accepts/day"], ["accepts_total", "accepts total"],
                ["impressions_per_day", "impr./day"], ["impressions_total", "impr. total"]];
  let windowName = localStorage.getItem("nextbest.window") || "1h";
  let names = {};
  let catalogVersion = null;
  const rows = new Map();   // offer id → {tr, dirty}

  const money = (x) => fmt.num(x, 2);
  const table = (node, head, body) => node.replaceChildren(
    h("thead", {}, h("tr", {}, head.map(([label, cls]) => h("th", { class: cls || "", text: label })))),
    h("tbody", {}, body));
  const td = (text, cls) => h("td", { class: cls || "", text });

  function metricsRow(label, m) {
    return h("tr", {}, td(label), td(fmt.num(m.decisions), "num"), td(fmt.num(m.accepts), "num"),
             td(fmt.pct(m.acceptance_rate), "num"), td(money(m.value_per_decision), "num"));
  }
  const METRIC_HEAD = [["decisions", "num"], ["accepts", "num"], ["acceptance", "num"], ["value/decision", "num"]];

  function renderAnalytics(a) {
    const t = a.totals;
    $("kpi-decisions").textContent = fmt.num(t.decisions);
    $("kpi-decisions-sub").textContent = `${fmt.num(t.accepts)} accepted · ${fmt.num(t.dropped)} dropped`;
    $("kpi-acceptance").textContent = fmt.pct(t.acceptance_rate);
    $("kpi-acceptance-sub").textContent = `lift ${fmt.signed(a.lift.acceptance_rate.difference, 1, 100, " pp")}`;
    $("kpi-value").textContent = money(t.value_per_decision);
    $("kpi-value-sub").textContent = `total value ${fmt.num(t.value, 0)}`;
    const v = a.lift.value_per_decision;
    const lift = $("kpi-lift");
    lift.textContent = fmt.signed(v.difference, 2);
    lift.className = "value " + (v.lower > 0 ? "pos" : v.upper < 0 ? "neg" : "");
    $("kpi-lift-sub").textContent = v.lower === null ? `model ${fmt.num(v.n_model)} · control ${fmt.num(v.n_control)} decisions`
      : `95% CI [${fmt.signed(v.lower, 2)}, ${fmt.signed(v.upper, 2)}]`;

    const timeFormat = a.resolution === "minute" ? fmt.clock : fmt.day;
    NB.lineChart($("chart-acceptance"), a.series.map((p) => ({ t: p.t, y: p.acceptance_rate })),
                 { format: (x) => fmt.pct(x, 0), label: "acceptance rate", timeFormat });
    NB.lineChart($("chart-value"), a.series.map((p) => ({ t: p.t, y: p.value_per_decision })),
                 { format: (x) => fmt.num(x, x > 0 && x < 1 ? 2 : x < 10 ? 1 : 0), color: "#15803d", label: "value per decision", timeFormat });
    NB.barChart($("chart-offers"), a.by_offer.map((o) => ({
      label: names[o.offer] || o.offer, value: o.decisions,
      text: `${fmt.num(o.decisions)} · ${fmt.pct(o.acceptance_rate, 0)} · ${money(o.value_per_decision)}` })),
      { label: "decisions by offer", empty: "no settled decisions in this window yet" });
    table($("by-offer"), [["offer"], ...METRIC_HEAD], a.by_offer.map((o) => metricsRow(names[o.offer] || o.offer, o)));
    table($("by-channel"), [["channel"], ...METRIC_HEAD], a.by_channel.map((c) => metricsRow(c.channel, c)));

    const acc = a.lift.acceptance_rate;
    NB.intervalChart($("chart-lift"), [
      { label: "acceptance (pp)", value: acc.difference, lower: acc.lower, upper: acc.upper,
        format: (x) => fmt.signed(x, 1, 100, " pp") },
      { label: "value/decision", value: v.difference, lower: v.lower, upper: v.upper, format: (x) => fmt.signed(x, 2) }]);
    const liftRow = (label, m, f, scale, unit) => h("tr", { dataset: { metric: label } }, td(label), td(f(m.model), "num"),
      td(f(m.control), "num"), td(fmt.signed(m.difference, 2, scale, unit), "num"),
      td(m.lower === null ? "–" : `[${fmt.signed(m.lower, 2, scale, unit)}, ${fmt.signed(m.upper, 2, scale, unit)}]`, "num"),
      td(m.relative === null ? "–" : fmt.signed(m.relative, 1, 100, "%"), "num"));
    table($("lift"), [["metric"], ["model", "num"], ["control", "num"], ["difference", "num"], ["95% CI", "num"],
                      ["relative", "num"]],
          [liftRow("acceptance rate", acc, (x) => fmt.pct(x), 100, " pp"), liftRow("value per decision", v, money, 1, "")]);
  }

  function renderModel(stats, overview) {
    const c = stats.counters, m = stats.model, lag = overview.consumers;
    const lagText = (name) => {
      const g = lag[name];
      if (!g) return "–";
      const behind = (g.undelivered || 0) + g.pending;
      return `${fmt.num(behind)} entries · ${fmt.age(g.behind_seconds)} behind`;
    };
    const facts = [
      ["Model version", m.version], ["Examples learned", fmt.num(m.examples_learned)],
      ["Checkpoint", `#${m.checkpoint_version} · ${fmt.age(m.checkpoint_age_seconds)} old`],
      ["Learner", stats.learner.leading ? "this process (lease holder)" : "another process"],
      ["Learner lag", lagText("learner")], ["Decision log lag", lagText("log")], ["Analytics lag", lagText("analytics")],
      ["Decisions", fmt.num(c.decisions || 0)], ["Pending rewards", fmt.num(overview.pending)],
      ["Joined / defaulted / dropped", `${fmt.num(c.events_joined || 0)} / ${fmt.num(c.events_defaulted || 0)} / ${fmt.num(c.events_dropped || 0)}`],
      ["Rewards late / duplicate", `${fmt.num(c.rewards_late || 0)} / ${fmt.num(c.rewards_duplicate || 0)}`],
    ];
    $("model").replaceChildren(...facts.flatMap(([k, val]) => [h("dt", { text: k }), h("dd", { text: String(val) })]));

    table($("caps"), [["offer"], ["cap"], ["used", "num"], ["limit", "num"], [""]],
      overview.caps.length ? overview.caps.map((cap) => {
        const used = cap.used + cap.pending;
        const share = cap.limit ? Math.min(1, used / cap.limit) : 1;
        const bar = h("div", { class: share >= 1 ? "full" : "" });
        bar.style.width = `${(share * 100).toFixed(1)}%`;
        return h("tr", {}, td(cap.name), td(`${cap.cap.replaceAll("_", " ")}`),
          td(`${fmt.num(cap.used)}${cap.pending ? ` (+${fmt.num(cap.pending)} pending)` : ""}`, "num"),
          td(fmt.num(cap.limit), "num"), h("td", {}, h("div", { class: "meter" }, bar)));
      }) : [h("tr", {}, h("td", { colspan: 5, class: "muted", text: "No offer has a cap." }))]);
  }

  // -- the offer editor ---------------------------------------------------------------
  function field(name, input) {
    return h("div", {}, input, h("div", { class: "field-error", dataset: { errorFor: name } }));
  }

  function offerRow(offer) {
    const tr = h("tr", { class: offer.enabled === false ? "off" : "", dataset: { offerId: offer.id } });
    const state = { tr, dirty: false };
    const mark = () => { state.dirty = true; };
    const toggle = h("input", { type: "checkbox", class: "switch", checked: offer.enabled !== false,
                                title: "on/off", "aria-label": `${offer.name} on/off`, dataset: { field: "enabled" } });
    toggle.addEventListener("change", () => save(offer.id, { enabled: toggle.checked }, state));
    const value = h("input", { type: "text", inputmode: "decimal", value: String(offer.value ?? 1), dataset: { field: "value" },
                               oninput: mark });
    const caps = CAPS.map(([name, label]) => field(`caps.${name}`, h("input", {
      type: "text", inputmode: "numeric", placeholder: "none", title: label, "aria-label": label,
      value: offer.caps && offer.caps[name] !== undefined ? String(offer.caps[name]) : "", dataset: { field: `caps.${name}` },
      oninput: mark })));
    const rule = h("textarea", { rows: 3, value: offer.eligibility || "", placeholder: "everyone", dataset: { field: "eligibility" },
                                 oninput: mark });
    const status = h("div", { class: "status muted" });
    const button = h("button", { class: "btn small", type: "button", text: "Save", dataset: { action: "save" } });
    button.addEventListener("click", () => {
      const patch = { value: value.value.trim() === "" ? "" : parse(value.value), eligibility: rule.value.trim() || null, caps: {} };
      CAPS.forEach(([name], i) => { patch.caps[name] = parse(caps[i].querySelector("input").value); });
      save(offer.id, patch, state);
    });
    tr.append(h("td", {}, toggle),
              h("td", {}, h("b", { text: offer.name }), h("div", { class: "id", text: `${offer.id} · ${offer.category || "—"}` })),
              h("td", {}, field("value", value)),
              ...caps.map((cap) => h("td", {}, cap)),
              h("td", {}, field("eligibility", rule)),
              h("td", {}, button, status, h("div", { class: "field-error", dataset: { errorFor: "*" } })));
    state.status = status;
    return state;
  }

  // Numbers go as numbers; anything else goes as typed, so the API's validation names it.
  function parse(text) {
    const t = text.trim();
    if (t === "") return null;
    return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
  }

  async function save(id, patch, state) {
    const { tr, status } = state;
    tr.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
    tr.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
    status.textContent = "saving…";
    const result = await api("PATCH", `/v1/offers/${encodeURIComponent(id)}`, patch);
    if (result.ok) {
      state.dirty = false;
      catalogVersion = result.data.version;
      const fresh = offerRow(result.data.offer);
      rows.set(id, fresh);
      tr.replaceWith(fresh.tr);
      fresh.status.textContent = `saved · catalog v${result.data.version}`;
      return;
    }
    status.textContent = "";
    const error = result.data && result.data.error;
    const name = error && error.field ? error.field : "*";
    const target = tr.querySelector(`[data-error-for="${CSS.escape(name)}"]`) || tr.querySelector('[data-error-for="*"]');
    target.textContent = error ? error.message : NB.errorText(result);
    const input = tr.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (input) input.classList.add("invalid");
    if ("enabled" in patch && Object.keys(patch).length === 1) {
      tr.querySelector('[data-field="enabled"]').checked = !patch.enabled;
    }
  }

  function renderOffers(catalog) {
    names = Object.fromEntries(catalog.offers.map((o) => [o.id, o.name]));
    if (catalog.version === catalogVersion) return;
    catalogVersion = catalog.version;
    const tbody = h("tbody", {});
    for (const offer of catalog.offers) {
      const kept = rows.get(offer.id);
      const state = kept && kept.dirty ? kept : offerRow(offer);
      rows.set(offer.id, state);
      tbody.append(state.tr);
    }
    for (const id of [...rows.keys()]) if (!names[id]) rows.delete(id);
    table($("offers"), [["on"], ["offer"], ["value"], ...CAPS.map(([, label]) => [`cap: ${label}`]), ["eligibility rule"], [""]],
          [...tbody.children]);
  }

  async function refresh() {
    const [analytics, stats, overview, offers] = await Promise.all([
      api("GET", `/ui/api/analytics?window=${windowName}`), api("GET", "/v1/stats"),
      api("GET", "/ui/api/overview"), api("GET", "/v1/offers")]);
    const failed = [analytics, stats, overview, offers].find((r) => !r.ok);
    const banner = $("offers-error");
    if (offers.ok) renderOffers(offers.data);
    if (analytics.ok) renderAnalytics(analytics.data);
    if (stats.ok && overview.ok) renderModel(stats.data, overview.data);
    banner.classList.toggle("hidden", !failed);
    if (failed) banner.textContent = NB.errorText(failed);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
  }

  async function loop() {
    try { await refresh(); } finally { setTimeout(loop, REFRESH_MS); }
  }

  function pickWindow(name) {
    windowName = name;
    localStorage.setItem("nextbest.window", name);
    document.querySelectorAll("#windows button").forEach((b) => b.classList.toggle("on", b.dataset.window === name));
  }

  async function start() {
    await NB.loadSession("admin");
    NB.topbar("dashboard");
    document.querySelectorAll("#windows button").forEach((b) => b.addEventListener("click", () => {
      pickWindow(b.dataset.window);
      refresh();
    }));
    pickWindow(windowName);
    loop();
  }

  start();
})();
