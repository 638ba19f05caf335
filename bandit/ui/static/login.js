// nextbest UI: sign-in. POSTs the key as JSON to /ui/login, which sets the session cookie.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const form = document.getElementById("login-form");
  const input = document.getElementById("key");
  const error = document.getElementById("key-error");
  const { h, t } = NB;

  function destination(scopes, home) {
    const next = params.get("next") || "";
    const safe = /^\/ui\/[A-Za-z0-9/_-]*$/.test(next) && !next.startsWith("/ui/login");
    const needsAdmin = next === "/ui/";
    if (safe && (!needsAdmin || scopes.includes("admin"))) return next;
    return home;
  }

  async function start() {
    NB_I18N.translatePage();
    document.querySelector(".topbar").append(h("span", { class: "spacer" }), NB.langButton());
    const missing = params.get("missing");
    if (missing) {
      const box = document.getElementById("missing");
      box.textContent = t("This page needs a key with the \u201c{scope}\u201d scope. Sign in with another key.", { scope: missing });
      box.classList.remove("hidden");
    }
    const response = await fetch("/ui/api/session", { credentials: "same-origin" });
    if (response.ok && (await response.json()).open) {
      form.classList.add("hidden");
      document.getElementById("open").classList.remove("hidden");
    }
    input.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    input.classList.remove("invalid");
    input.removeAttribute("aria-invalid");
    const result = await NB.api("POST", "/ui/login", { key: input.value });
    if (result.ok) {
      location.href = destination(result.data.scopes, result.data.home);
      return;
    }
    input.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    error.textContent = result.status === 401 ? t("This key is not valid. Check it and try again.") : NB.errorText(result);
    input.select();
  });

  start();
})();
