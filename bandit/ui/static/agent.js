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

  function number() { return $("subscriber").value.trim(); }

  function showErrors(error) {
    for (const field of ["subscriber", "reason", "reason_text"]) $(`${field}-error`).textContent = "";
    if (!error) return;
    const field = (error.field || "").replace(/^context\./, "");
    const target = field === "subscriber_id" ? "subscriber" : (field in { reason: 1, reason_text: 1 } ? field : null);
    if (target) $(`${target}-error`).textContent = error.message;
    else $("served").replaceChildren(h("div", { class: "notice error", text: error.message }));
  }

  async function lookUp(force) {
    const id = number();
    if (!id || (id === lookedUp && !force)) return;
    lookedUp = id;
    const result = await api("GET", `/ui/api/caller/${encodeURIComponent(id)}`);
    if (!result.ok) { $("caller").replaceChildren(h("div", { class: "notice error", text: NB.errorText(result) })); return; }
    renderCaller(result.data);
    renderContacts(result.data.contacts);
  }

  function renderCaller(data) {
    const box = $("caller");
    if (!data.known) {
      box.replaceChildren(h("div", { class: "notice" }, "Unknown caller: no profile is stored for this number. ",
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
    box.replaceChildren(
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

  function offerCard(offer, eventId) {
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
        h("button", { class: "btn accept", id: `accept-${slot}`, type: "button", text: "Accept", onclick: () => reward(eventId, offer, "accept") }),
        h("button", { class: "btn decline", id: `decline-${slot}`, type: "button", text: "Decline", onclick: () => reward(eventId, offer, "decline") }),
        h("span", { class: "outcome small", id: `outcome-${slot}` })));
    }
    return card;
  }

  async function reward(eventId, offer, outcome) {
    const buttons = [$(`accept-${offer.slot}`), $(`decline-${offer.slot}`)];
    for (const button of buttons) button.disabled = true;
    const result = await api("POST", "/v1/reward", { event_id: eventId, offer_id: offer.offer_id, outcome });
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
    const result = await api("POST", "/ui/api/agent/decide", {
      subscriber_id: number(), reason: $("reason").value || null, reason_text: $("reason-text").value.trim() || null });
    button.disabled = false;
    if (!result.ok) { showErrors(result.data && result.data.error ? result.data.error : { message: NB.errorText(result) }); return; }
    const d = result.data;
    const [first, ...rest] = d.offers;
    $("decision-meta").textContent = d.event_id ? `event ${d.event_id} · model ${d.model_version}` : "";
    $("served").dataset.eventId = d.event_id || "";
    $("served").replaceChildren(first ? offerCard(first, d.event_id)
      : h("div", { class: "notice", text: "No offer is eligible for this caller right now." }));
    $("alternatives").replaceChildren(...(rest.length ? rest.map((o) => offerCard(o, d.event_id))
      : [h("div", { class: "empty", text: "No other eligible offer." })]));
    const reasons = d.excluded.map((e) => `${e.offer_id} (${e.reason})`).join(", ");
    $("excluded").textContent = `Chosen among ${d.eligible} eligible offers; ${d.excluded_count} excluded` +
      (reasons ? `: ${reasons}.` : ".");
    lookUp(true);
  }

  async function start() {
    await NB.loadSession("channel");
    NB.topbar("agent");
    $("subscriber").addEventListener("change", () => lookUp(false));
    $("contact-form").addEventListener("submit", decide);
    $("subscriber").focus();
  }

  start();
})();
