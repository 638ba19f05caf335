// nextbest UI: the agent desktop. Who is calling, then the next best action and two
// alternatives from a real logged decision; each shown offer's Accept/Decline posts its own outcome.
"use strict";

(() => {
  const { h, api, fmt } = NB;
  const $ = (id) => document.getElementById(id);
  const USAGE = { long_distance_minutes: "Long-distance, min/month", international_minutes: "International, min/month",
                  roaming_days: "Roaming days/year", data_gb: "Mobile data, GB/month", sms_count: "SMS/month",
                  topups_30d: "Top-ups, 30 days" };
  const FACTS = [["tariff", "Tariff"], ["balance", "Balance"], ["arpu", "ARPU"], ["region", "Region"],
                 ["tenure_months", "Tenure, months"]];
  let lookedUp = "";
  let call = null;   // the decision on screen: {number, eventId}; its buttons answer for this caller only
  const PLACEHOLDER = { served: "The best offer for this caller appears here.",
                        alternatives: "The 2nd and 3rd best offers appear here: each has its own answer." };

  function number() { return $("subscriber").value.trim(); }

  function showErrors(error) {
    for (const field of ["subscriber", "reason", "reason_text"]) $(`${field}-error`).textContent = "";
    if (!error) return;
    const field = (error.field || "").replace(/^context\./, "");
    const target = field === "subscriber_id" ? "subscriber" : (field in { reason: 1, reason_text: 1 } ? field : null);
    if (target) $(`${target}-error`).textContent = error.message;
    else $("served").replaceChildren(h("div", { class: "notice error", text: error.message }));
  }

  // One call at a time: another number, a new call or a failed decision takes the
  // previous decision's offers (and their Accept/Decline) off the screen.
  function clearDecision(note) {
    call = null;
    $("served").dataset.eventId = "";
    $("served").replaceChildren(h("div", { class: "empty", text: note || PLACEHOLDER.served }));
    $("alternatives").replaceChildren(h("div", { class: "empty", text: PLACEHOLDER.alternatives }));
    $("excluded").textContent = "";
    $("decision-meta").textContent = "";
    $("reward-status").classList.add("hidden");
  }

  function clearCaller() {
    lookedUp = "";
    $("caller").className = "muted";
    $("caller").replaceChildren("Enter the number to see who is calling.");
    $("contacts").replaceChildren(h("li", { class: "muted", text: "None yet." }));
  }

  function numberEdited() {
    if (call && number() !== call.number) {
      clearDecision("The offers for the previous caller were cleared: ask for the next best action for this caller.");
    }
    if (lookedUp && number() !== lookedUp) clearCaller();
  }

  function newCall() {
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
    const result = await api("GET", `/ui/api/caller/${encodeURIComponent(id)}`);
    if (id !== number()) return;   // typed over meanwhile
    const error = result.data && result.data.error;
    $("subscriber-error").textContent = error && error.field === "subscriber_id" ? error.message : "";
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
      box.replaceChildren(who, h("div", { class: "notice" }, "Unknown caller: no profile is stored for this number. ",
                                 "The decision uses the call reason only."));
      return;
    }
    const p = data.profile;
    const value = (key) => typeof p[key] === "number" && key !== "tenure_months" ? fmt.num(p[key], 2) : String(p[key]);
    const facts = FACTS.filter(([key]) => p[key] !== undefined).flatMap(([key, label]) =>
      [h("dt", { text: label }), h("dd", { text: value(key), dataset: { fact: key } })]);
    const services = Array.isArray(p.services) ? p.services : [];
    const usage = Object.keys(p).filter((k) => k in USAGE || (!FACTS.some(([f]) => f === k) && k !== "services"));
    box.classList.remove("muted");
    box.replaceChildren(who,
      h("dl", { class: "facts" }, facts),
      h("label", { text: "Active services" }),
      h("div", {}, services.length ? services.map((s) => h("span", { class: "chip", text: s })) : h("span", { class: "muted", text: "none" })),
      h("label", { text: "Usage" }),
      h("table", { class: "table" }, h("tbody", {}, usage.map((k) =>
        h("tr", {}, h("td", { text: USAGE[k] || k }), h("td", { class: "num", text: typeof p[k] === "number" ? fmt.num(p[k], 1) : String(p[k]) }))))),
    );
  }

  function renderContacts(contacts) {
    const list = $("contacts");
    if (!contacts.length) { list.replaceChildren(h("li", { class: "muted", text: "No contacts from this desktop yet." })); return; }
    list.replaceChildren(...contacts.map((c) => {
      const outcome = c.state === "joined" ? (c.reward > 0 ? ["accepted", "ok"] : ["declined", "bad"]) : [c.state, ""];
      return h("li", {},
        h("div", { class: "row spread" }, h("b", { text: c.reason || "note" }), h("span", { class: "muted small", text: new Date(c.ts).toLocaleString() })),
        h("div", { class: "small" }, `offered ${c.offer_name} `, h("span", { class: `badge ${outcome[1]}`, text: outcome[0] })),
        c.reason_text ? h("div", { class: "small muted", text: `“${c.reason_text}”` }) : null);
    }));
  }

  function offerCard(offer) {
    const slot = offer.slot;
    const label = !offer.served ? "not shown" : slot === 1 ? "Offer now" : `Slot ${slot}: also pitch`;
    const card = h("div", { class: offer.served ? "offer served" : "offer", dataset: { offerId: offer.offer_id, slot: slot || "" } },
      h("div", { class: "row spread" },
        h("span", { class: "rank", text: label }),
        h("span", { class: "row" },
          h("span", { class: `badge ${offer.policy}`, text: offer.policy === "control" ? "control group" : "model" }),
          h("span", { class: "badge", text: `p = ${fmt.prob(offer.probability)}` }))),
      h("div", { class: "row spread" }, h("h3", { class: "offer-name", text: offer.name }),
        h("span", { class: "value", text: offer.value === null ? "" : `value ${fmt.num(offer.value, offer.value % 1 ? 2 : 0)}` })),
      h("div", { class: "pitch", text: offer.description || "" }),
      h("ul", { class: "why" }, offer.why.map((line) => h("li", { text: line }))));
    if (offer.served) {
      // every offer the agent pitches has its own outcome: the caller may take the 2nd and refuse the 1st
      card.append(h("div", { class: "row actions" },
        h("button", { class: "btn accept", id: `accept-${slot}`, type: "button", text: "Accept", onclick: () => reward(offer, "accept") }),
        h("button", { class: "btn decline", id: `decline-${slot}`, type: "button", text: "Decline", onclick: () => reward(offer, "decline") }),
        h("span", { class: "outcome small", id: `outcome-${slot}` })));
    }
    return card;
  }

  async function reward(offer, outcome) {
    if (!call) return;
    const buttons = [$(`accept-${offer.slot}`), $(`decline-${offer.slot}`)];
    for (const button of buttons) button.disabled = true;
    // the number goes along: the service refuses an answer for an event decided for another caller
    const result = await api("POST", "/ui/api/agent/reward", {
      event_id: call.eventId, subscriber_id: number(), offer_id: offer.offer_id, outcome });
    const status = $("reward-status");
    status.classList.remove("hidden", "error", "success");
    if (!result.ok) {
      status.classList.add("error");
      status.textContent = NB.errorText(result);
      if (result.status !== 409) for (const button of buttons) button.disabled = false;
      return;
    }
    const d = result.data;
    const word = outcome === "accept" ? "Accepted" : "Declined";
    const mark = $(`outcome-${offer.slot}`);
    mark.textContent = word;
    mark.className = `outcome small badge ${outcome === "accept" ? "ok" : "bad"}`;
    status.classList.add("success");
    status.dataset.status = d.status;
    const when = d.status === "joined" ? "the decision is complete and will be learned"
      : d.status === "stored" ? "kept until the other offers have their answer (or the wait ends)" : d.status;
    status.textContent = d.duplicate ? `${offer.name}: this outcome was already recorded.`
      : `${word}: ${offer.name} — ${when}.` + (outcome === "accept" ? " It will not be offered to this caller again." : "");
    lookUp(true);
  }

  async function decide(event) {
    event.preventDefault();
    showErrors(null);
    $("reward-status").classList.add("hidden");
    const button = $("decide");
    button.disabled = true;
    const asked = number();
    const result = await api("POST", "/ui/api/agent/decide", {
      subscriber_id: asked, reason: $("reason").value || null, reason_text: $("reason-text").value.trim() || null });
    button.disabled = false;
    if (!result.ok) {
      clearDecision();
      showErrors(result.data && result.data.error ? result.data.error : { message: NB.errorText(result) });
      return;
    }
    const d = result.data;
    if (asked !== number()) return;   // the number changed while deciding: that decision is not this call's
    call = d.event_id ? { number: asked, eventId: d.event_id } : null;
    const [first, ...rest] = d.offers;
    $("decision-meta").textContent = d.event_id ? `event ${d.event_id} · model ${d.model_version}` : "";
    $("served").dataset.eventId = d.event_id || "";
    $("served").replaceChildren(first ? offerCard(first)
      : h("div", { class: "notice", text: "No offer is eligible for this caller right now." }));
    $("alternatives").replaceChildren(...(rest.length ? rest.map((o) => offerCard(o))
      : [h("div", { class: "empty", text: "No other eligible offer." })]));
    const reasons = d.excluded.map((e) => `${e.offer_id} (${e.reason})`).join(", ");
    $("excluded").textContent = `Chosen among ${d.eligible} eligible offers; ${d.excluded_count} excluded` +
      (reasons ? `: ${reasons}.` : ".");
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

  async function start() {
    await NB.loadSession("channel");
    NB.topbar("agent");
    $("subscriber").addEventListener("input", numberEdited);
    $("subscriber").addEventListener("change", () => lookUp(false));
    $("new-call").addEventListener("click", newCall);
    $("contact-form").addEventListener("submit", decide);
    $("subscriber").focus();
    screenPop(new URLSearchParams(location.search));
  }

  start();
})();
