// nextbest UI: the marketing dashboard. Deployment-wide counters by offer, channel and
// policy (/ui/api/analytics), the model (/v1/stats), caps and consumer lag
// (/ui/api/overview), and the offer editor over the admin API (PATCH /v1/offers/{id}).
"use strict";

(() => {
  const { h, api, fmt, t } = NB;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 5000;
  const CAPS = [["accepts_per_day", "accepts/day"], ["accepts_total", "accepts total"],
                ["impressions_per_day", "impr./day"], ["impressions_total", "impr. total"]];
  const CAP_NAMES = { accepts_per_day: "accepts per day", accepts_total: "accepts in total",
                      impressions_per_day: "impressions per day", impressions_total: "impressions in total" };
  const PERIODS = { "today (UTC)": "today (UTC)", "in total": "in total" };
  let windowName = localStorage.getItem("nextbest.window") || "1h";
  let names = {};
  let catalogVersion = null;
  const rows = new Map();   // offer id → {tr, dirty}

  const money = (x) => fmt.num(x, 2);
  // an offer by its name in the page's language (the catalog's locales), else its own
  const named = (offer) => (offer.locales && offer.locales[NB_I18N.lang] && offer.locales[NB_I18N.lang].name) || offer.name;
  const CHANNELS = { contact_center: "Contact center", web: "Web self-care", search: "Search", ussd: "USSD" };
  const channelName = (code) => (code in CHANNELS ? t(CHANNELS[code]) : code);
  const table = (node, head, body) => node.replaceChildren(
    h("thead", {}, h("tr", {}, head.map(([label, cls]) => h("th", { class: cls || "", text: label })))),
    h("tbody", {}, body));
  const td = (text, cls) => h("td", { class: cls || "", text });

  function metricsRow(label, m) {
    return h("tr", {}, td(label), td(fmt.num(m.decisions), "num"), td(fmt.num(m.accepts), "num"),
             td(fmt.pct(m.acceptance_rate), "num"), td(money(m.value_per_decision), "num"));
  }
  const METRIC_HEAD = () => [[t("decisions"), "num"], [t("accepts"), "num"], [t("acceptance"), "num"],
                             [t("value/decision"), "num"]];

  const pp = () => ` ${t("pp")}`;   // percentage points

  function renderAnalytics(a) {
    const totals = a.totals;
    $("kpi-decisions").textContent = fmt.num(totals.decisions);
    $("kpi-decisions-sub").textContent = t("{accepted} accepted · {dropped} dropped",
                                           { accepted: fmt.num(totals.accepts), dropped: fmt.num(totals.dropped) });
    $("kpi-acceptance").textContent = fmt.pct(totals.acceptance_rate);
    $("kpi-acceptance-sub").textContent = t("lift {lift}", { lift: fmt.signed(a.lift.acceptance_rate.difference, 1, 100, pp()) });
    $("kpi-value").textContent = money(totals.value_per_decision);
    $("kpi-value-sub").textContent = t("total value {value}", { value: fmt.num(totals.value, 0) });
    const v = a.lift.value_per_decision;
    const lift = $("kpi-lift");
    lift.textContent = fmt.signed(v.difference, 2);
    lift.className = "value " + (v.lower > 0 ? "pos" : v.upper < 0 ? "neg" : "");
    $("kpi-lift-sub").textContent = v.lower === null
      ? t("model {model} · control {control} decisions", { model: fmt.num(v.n_model), control: fmt.num(v.n_control) })
      : t("95% CI [{lower}, {upper}]", { lower: fmt.signed(v.lower, 2), upper: fmt.signed(v.upper, 2) });

    const timeFormat = a.resolution === "minute" ? fmt.clock : fmt.day;
    NB.lineChart($("chart-acceptance"), a.series.map((p) => ({ t: p.t, y: p.acceptance_rate })),
                 { format: (x) => fmt.pct(x, 0), label: t("Acceptance rate per period"), timeFormat,
                   empty: t("no settled decisions in this window yet") });
    NB.lineChart($("chart-value"), a.series.map((p) => ({ t: p.t, y: p.value_per_decision })),
                 { format: (x) => fmt.num(x, x > 0 && x < 1 ? 2 : x < 10 ? 1 : 0), color: "#15803d",
                   label: t("Value per decision per period"), timeFormat, empty: t("no settled decisions in this window yet") });
    NB.barChart($("chart-offers"), a.by_offer.map((o) => ({
      label: names[o.offer] || o.offer, value: o.decisions,
      text: `${fmt.num(o.decisions)} · ${fmt.pct(o.acceptance_rate, 0)} · ${money(o.value_per_decision)}` })),
      { label: t("Decisions by offer"), empty: t("no settled decisions in this window yet") });
    table($("by-offer"), [[t("offer")], ...METRIC_HEAD()], a.by_offer.map((o) => metricsRow(names[o.offer] || o.offer, o)));
    table($("by-channel"), [[t("channel")], ...METRIC_HEAD()], a.by_channel.map((c) => metricsRow(channelName(c.channel), c)));

    const acc = a.lift.acceptance_rate;
    NB.intervalChart($("chart-lift"), [
      { label: t("acceptance (pp)"), value: acc.difference, lower: acc.lower, upper: acc.upper,
        format: (x) => fmt.signed(x, 1, 100, pp()) },
      { label: t("value/decision"), value: v.difference, lower: v.lower, upper: v.upper, format: (x) => fmt.signed(x, 2) }],
      { label: t("Lift over control with its 95% interval"), empty: t("needs settled decisions in both groups") });
    const liftRow = (label, m, f, scale, unit) => h("tr", { dataset: { metric: label } }, td(label), td(f(m.model), "num"),
      td(f(m.control), "num"), td(fmt.signed(m.difference, 2, scale, unit), "num"),
      td(m.lower === null ? "–" : `[${fmt.signed(m.lower, 2, scale, unit)}, ${fmt.signed(m.upper, 2, scale, unit)}]`, "num ci"),
      td(m.relative === null ? "–" : fmt.signed(m.relative, 1, 100, "%"), "num"));
    table($("lift"), [[t("metric")], [t("model"), "num"], [t("control"), "num"], [t("difference"), "num"],
                      [t("95% CI"), "num"], [t("relative"), "num"]],
          [liftRow(t("acceptance rate"), acc, (x) => fmt.pct(x), 100, pp()), liftRow(t("value per decision"), v, money, 1, "")]);
  }

  function renderModel(stats, overview) {
    const c = stats.counters, m = stats.model, lag = overview.consumers;
    const lagText = (name) => {
      const g = lag[name];
      if (!g) return "–";
      const behind = (g.undelivered || 0) + g.pending;
      return t("{n} entries · {age} behind", { n: fmt.num(behind), age: fmt.age(g.behind_seconds) });
    };
    const facts = [
      ["Model version", m.version], ["Examples learned", fmt.num(m.examples_learned)],
      ["Checkpoint", m.checkpoint_age_seconds === null || m.checkpoint_age_seconds === undefined ? t("none yet")
        : t("#{n} · {age} old", { n: m.checkpoint_version, age: fmt.age(m.checkpoint_age_seconds) })],
      ["Learner", stats.learner.leading ? t("this process (lease holder)") : t("another process")],
      ["Learner lag", lagText("learner")], ["Decision log lag", lagText("log")], ["Analytics lag", lagText("analytics")],
      ["Decisions", fmt.num(c.decisions || 0)], ["Pending rewards", fmt.num(overview.pending)],
      ["Joined / defaulted / dropped", `${fmt.num(c.events_joined || 0)} / ${fmt.num(c.events_defaulted || 0)} / ${fmt.num(c.events_dropped || 0)}`],
      ["Rewards late / duplicate", `${fmt.num(c.rewards_late || 0)} / ${fmt.num(c.rewards_duplicate || 0)}`],
    ];
    $("model").replaceChildren(...facts.flatMap(([k, val]) => [h("dt", { text: t(k) }), h("dd", { text: String(val) })]));

    table($("caps"), [[t("offer")], [t("cap")], [t("used"), "num"], [t("limit"), "num"], [t("share of the cap")]],
      overview.caps.length ? overview.caps.map((cap) => {
        const used = cap.used + cap.pending;
        const share = cap.limit ? Math.min(1, used / cap.limit) : 1;
        const bar = h("div", { class: share >= 1 ? "full" : "" });
        bar.style.width = `${(share * 100).toFixed(1)}%`;
        const meter = h("div", { class: "meter", role: "meter", "aria-valuemin": "0", "aria-valuemax": String(cap.limit),
                                 "aria-valuenow": String(Math.min(used, cap.limit)),
                                 "aria-label": t("{name}: {cap}", { name: names[cap.offer_id] || cap.name, cap: t(CAP_NAMES[cap.cap] || cap.cap) }) }, bar);
        return h("tr", {}, td(names[cap.offer_id] || cap.name), td(t(CAP_NAMES[cap.cap] || cap.cap)),
          td(`${fmt.num(cap.used)}${cap.pending ? " " + t("(+{n} pending)", { n: fmt.num(cap.pending) }) : ""}`, "num"),
          td(fmt.num(cap.limit), "num"), h("td", {}, meter));
      }) : [h("tr", {}, h("td", { colspan: 5, class: "muted", text: t("No offer has a cap.") }))]);
  }

  // -- the offer editor ---------------------------------------------------------------
  let fields = 0;
  function field(name, input) {   // the field's message is read with it (aria-describedby)
    const id = `field-error-${++fields}`;
    input.setAttribute("aria-describedby", id);
    return h("div", {}, input, h("div", { class: "field-error", id, dataset: { errorFor: name } }));
  }

  function offerRow(offer) {
    const tr = h("tr", { class: offer.enabled === false ? "off" : "", dataset: { offerId: offer.id } });
    const state = { tr, dirty: false };
    const mark = () => { state.dirty = true; };
    const toggle = h("input", { type: "checkbox", class: "switch", checked: offer.enabled !== false, role: "switch",
                                title: t("on/off"), "aria-label": t("{name}: on/off", { name: named(offer) }),
                                dataset: { field: "enabled" } });
    toggle.addEventListener("change", () => save(offer.id, { enabled: toggle.checked }, state));
    // every field is named with its offer (a screen reader reads "Home Cities: value"), and its message is tied to it
    const value = h("input", { type: "text", inputmode: "decimal", value: String(offer.value ?? 1), dataset: { field: "value" },
                               "aria-label": t("{name}: value", { name: named(offer) }), oninput: mark });
    const caps = CAPS.map(([name, label]) => field(`caps.${name}`, h("input", {
      type: "text", inputmode: "numeric", placeholder: t("none"), title: t(label),
      "aria-label": t("{name}: cap: {cap}", { name: named(offer), cap: t(label) }),
      value: offer.caps && offer.caps[name] !== undefined ? String(offer.caps[name]) : "", dataset: { field: `caps.${name}` },
      oninput: mark })));
    const rule = h("textarea", { rows: 3, translate: "no", value: offer.eligibility || "", placeholder: t("everyone"), dataset: { field: "eligibility" },
                                 "aria-label": t("{name}: eligibility rule", { name: named(offer) }), oninput: mark });
    const status = h("div", { class: "status muted", role: "status" });
    const button = h("button", { class: "btn small", type: "button", text: t("Save"), dataset: { action: "save" },
                                 "aria-label": t("Save {name}", { name: named(offer) }) });
    button.addEventListener("click", () => {
      const patch = { value: value.value.trim() === "" ? "" : parse(value.value), eligibility: rule.value.trim() || null, caps: {} };
      CAPS.forEach(([name], i) => { patch.caps[name] = parse(caps[i].querySelector("input").value); });
      save(offer.id, patch, state);
    });
    tr.append(h("td", {}, toggle),
              h("td", {}, h("b", { text: named(offer) }),
                // the id and category are codes, as the API and the rules spell them
                h("div", { class: "id", translate: "no", text: `${offer.id} · ${offer.category || "—"}` })),
              h("td", {}, field("value", value)),
              ...caps.map((cap) => h("td", {}, cap)),
              h("td", {}, field("eligibility", rule)),
              h("td", {}, button, status, h("div", { class: "field-error", role: "alert", dataset: { errorFor: "*" } })));
    state.status = status;
    return state;
  }

  // The API's refusal in words a marketer reads, in the page's language: the validator's
  // "Expected `float` >= 0.0" is for programs. A rule keeps the parser's message (and its caret).
  function refusal(error) {
    const field = error.field || "";
    if (field === "value") return t("The value is a number, 0 or more.");
    if (field.startsWith("caps.")) {
      return t("A cap is a whole number, 0 or more; leave it empty for no cap.");
    }
    if (field === "eligibility") return t("This rule cannot be read:") + "\n" + error.message;
    return error.message;
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
    tr.querySelectorAll(".invalid").forEach((e) => { e.classList.remove("invalid"); e.removeAttribute("aria-invalid"); });
    status.textContent = t("saving…");
    const result = await api("PATCH", `/v1/offers/${encodeURIComponent(id)}`, patch);
    if (result.ok) {
      state.dirty = false;
      catalogVersion = result.data.version;
      const fresh = offerRow(result.data.offer);
      rows.set(id, fresh);
      tr.replaceWith(fresh.tr);
      fresh.status.textContent = t("saved · catalog v{version}", { version: result.data.version });
      return;
    }
    status.textContent = "";
    const error = result.data && result.data.error;
    const name = error && error.field ? error.field : "*";
    const target = tr.querySelector(`[data-error-for="${CSS.escape(name)}"]`) || tr.querySelector('[data-error-for="*"]');
    target.textContent = error ? refusal(error) : NB.errorText(result);
    const input = tr.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (input) {
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    if ("enabled" in patch && Object.keys(patch).length === 1) {
      tr.querySelector('[data-field="enabled"]').checked = !patch.enabled;
    }
  }

  function renderOffers(catalog) {
    names = Object.fromEntries(catalog.offers.map((o) => [o.id, named(o)]));
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
    table($("offers"), [[t("on")], [t("offer")], [t("value")], ...CAPS.map(([, label]) => [t("cap: {cap}", { cap: t(label) })]),
                        [t("eligibility rule")], [t("save")]],
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
    $("updated").textContent = t("updated {time} · refreshes every {n} s", { time: fmt.time(Date.now()), n: REFRESH_MS / 1000 });
  }

  async function loop() {
    try { await refresh(); } finally { setTimeout(loop, REFRESH_MS); }
  }

  function pickWindow(name) {
    windowName = name;
    localStorage.setItem("nextbest.window", name);
    document.querySelectorAll("#windows button").forEach((b) => {
      b.classList.toggle("on", b.dataset.window === name);
      b.setAttribute("aria-pressed", String(b.dataset.window === name));
    });
  }

  async function start() {
    NB_I18N.translatePage();
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
