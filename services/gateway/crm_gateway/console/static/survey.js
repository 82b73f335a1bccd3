/* The public survey page behind the link in the resolution message: no sign-in, the signed token is the key. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const complaintId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  let lang = params.get("lang") || (navigator.language && navigator.language.toLowerCase().startsWith("en") ? "en" : "zh-CN");
  let page = null;
  let state = "loading";
  const api = `/api/v1/survey/${encodeURIComponent(complaintId)}`;

  // the console's message tables (i18n.js), survey.* keys; a key missing in one language falls back to English
  function t(key) {
    const table = window.I18N[lang] || window.I18N.en;
    return table["survey." + key] !== undefined ? table["survey." + key] : window.I18N.en["survey." + key];
  }
  const fmtTime = (iso) => new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));

  function render() {
    document.documentElement.lang = lang;
    document.title = t("title");
    $("survey-title").textContent = t("title");
    $("survey-lang").textContent = t("other");
    $("survey-question").textContent = t("question");
    $("survey-comment-label").textContent = t("comment");
    $("survey-submit").textContent = t("submit");
    $("survey-intro").textContent = page ? t("intro").replace("{n}", page.complaint_number) : "";
    $("survey-facts").hidden = !page;
    $("survey-number-label").textContent = t("number");
    $("survey-resolved-label").textContent = t("resolved_at");
    $("survey-outcome-label").textContent = t("outcome");
    if (page) {
      $("survey-number").textContent = page.complaint_number;
      $("survey-resolved").textContent = page.resolved_at ? fmtTime(page.resolved_at) : "–";
      $("survey-outcome").textContent = page.outcome || "–";  // the agent's own words, as written
    }
    for (let score = 1; score <= 5; score++) $(`score-${score}-text`).textContent = t("score." + score);
    $("survey-form").hidden = state !== "open";
    $("survey-message").textContent = ["thanks", "answered", "invalid", "expired", "failed"].includes(state) ? t(state) : "";
  }

  function stateOf(status) { return status === 410 ? "expired" : status === 403 || status === 404 || status === 422 ? "invalid" : "failed"; }

  const scores = $("survey-scores");
  for (let score = 1; score <= 5; score++) {
    const label = document.createElement("label");
    label.className = "score";
    const input = document.createElement("input");
    Object.assign(input, { type: "radio", name: "score", value: String(score), id: `score-${score}`, required: true });
    const words = document.createElement("span");
    words.id = `score-${score}-text`;
    label.append(input, document.createTextNode(` ${score} `), words);
    scores.append(label);
  }

  $("survey-lang").addEventListener("click", () => { lang = lang === "en" ? "zh-CN" : "en"; render(); });
  $("survey-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = document.querySelector("input[name=score]:checked");
    if (!chosen) return;
    const comment = $("survey-comment").value.trim();
    const response = await fetch(api, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, score: Number(chosen.value), comment: comment || null })
    });
    state = response.ok ? "thanks" : response.status === 409 ? "answered" : stateOf(response.status);
    render();
  });

  (async function load() {
    const response = await fetch(`${api}?token=${encodeURIComponent(token)}`);
    if (response.ok) {
      page = await response.json();
      if (!params.get("lang")) lang = page.language === "en" ? "en" : "zh-CN";
      state = page.answered ? "answered" : "open";
    } else {
      state = stateOf(response.status);
    }
    render();
  })();
  render();
})();
