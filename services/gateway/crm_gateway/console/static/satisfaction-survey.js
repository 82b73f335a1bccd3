/* The public page behind a satisfaction survey campaign's link: no sign-in, the signed single-use token is the key.
   The overall score and the campaign's factors (the seeds': on-time, damage, price, staff, complaint handling), 1-5
   each, in zh-CN or en (the contact's language first; the button switches). */
"use strict";
(function () {
  const TEXT = {
    "zh-CN": {
      title: "客户满意度调查", intro: "「{c}」：请花两分钟告诉我们您对我们服务的满意程度（1 = 很不满意，5 = 非常满意）。",
      overall: "总体满意度", on_time: "准时送达", damage: "货物完好（无破损）", price: "价格", staff: "服务人员", complaint_handling: "投诉处理",
      comment: "意见与建议（可选）", submit: "提交", thanks: "感谢您的评价！", answered: "您已提交过本次调查，谢谢。",
      invalid: "此调查链接无效。", expired: "此调查链接已过期。", failed: "提交失败，请稍后再试。", other: "EN"
    },
    "en": {
      title: "Customer satisfaction survey", intro: "“{c}”: please take two minutes to tell us how satisfied you are with our service (1 = very dissatisfied, 5 = very satisfied).",
      overall: "Overall satisfaction", on_time: "On-time delivery", damage: "Goods arrive undamaged", price: "Price", staff: "Our staff",
      complaint_handling: "Complaint handling", comment: "Comments and suggestions (optional)", submit: "Send", thanks: "Thank you for your answers!",
      answered: "You have already answered this survey. Thank you.", invalid: "This survey link is not valid.", expired: "This survey link has expired.",
      failed: "Sending failed; please try again later.", other: "中文"
    }
  };
  const $ = (id) => document.getElementById(id);
  const invitationId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  let lang = params.get("lang") || (navigator.language && navigator.language.toLowerCase().startsWith("en") ? "en" : "zh-CN");
  let page = null;
  let state = "loading";
  const api = `/api/v1/satisfaction-survey-links/${encodeURIComponent(invitationId)}`;
  const t = (key) => (TEXT[lang] || TEXT.en)[key];

  function scale(name, container) {  // one row of radios 1-5 named `name`
    for (let score = 1; score <= 5; score++) {
      const label = document.createElement("label");
      label.className = "score";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name, value: String(score), id: `${name}-${score}`, required: name === "overall" });
      label.append(input, document.createTextNode(` ${score}`));
      container.append(label);
    }
  }
  function buildFactors() {
    $("sat-factors").replaceChildren(...page.factors.map((factor) => {
      const fieldset = document.createElement("fieldset");
      fieldset.id = `sat-factor-${factor}`;
      const legend = document.createElement("legend");
      legend.dataset.factor = factor;
      fieldset.append(legend);
      scale(factor, fieldset);
      return fieldset;
    }));
  }
  function render() {
    document.documentElement.lang = lang;
    document.title = t("title");
    $("sat-title").textContent = t("title");
    $("sat-lang").textContent = t("other");
    $("sat-overall-question").textContent = t("overall");
    document.querySelectorAll("#sat-factors legend").forEach((legend) => { legend.textContent = t(legend.dataset.factor); });
    $("sat-comment-label").textContent = t("comment");
    $("sat-submit").textContent = t("submit");
    $("sat-intro").textContent = page ? t("intro").replace("{c}", page.campaign_name) : "";
    $("sat-form").hidden = state !== "open";
    $("sat-message").textContent = ["thanks", "answered", "invalid", "expired", "failed"].includes(state) ? t(state) : "";
  }
  const stateOf = (status) => (status === 410 ? "expired" : status === 403 || status === 404 || status === 422 ? "invalid" : "failed");

  scale("overall", $("sat-overall"));
  $("sat-lang").addEventListener("click", () => { lang = lang === "en" ? "zh-CN" : "en"; render(); });
  $("sat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const overall = document.querySelector("input[name=overall]:checked");
    if (!overall) return;
    const factors = {};
    for (const factor of page.factors) {
      const chosen = document.querySelector(`input[name=${factor}]:checked`);
      if (chosen) factors[factor] = Number(chosen.value);  // a factor left out is not answered
    }
    const comment = $("sat-comment").value.trim();
    const response = await fetch(api, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, score: Number(overall.value), factors, comment: comment || null })
    });
    state = response.ok ? "thanks" : response.status === 409 ? "answered" : stateOf(response.status);
    render();
  });

  (async function load() {
    const response = await fetch(`${api}?token=${encodeURIComponent(token)}`);
    if (response.ok) {
      page = await response.json();
      if (!params.get("lang")) lang = page.language === "en" ? "en" : "zh-CN";
      buildFactors();
      state = page.answered ? "answered" : "open";
    } else {
      state = stateOf(response.status);
    }
    render();
  })();
  render();
})();
