/* The public survey page behind the link in the resolution message: no sign-in, the signed token is the key. */
"use strict";
(function () {
  const TEXT = {
    "zh-CN": {
      title: "满意度调查", intro: "投诉 {n} 已处理完毕（{o}）。请花一分钟评价我们的处理。", question: "您对处理结果的满意程度（1 = 很不满意，5 = 非常满意）",
      comment: "意见（可选）", submit: "提交", thanks: "感谢您的评价！", answered: "您已评价过本次处理，谢谢。",
      invalid: "此调查链接无效。", expired: "此调查链接已过期。", failed: "提交失败，请稍后再试。", other: "EN"
    },
    "en": {
      title: "Satisfaction survey", intro: "Complaint {n} has been resolved ({o}). Please take a minute to rate how we handled it.",
      question: "How satisfied are you with the outcome (1 = very dissatisfied, 5 = very satisfied)?", comment: "Comment (optional)",
      submit: "Send", thanks: "Thank you for your rating!", answered: "You have already rated this resolution. Thank you.",
      invalid: "This survey link is not valid.", expired: "This survey link has expired.", failed: "Sending failed; please try again later.",
      other: "中文"
    }
  };
  const $ = (id) => document.getElementById(id);
  const complaintId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  let lang = params.get("lang") || (navigator.language && navigator.language.toLowerCase().startsWith("en") ? "en" : "zh-CN");
  let page = null;
  let state = "loading";
  const api = `/api/v1/survey/${encodeURIComponent(complaintId)}`;

  function t(key) { return (TEXT[lang] || TEXT.en)[key]; }

  function render() {
    document.documentElement.lang = lang;
    document.title = t("title");
    $("survey-title").textContent = t("title");
    $("survey-lang").textContent = t("other");
    $("survey-question").textContent = t("question");
    $("survey-comment-label").textContent = t("comment");
    $("survey-submit").textContent = t("submit");
    $("survey-intro").textContent = page ? t("intro").replace("{n}", page.complaint_number).replace("{o}", page.outcome || "-") : "";
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
    label.append(input, document.createTextNode(` ${score}`));
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
