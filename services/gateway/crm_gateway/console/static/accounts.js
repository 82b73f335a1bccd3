/* The console's "My accounts" tab: the account manager's worklist (a lost customer's survey call opens the win-back
   form: reasons, the customer's words, what would bring them back, the outcome), the portfolio and this month's KPIs.
   An account manager sees their own; staff see every manager's. Reads the gateway's /api/v1/account-manager/* API;
   console.js lends its helpers through window.ConsoleKit and calls Accounts.load() when the tab opens. */
"use strict";
window.Accounts = (function () {
  const $ = (id) => document.getElementById(id);
  const kit = () => window.ConsoleKit;
  const t = (key, vars) => kit().t(key, vars);
  const el = (...args) => kit().el(...args);
  const state = { reasons: [], caseId: null };

  const pct = (v) => (v === null || v === undefined ? "–" : new Intl.NumberFormat(kit().lang(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(v));
  const money = (v) => Number(v || 0).toLocaleString(kit().lang(), { maximumFractionDigits: 0 });
  const thisMonth = () => new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" }).slice(0, 7);
  function showError(target, e) {
    const where = (e.body && e.body.errors || []).map((x) => (x.loc || []).slice(1).join(".") + ": " + x.msg).join("; ");
    $(target).textContent = e.message + (where ? " — " + where : "");
  }

  function renderWorklist(items) {
    $("am-worklist").replaceChildren(...(items.length ? items.map((item) => el("li", {
      class: "work-item" + (item.overdue ? " overdue" : ""), "data-kind": item.kind, "data-customer": item.customer_id,
      onclick: item.kind === "win_back_call" ? () => openCase(item) : undefined,
    }, el("strong", { "data-due": item.due }, kit().fmtDate(item.due)), " · ", t("work." + item.kind), " · ", item.customer_name, " — ", item.detail)) : [el("li", { class: "muted" }, t("queue.empty"))]));
  }
  function renderPortfolio(items) {
    $("am-portfolio").tBodies[0].replaceChildren(...items.map((c) => el("tr", { "data-id": c.customer_id },
      el("td", {}, c.name), el("td", {}, kit().tv("status", c.status)), el("td", {}, c.abc_class || "–"), el("td", {}, kit().tv("tier", c.tier) || "–"),
      el("td", {}, c.credit_grade || "–"), el("td", {}, kit().tv("risk", c.churn_risk) || "–"), el("td", {}, c.key_account_reasons.join(", ") || "–"),
      el("td", {}, c.visits_required ? `${c.visits_done}/${c.visits_required}` : "–"), el("td", {}, kit().fmtDate(c.next_follow_up)))));
  }
  function renderKpis(report) {
    $("am-kpi-period").textContent = report.period;
    $("am-kpis").tBodies[0].replaceChildren(...report.items.map((k) => el("tr", { "data-manager": k.account_manager },
      el("td", {}, k.rank === null ? "–" : String(k.rank)), el("td", {}, k.account_manager), el("td", {}, money(k.revenue) + " " + report.revenue_currency),
      el("td", {}, pct(k.revenue_growth)), el("td", {}, pct(k.retention_rate)), el("td", {}, String(k.win_backs)), el("td", {}, pct(k.visit_attainment)),
      el("td", {}, pct(k.follow_up_on_time_rate)), el("td", {}, pct(k.complaint_rate)), el("td", {}, String(k.service_level_breaches)))));
  }

  function openCase(item) {
    state.caseId = item.case_id;
    $("wb-card").hidden = false;
    $("wb-error").textContent = "";
    $("wb-customer").textContent = item.customer_name;
    $("wb-detail").textContent = item.detail;
    const label = (r) => (kit().lang() === "zh-CN" ? r.label_zh : r.label_en);
    $("wb-reasons").replaceChildren(...state.reasons.map((r) => el("label", { class: "inline" },
      el("input", { type: "checkbox", id: "wb-reason-" + r.code, value: r.code }), label(r))));
    $("wb-reason-text").value = "";
    $("wb-return-if").value = "";
  }
  async function saveSurvey() {
    const reasons = state.reasons.map((r) => r.code).filter((code) => $("wb-reason-" + code).checked);
    const body = { reasons };
    if ($("wb-reason-text").value.trim()) body.reason_text = $("wb-reason-text").value.trim();
    if ($("wb-return-if").value.trim()) body.would_return_if = $("wb-return-if").value.trim();
    try {
      await kit().api(`/api/v1/account-manager/win-back-cases/${encodeURIComponent(state.caseId)}/survey`, { method: "POST", json: body });
      kit().toast(t("wb.saved"));
      $("wb-error").textContent = "";
      await loadWorklist();
    } catch (e) {
      showError("wb-error", e);
    }
  }
  async function decide(outcome) {
    try {
      await kit().api(`/api/v1/account-manager/win-back-cases/${encodeURIComponent(state.caseId)}/outcome`, { method: "POST", json: { outcome } });
      kit().toast(t("wb." + outcome));
      $("wb-card").hidden = true;
      await load();
    } catch (e) {
      showError("wb-error", e);
    }
  }

  async function loadWorklist() {
    renderWorklist((await kit().api("/api/v1/account-manager/worklist")).items);
  }
  async function load() {
    $("am-error").textContent = "";
    try {
      state.reasons = await kit().api("/api/v1/account-manager/win-back-reasons");
      await loadWorklist();
      renderPortfolio((await kit().api("/api/v1/account-manager/portfolio")).items);
      renderKpis(await kit().api("/api/v1/account-manager/kpis?period=" + thisMonth()));
    } catch (e) {
      showError("am-error", e);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("wb-save").addEventListener("click", saveSurvey);
    $("wb-won").addEventListener("click", () => decide("won_back"));
    $("wb-lost").addEventListener("click", () => decide("lost_for_good"));
  });
  return { load };
})();
