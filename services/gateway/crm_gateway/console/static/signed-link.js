/* What every public page behind a signed link (crm_common.links: the complaint survey, the satisfaction survey
   campaigns) does the same way: no sign-in, the link's `token` is the key to `<api>/<id from the path>`. The page's
   language is `lang=`, else the one the service answers for the link, else the browser's (zh-CN unless it is en; the
   button switches). The answer is sent once: 409 says it was already answered, 410 the link expired, 403/404/422 it
   is not valid, anything else (a 5xx, no answer at all) that it failed. Texts come from the console's tables
   (i18n.js) under the page's key prefix, English when a key is missing in the language. A page gives only what
   differs: its ids' prefix, key prefix and API, what it builds from the loaded link, its own texts, and its answer's
   fields. */
"use strict";
window.SignedLinkPage = (function () {
  const $ = (id) => document.getElementById(id);
  const MESSAGES = ["thanks", "answered", "invalid", "expired", "failed"];
  const stateOf = (status) => (status === 410 ? "expired" : status === 403 || status === 404 || status === 422 ? "invalid" : "failed");
  // a request that never reached the gateway (offline, refused) is a failure like a 5xx: the page says so
  const reach = (url, init) => fetch(url, init).catch(() => ({ ok: false, status: 0 }));

  /* One row of radios 1-5 named `name` (ids `<name>-<score>`); with `words`, each score's words go in `<name>-<score>-text`. */
  function scale(container, name, { required = false, words = false } = {}) {
    for (let score = 1; score <= 5; score++) {
      const label = document.createElement("label");
      label.className = "score";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name, value: String(score), id: `${name}-${score}`, required });
      label.append(input, document.createTextNode(words ? ` ${score} ` : ` ${score}`));
      if (words) {
        const text = document.createElement("span");
        text.id = `${name}-${score}-text`;
        label.append(text);
      }
      container.append(label);
    }
  }
  const chosen = (name) => document.querySelector(`input[name="${name}"]:checked`);

  /* spec: ids (the elements' id prefix: <ids>-title, -lang, -intro, -form, -comment, -comment-label, -submit, -message),
     keys (the i18n key prefix), api (the resource without the id), loaded(page) after the link opened, render(t, page,
     lang) the page's own texts (page is null until loaded), answer(page) the answer's fields besides token and comment
     (null: not complete, nothing is sent). */
  function open(spec) {
    const id = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
    const params = new URLSearchParams(location.search);
    const token = params.get("token") || "";
    let lang = params.get("lang") || (navigator.language && navigator.language.toLowerCase().startsWith("en") ? "en" : "zh-CN");
    let page = null;
    let state = "loading";
    const api = `${spec.api}/${encodeURIComponent(id)}`;
    const el = (name) => $(`${spec.ids}-${name}`);

    function t(key) {
      const table = window.I18N[lang] || window.I18N.en;
      const full = spec.keys + key;
      return table[full] !== undefined ? table[full] : window.I18N.en[full];
    }
    function render() {
      document.documentElement.lang = lang;
      document.title = t("title");
      el("title").textContent = t("title");
      el("lang").textContent = t("other");
      el("comment-label").textContent = t("comment");
      el("submit").textContent = t("submit");
      spec.render(t, page, lang);
      el("form").hidden = state !== "open";
      el("message").textContent = MESSAGES.includes(state) ? t(state) : "";
    }

    el("lang").addEventListener("click", () => { lang = lang === "en" ? "zh-CN" : "en"; render(); });
    el("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = spec.answer(page);
      if (!fields) return;
      const comment = el("comment").value.trim();
      const response = await reach(api, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token, ...fields, comment: comment || null })
      });
      state = response.ok ? "thanks" : response.status === 409 ? "answered" : stateOf(response.status);
      render();
    });

    (async function load() {
      const response = await reach(`${api}?token=${encodeURIComponent(token)}`);
      if (response.ok) {
        page = await response.json();
        if (!params.get("lang")) lang = page.language === "en" ? "en" : "zh-CN";
        if (spec.loaded) spec.loaded(page);
        state = page.answered ? "answered" : "open";
      } else {
        state = stateOf(response.status);
      }
      render();
    })();
    render();
  }

  return { open, scale, chosen };
})();
