// nextbest UI: the agent desktop. Who is calling, then the next best action and two
// alternatives from a real logged decision; each shown offer's Accept/Decline posts its own outcome.
"use strict";

(() => {
  const { h, api, fmt, t } = NB;
  const $ = (id) => document.getElementById(id);
  const USAGE = { long_distance_minutes: "Long-distance, min/month", international_minutes: "International, min/month",
                  roaming_days: "Roaming days/year", data_gb: "Mobile data, GB/month", sms_count: "SMS/month",
                  topups_30d: "Top-ups, 30 days" };
  const FACTS = [["tariff", "Tariff"], ["balance", "Balance"], ["arpu", "ARPU"], ["region", "Region"],
                 ["tenure_months", "Tenure, months"]];
  let lookedUp = "";
  let call = null;   // the decision on screen: {number, eventId}; its buttons answer for this caller only
  // what the caller said to each offer in this call (offer id → {outcome, name}), across its decisions
  let answers = new Map();
  let declineReasons = [];   // the catalog's "why not" list for a Decline: [{code, label}]
  let notNowPosted = false;  // the settings have a not_now outcome: "Not now" is posted as it
  let answersFor = "";
  const EXCLUDED = { owned: "already has it", rule: "not eligible", cap: "cap reached", disabled: "switched off",
                     channel: "not offered here", validity: "not valid today" };
  // what the agent reads when an answer cannot be recorded (the API's words name event ids)
  const REFUSED = {
    late_reward: "Too late to record this answer: the decision was closed when its wait for answers ended. " +
                 "If the caller is still on the line, ask for the next best action again.",
    unknown_event: "The service no longer knows this decision (it expired). Ask for the next best action again.",
    network: "The service cannot be reached: check the connection and press the button again.",
  };
  const SAID = { accept: ["Accepted", "ok"], decline: ["Declined", "bad"], later: ["Not now: call back", "later"] };
  const said = (outcome) => SAID[outcome === "not_now" ? "later" : outcome] || [outcome, ""];
  const EARLIER = { accept: "accepted earlier in this call", decline: "declined earlier in this call",
                    later: "the caller said \u201cnot now\u201d earlier in this call" };
  const PLACEHOLDER = { served: "The best offer for this caller appears here.",
                        alternatives: "The 2nd and 3rd best offers appear here: each has its own answer." };

  function number() { return $("subscriber").value.trim(); }

  // A field's message sits under it, is read with it (aria-describedby, in the HTML) and marks it invalid.
  const INPUTS = { subscriber: "subscriber", reason: "reason", reason_text: "reason-text" };
  function fieldError(field, message) {
    $(`${field}-error`).textContent = message || "";
    const input = $(INPUTS[field]);
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    input.classList.toggle("invalid", Boolean(message));
  }

  function showErrors(error) {
    for (const field of Object.keys(INPUTS)) fieldError(field, "");
    if (!error) return;
    const field = (error.field || "").replace(/^context\./, "");
    const target = field === "subscriber_id" ? "subscriber" : (field in { reason: 1, reason_text: 1 } ? field : null);
    if (target) {
      fieldError(target, error.message);
      $(INPUTS[target]).focus();   // the agent corrects it where the message is
    } else $("served").replaceChildren(h("div", { class: "notice error", role: "alert", text: error.message }));
  }

  // One call at a time: another number, a new call or a failed decision takes the
  // previous decision's offers (and their Accept/Decline) off the screen.
  function clearDecision(note) {
    call = null;
    $("served").dataset.eventId = "";
    $("served").replaceChildren(h("div", { class: "empty", text: note || t(PLACEHOLDER.served) }));
    $("alternatives").replaceChildren(h("div", { class: "empty", text: t(PLACEHOLDER.alternatives) }));
    $("excluded").textContent = "";
    $("left-out").textContent = "";   // live regions stay in the page, empty (hidden by CSS)
    $("decision-meta").textContent = "";
    $("reward-status").textContent = "";
  }

  function clearCaller() {
    lookedUp = "";
    $("caller").className = "muted";
    $("caller").removeAttribute("aria-busy");
    $("caller").replaceChildren(t("Enter the number to see who is calling."));
    $("contacts").replaceChildren(h("li", { class: "muted", text: t("None yet.") }));
  }

  function numberEdited() {
    if (call && number() !== call.number) {
      clearDecision(t("The offers for the previous caller were cleared: ask for the next best action for this caller."));
    }
    if (lookedUp && number() !== lookedUp) clearCaller();
  }

  function newCall() {
    answers = new Map();
    answersFor = "";
    $("contact-form").reset();
    showErrors(null);
    clearDecision();
    clearCaller();
    $("subscriber").focus();
  }

  async function lookUp(force) {
    const id = number();
    if (!id || (id === lookedUp && !force)) return;
    lookedUp = id;
    const box = $("caller");
    box.setAttribute("aria-busy", "true");   // a screen reader waits for the card, not the "looking up"
    if (!$("caller-number")) box.replaceChildren(h("span", { class: "spinner", "aria-hidden": "true" }), t("Looking up the caller…"));
    const result = await api("GET", `/ui/api/caller/${encodeURIComponent(id)}`);
    if (id !== number()) return;   // typed over meanwhile
    box.removeAttribute("aria-busy");
    const error = result.data && result.data.error;
    fieldError("subscriber", error && error.field === "subscriber_id" ? error.message : "");
    if (!result.ok) {
      if (error && error.field === "subscriber_id") clearCaller();
      else $("caller").replaceChildren(h("div", { class: "notice error", text: NB.errorText(result) }));
      return;
    }
    renderCaller(result.data);
    renderContacts(result.data.contacts);
  }

  function renderCaller(data) {
    const box = $("caller");
    const who = h("div", { class: "number", id: "caller-number", text: data.subscriber_id });
    if (!data.known) {
      box.classList.remove("muted");
      box.replaceChildren(who, h("div", { class: "notice" }, t("Unknown caller: no profile is stored for this number. "),
                                 t("The decision uses the call reason only.")));
      return;
    }
    const p = data.profile;
    const value = (key) => typeof p[key] === "number" ? fmt.plain(p[key]) : key === "region" ? fmt.title(p[key]) : String(p[key]);
    const facts = FACTS.filter(([key]) => p[key] !== undefined).flatMap(([key, label]) =>
      // profile values are shown as stored (tariff codes, regions): data, not the page's words
      [h("dt", { text: t(label) }), h("dd", { text: value(key), dataset: { fact: key }, translate: typeof p[key] === "number" ? null : "no" })]);
    const services = Array.isArray(p.services) ? p.services : [];
    const usage = Object.keys(p).filter((k) => k in USAGE || (!FACTS.some(([f]) => f === k) && k !== "services"));
    box.classList.remove("muted");
    box.replaceChildren(who,
      h("dl", { class: "facts" }, facts),
      h("label", { text: t("Active services") }),
      h("div", {}, services.length ? services.map((s) => (data.service_names || {})[s] ? h("span", { class: "chip", text: data.service_names[s] })
          : h("span", { class: "chip", translate: "no", text: s }))
        : h("span", { class: "muted", text: t("none") })),
      h("label", { text: t("Usage") }),
      h("table", { class: "table" }, h("tbody", {}, usage.map((k) =>
        h("tr", {}, h("td", { text: t(USAGE[k] || k) }), h("td", { class: "num", text: typeof p[k] === "number" ? fmt.plain(p[k]) : String(p[k]) }))))),
    );
  }

  function renderContacts(contacts) {
    const list = $("contacts");
    if (!contacts.length) { list.replaceChildren(h("li", { class: "muted", text: t("No contacts from this desktop yet.") })); return; }
    list.replaceChildren(...contacts.map((c) => {
      const outcome = c.state === "joined" ? (c.reward > 0 ? ["accepted", "ok"] : ["declined", "bad"]) : [c.state, ""];
      return h("li", {},
        h("div", { class: "row spread" }, h("b", { text: c.reason_label || t("Note only") }), h("span", { class: "muted small", text: fmt.when(c.ts) })),
        // the decision's state until the answers of its offers are known, then those answers
        h("div", { class: "small" }, t("offered {name} ", { name: c.offer_name }),
          c.answers ? null : h("span", { class: `badge ${outcome[1]}`, text: t(outcome[0]) })),
        c.reason_text ? h("div", { class: "small muted", text: `“${c.reason_text}”` }) : null,
        // what the caller said to each offer of that call (and why not, when the agent noted it)
        ...Object.values(c.answers || {}).map((a) => h("div", { class: "small answer", text: a.reason_label
          ? t("{name}: {said} \u2014 {why}", { name: a.name, said: t(said(a.outcome)[0]).toLowerCase(), why: a.reason_label })
          : t("{name}: {said}", { name: a.name, said: t(said(a.outcome)[0]).toLowerCase() }) })));
    }));
  }

  // What the model expects of the pitch: the chance of a yes and the value it makes on average;
  // while it has learned little the catalog's estimate weighs in, and the card says so.
  function expectation(offer, learned) {
    if (offer.acceptance === null || offer.acceptance === undefined) return null;
    const share = fmt.pct(offer.acceptance, offer.acceptance < 0.1 ? 1 : 0);
    const text = offer.expected_value === null || offer.expected_value === undefined
      ? t("Expected: {share} of callers like this accept", { share })
      : t("Expected: {share} of callers like this accept, {worth} of value per pitch on average", { share, worth: fmt.plain(offer.expected_value) });
    const basis = learned > 0 ? t("learned from {n} answers", { n: fmt.num(learned) })
      : t("the catalog's estimate: nothing learned yet");
    return h("div", { class: "expect", dataset: { acceptance: offer.acceptance } }, h("b", { text }), " ",
      h("span", { class: "muted", text: `(${basis})` }));
  }

  function offerCard(offer, learned) {
    const slot = offer.slot;
    const label = !offer.served ? t("not shown") : slot === 1 ? t("Offer now") : t("Slot {slot}: also pitch", { slot });
    const card = h("div", { class: offer.served ? "offer served" : "offer", dataset: { offerId: offer.offer_id, slot: slot || "" } },
      h("div", { class: "row spread" },
        h("span", { class: "rank", text: label }),
        h("span", { class: "row" },
          h("span", { class: `badge ${offer.policy}`, text: offer.policy === "control" ? t("control group") : t("model") }),
          h("span", { class: "badge", text: `p = ${fmt.prob(offer.probability)}` }))),
      h("div", { class: "row spread" }, h("h3", { class: "offer-name", text: offer.name }),
        h("span", { class: "value", text: offer.value === null ? "" : t("value {value}", { value: fmt.plain(offer.value) }) })),
      h("div", { class: "pitch", text: offer.description || "" }),
      offer.terms ? h("div", { class: "terms" }, h("b", { text: t("Terms:") }), " ", offer.terms) : null,
      expectation(offer, learned),
      h("ul", { class: "why" }, offer.why.map((line) => h("li", { text: line }))));
    const before = answers.get(offer.offer_id);
    if (before) card.append(h("div", { class: "earlier small", text: t("Note: {what}.", { what: t(EARLIER[before.outcome]) }) }));
    if (offer.served) {
      // every offer the agent pitches has its own outcome: the caller may take the 2nd and refuse the 1st
      card.append(h("div", { class: "row actions" },
        h("button", { class: "btn accept", id: `accept-${slot}`, type: "button", text: t("Accept"), onclick: () => reward(offer, "accept") }),
        h("button", { class: "btn decline", id: `decline-${slot}`, type: "button", text: t("Decline"), onclick: () => reward(offer, "decline") }),
        declineReasons.length ? h("select", { class: "why-not", id: `why-${slot}`, "aria-label": t("Why not? (optional, with Decline)") },
          h("option", { value: "", text: t("Why not?") }),
          ...declineReasons.map((r) => h("option", { value: r.code, text: r.label }))) : null,
        h("button", { class: "btn ghost", id: `later-${slot}`, type: "button", text: t("Not now / call back"), onclick: () => later(offer) }),
        h("span", { class: "outcome small", id: `outcome-${slot}` })));
    }
    return card;
  }

  // A pressed answer button is disabled, which would drop the keyboard focus to <body>:
  // it goes to the next offer still waiting for an answer, else to "New call".
  function focusNext(offer) {
    const card = document.querySelector(`.offer[data-slot="${offer.slot}"]`);
    const waiting = [...document.querySelectorAll(".offer .actions button:not(:disabled)")];
    const after = waiting.find((b) => card && (card.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING) &&
                                      !card.contains(b)) || waiting.find((b) => card && card.contains(b)) || waiting[0];
    (after || $("new-call")).focus();
  }

  function mark(offer, outcome) {
    const [word, tone] = SAID[outcome];
    $(`outcome-${offer.slot}`).textContent = t(word);
    $(`outcome-${offer.slot}`).className = `outcome small badge ${tone}`;
    const card = document.querySelector(`.offer[data-slot="${offer.slot}"]`);
    card.classList.remove("said-accept", "said-decline", "said-later");
    card.classList.add(`said-${outcome}`);
    answers.set(offer.offer_id, { outcome, name: offer.name });
  }

  // "Not now": posted as the outcome not_now when the settings have one (an answer like the others);
  // else no reward is posted (the decision waits for one, or its deadline) and the card says so.
  function later(offer) {
    if (!call) return;
    if (notNowPosted) return reward(offer, "not_now");
    mark(offer, "later");
    $(`later-${offer.slot}`).disabled = true;
    const status = $("reward-status");
    status.classList.remove("hidden", "error", "success");
    delete status.dataset.status;
    status.textContent = t("Not now: {name} — nothing is recorded; call back about it. It can still be accepted " +
                           "or declined in this call.", { name: offer.name });
    focusNext(offer);
  }

  async function reward(offer, outcome) {
    if (!call) return;
    const why = $(`why-${offer.slot}`);
    const buttons = [$(`accept-${offer.slot}`), $(`decline-${offer.slot}`), $(`later-${offer.slot}`), why].filter(Boolean);
    for (const button of buttons) button.disabled = true;
    // the number goes along: the service refuses an answer for an event decided for another caller
    const result = await api("POST", "/ui/api/agent/reward", {
      event_id: call.eventId, subscriber_id: number(), offer_id: offer.offer_id, outcome,
      decline_reason: outcome === "decline" && why && why.value ? why.value : null });
    const status = $("reward-status");
    status.classList.remove("hidden", "error", "success");
    if (!result.ok) {
      status.classList.add("error");
      const error = (result.data && result.data.error) || {};
      status.textContent = (REFUSED[error.code] && t(REFUSED[error.code])) || NB.errorText(result).replace(/'?\b[0-9a-f]{32}\b'?/g, "this decision");
      if (error.code in REFUSED && error.code !== "network") {   // the whole decision is closed: no card can answer
        for (const button of document.querySelectorAll(".offer .actions button")) button.disabled = true;
      } else if (result.status !== 409) for (const button of buttons) button.disabled = false;
      focusNext(offer);
      return;
    }
    const d = result.data;
    const word = t(said(outcome)[0]);
    mark(offer, outcome === "not_now" ? "later" : outcome);
    if (outcome === "accept") status.classList.add("success");   // a refusal recorded is news, not good news
    status.dataset.status = d.status;
    const when = d.status === "joined" ? t("the decision is complete and will be learned")
      : d.status === "stored" ? t("kept until the other offers have their answer (or the wait ends)") : d.status;
    status.textContent = d.duplicate ? t("{name}: this outcome was already recorded.", { name: offer.name })
      : t("{word}: {name} — {when}.", { word, name: offer.name, when }) +
        (outcome === "accept" ? t(" It will not be offered to this caller again.") : "");
    focusNext(offer);
    lookUp(true);
  }

  // After a decision the agent's eyes (and a screen reader) go to it: on a phone it is below the form.
  function showResult() {
    const card = $("result");
    const top = card.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight / 2) card.scrollIntoView({ block: "start" });
    $("result-title").focus({ preventScroll: true });
  }

  function excludedWhy(e) {
    if (e.reason !== "contact") return t(EXCLUDED[e.reason] || e.reason);
    if (NB_I18N.lang === "en") return e.detail;   // e.g. "declined recently (cooldown 30 days)"
    return t(/^declined recently/.test(e.detail) ? "declined recently" : "contacted enough for now");
  }

  // The next decision of the same call: which offers it left out because of this call's answers.
  function leftOut(excluded) {
    const out = { accept: [], decline: [] };
    for (const e of excluded) {
      const said = answers.get(e.offer_id);
      if (said && said.outcome in out) out[said.outcome].push(said.name);
    }
    const parts = [out.accept.length ? t("just accepted: {names}", { names: out.accept.join(", ") }) : "",
                   out.decline.length ? t("just declined: {names}", { names: out.decline.join(", ") }) : ""].filter(Boolean);
    $("left-out").textContent = parts.length ? t("Left out because the caller answered them in this call \u2014 {parts}.",
                                                 { parts: parts.join("; ") }) : "";
  }

  async function decide(event) {
    event.preventDefault();
    showErrors(null);
    $("reward-status").textContent = "";
    const button = $("decide");
    button.disabled = true;
    $("result").setAttribute("aria-busy", "true");
    $("decision-meta").replaceChildren(h("span", { class: "spinner", "aria-hidden": "true" }), t("Deciding…"));
    const asked = number();
    const result = await api("POST", "/ui/api/agent/decide", {
      subscriber_id: asked, reason: $("reason").value || null, reason_text: $("reason-text").value.trim() || null });
    button.disabled = false;
    $("result").removeAttribute("aria-busy");
    $("decision-meta").textContent = "";
    if (!result.ok) {
      clearDecision();
      showErrors(result.data && result.data.error ? result.data.error : { message: NB.errorText(result) });
      return;
    }
    const d = result.data;
    if (asked !== number()) return;   // the number changed while deciding: that decision is not this call's
    call = d.event_id ? { number: asked, eventId: d.event_id } : null;
    if (d.subscriber_id !== answersFor) { answers = new Map(); answersFor = d.subscriber_id; }
    const [first, ...rest] = d.offers;
    // the event id is for support (hover), not for the agent to read
    $("decision-meta").textContent = d.event_id ? t("Decided at {time} · model {version}",
                                                    { time: fmt.time(Date.now()), version: d.model_version }) : "";
    $("decision-meta").title = d.event_id ? t("event {id}", { id: d.event_id }) : "";
    $("served").dataset.eventId = d.event_id || "";
    $("served").replaceChildren(first ? offerCard(first, d.learned)
      : h("div", { class: "notice", text: t("No offer is eligible for this caller right now.") }));
    $("alternatives").replaceChildren(...(rest.length ? rest.map((o) => offerCard(o, d.learned))
      : [h("div", { class: "empty", text: t("No other eligible offer.") })]));
    const reasons = d.excluded.map((e) => `${e.name} (${excludedWhy(e)})`).join(", ");
    $("excluded").textContent = t("Chosen among {n} eligible offers; {m} excluded", { n: d.eligible, m: d.excluded_count }) +
      (reasons ? `: ${reasons}.` : ".");
    leftOut(d.excluded);
    showResult();
    lookUp(true);
  }

  // The telephony's screen-pop: /ui/agent?msisdn=…&reason=…&note=… opens the call filled in.
  function screenPop(params) {
    const msisdn = (params.get("msisdn") || "").trim();
    const reason = params.get("reason") || "";
    if ([...$("reason").options].some((o) => o.value === reason)) $("reason").value = reason;
    if (params.get("note")) $("reason-text").value = params.get("note");
    if (!msisdn) return;
    $("subscriber").value = msisdn;
    lookUp(false);
    $("decide").focus();   // the agent confirms the reason and asks
  }

  // The call reasons are the catalog's, labelled in the page's language.
  async function loadReasons() {
    const result = await api("GET", "/ui/api/agent/reasons");
    if (!result.ok) return;
    $("reason").append(...result.data.reasons.map((r) => h("option", { value: r.code, text: r.label })));
    declineReasons = result.data.decline_reasons || [];
    notNowPosted = Boolean(result.data.not_now_posted);
  }

  async function start() {
    NB_I18N.translatePage();
    await NB.loadSession("channel");
    NB.topbar("agent");
    await loadReasons();
    $("subscriber").addEventListener("input", numberEdited);
    $("subscriber").addEventListener("change", () => lookUp(false));
    $("new-call").addEventListener("click", newCall);
    $("contact-form").addEventListener("submit", decide);
    $("subscriber").focus();
    screenPop(new URLSearchParams(location.search));
  }

  start();
})();
