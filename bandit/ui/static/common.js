// nextbest UI: what every page shares: the session, API calls with the CSRF token,
// safe DOM building (text only, never innerHTML) and number formatting.
"use strict";

const NB = (() => {
  let session = null;
  const t = NB_I18N.t;   // every page loads i18n.js first: its words in English or Russian

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "value") node.value = value;
      else if (name in node && typeof value !== "string") node[name] = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    for (const child of children.flat()) if (child) node.append(child);
    return node;
  }

  function toLogin(missing) {
    const next = encodeURIComponent(location.pathname);
    location.href = `/ui/login?next=${next}` + (missing ? `&missing=${missing}` : "");
  }

  async function loadSession(scope) {
    const response = await fetch("/ui/api/session", { credentials: "same-origin" });
    if (response.status === 401) { toLogin(); throw new Error("not signed in"); }
    session = await response.json();
    if (scope && !session.scopes.includes(scope)) { toLogin(scope); throw new Error("missing scope"); }
    return session;
  }

  // Every call returns {ok, status, data}; a signed-out session goes back to sign-in.
  async function api(method, path, body) {
    // the service answers in the page's language (the browser's own Accept-Language may differ)
    const headers = { "Accept-Language": document.documentElement.lang || "en" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && session && session.csrf_token) headers[session.csrf_header] = session.csrf_token;
    let response;
    try {
      response = await fetch(path, { method, headers, credentials: "same-origin",
                                     body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      return { ok: false, status: 0, data: { error: { code: "network", message: "the service is unreachable" } } };
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (response.status === 401 && session && !session.open) toLogin();
    return { ok: response.ok, status: response.status, data };
  }

  function errorText(result) {
    const error = result.data && result.data.error;
    return error ? error.message : `request failed (${result.status})`;
  }

  // The other language, named in itself (lang= so a screen reader says it right); remembered.
  function langButton() {
    const other = NB_I18N.lang === "ru" ? ["en", "English"] : ["ru", "Русский"];
    return h("button", { id: "lang", type: "button", lang: other[0], text: other[1], onclick: () => NB_I18N.choose(other[0]) });
  }

  function topbar(active) {
    const bar = document.getElementById("topbar");
    const links = [];
    if (session.scopes.includes("channel")) links.push(["agent", "/ui/agent", t("Agent desktop")]);
    if (session.scopes.includes("admin")) links.push(["dashboard", "/ui/", t("Dashboard")]);
    bar.replaceChildren(...[
      h("div", { class: "brand", translate: "no" }, "next", h("span", { text: "best" })),   // the brand, in every language
      h("nav", { "aria-label": t("Pages") }, links.map(([key, href, label]) => h("a", { href, class: key === active ? "active" : "", text: label }))),
      h("span", { class: "who", text: session.open ? t("open mode: no API keys configured") : t("signed in as {name}", { name: session.name }) }),
      session.open ? null : h("button", { id: "logout", type: "button", text: t("Sign out"), onclick: async () => {
        await api("POST", "/ui/logout");
        location.href = "/ui/login";
      } }),
      langButton(),
    ].filter(Boolean));
  }

  // Numbers and dates in the page's language (<html lang>), not the browser's
  const locale = () => document.documentElement.lang || "en";
  const fmt = {
    num(x, digits = 0) {
      if (x === null || x === undefined || Number.isNaN(x)) return "–";
      return Number(x).toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
    },
    // as few decimals as the value has (at most 2): 140, 2.5, 0.25; never "140.0"
    plain(x) {
      if (x === null || x === undefined || Number.isNaN(x)) return "–";
      return Number(x).toLocaleString(locale(), { maximumFractionDigits: 2 });
    },
    when(ms) { return new Date(ms).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" }); },
    time(ms) { return new Date(ms).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" }); },
    // "moscow" → "Moscow", "nizhny_novgorod" → "Nizhny Novgorod"
    title(text) { return String(text).replace(/_/g, " ").replace(/(^|[\s-])(\p{L})/gu, (m, sep, c) => sep + c.toLocaleUpperCase(locale())); },
    pct(x, digits = 1) { return x === null || x === undefined ? "–" : `${fmt.num(x * 100, digits)}%`; },
    signed(x, digits = 2, scale = 1, unit = "") {
      if (x === null || x === undefined) return "–";
      const v = x * scale;
      return `${v >= 0 ? "+" : "−"}${fmt.num(Math.abs(v), digits)}${unit}`;
    },
    prob(p) { return p === null || p === undefined ? "–" : (p >= 0.995 ? p.toFixed(3) : p.toFixed(2)); },
    age(seconds) {
      if (seconds === null || seconds === undefined) return t("never");
      if (seconds < 90) return t("{n} s", { n: Math.round(seconds) });
      if (seconds < 5400) return t("{n} min", { n: Math.round(seconds / 60) });
      return t("{n} h", { n: fmt.num(seconds / 3600, 1) });
    },
    clock(ms) { return new Date(ms).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" }); },
    day(ms) { return new Date(ms).toLocaleString(locale(), { month: "short", day: "numeric", hour: "2-digit" }); },
  };

  return { h, svg, api, errorText, loadSession, topbar, langButton, fmt, t, get session() { return session; } };
})();
