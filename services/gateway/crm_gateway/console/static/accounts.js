/* The console's "My accounts" tab: the worklist, the win-back cases in progress, the portfolio and this month's KPIs.
   A lost customer's survey call is a neutral agent's: the agent's worklist holds the calls given to them and opens the
   survey form (reasons, the customer's words, what would bring them back). The account manager (and an admin) opens a
   case from the cases list: sends offers, records the customer's answer to each and the outcome. The key-account
   monthly reports of a month (view, download CSV or Markdown); a customer sees only that card: its own reports and its
   opt-in, which it sets itself. An account manager sees their own; staff see every manager's. Reads the gateway's /api/v1/account-manager/* API; console.js lends its
   helpers through window.ConsoleKit and calls Accounts.load() when the tab opens. */
"use strict";
window.Accounts = (function () {
  const $ = (id) => document.getElementById(id);
  const kit = () => window.ConsoleKit;
  const t = (key, vars) => kit().t(key, vars);
  const el = (...args) => kit().el(...args);
  const state = { reasons: [], caseId: null, me: null, names: {} };
  const manages = () => ["account_manager", "admin"].includes(state.me.role);
  const caseUrl = (rest) => `/api/v1/account-manager/win-back-cases/${encodeURIComponent(state.caseId)}${rest || ""}`;

  const pct = (v) => (v === null || v === undefined ? "–" : new Intl.NumberFormat(kit().lang(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(v));
  const money = (v) => Number(v || 0).toLocaleString(kit().lang(), { maximumFractionDigits: 0 });
  const thisMonth = () => kit().thisMonth();
  function showError(target, e) {
    const where = (e.body && e.body.errors || []).map((x) => (x.loc || []).slice(1).join(".") + ": " + x.msg).join("; ");
    $(target).textContent = e.message + (where ? " — " + where : "");
  }

  function renderWorklist(items) {
    $("am-worklist").replaceChildren(...(items.length ? items.map((item) => el("li", {
      class: "work-item" + (item.overdue ? " overdue" : ""), "data-kind": item.kind, "data-customer": item.customer_id,
      onclick: item.kind === "win_back_call" ? () => openCase(item.case_id, item.customer_name) : undefined,
    }, el("strong", { "data-due": item.due }, kit().fmtDate(item.due)), " · ", t("work." + item.kind), " · ", item.customer_name, " — ",
      kit().messageText({ message_key: item.detail_key, message_params: item.detail_params, body: item.detail }))) : [el("li", { class: "muted" }, t("queue.empty"))]));
  }
  function renderPortfolio(items) {
    $("am-portfolio").tBodies[0].replaceChildren(...items.map((c) => el("tr", { "data-id": c.customer_id },
      el("td", {}, c.name), el("td", {}, kit().tv("status", c.status)), el("td", {}, c.abc_class || "–"), el("td", {}, kit().tv("tier", c.tier) || "–"),
      el("td", {}, c.credit_grade || "–"), el("td", {}, kit().tv("risk", c.churn_risk) || "–"), el("td", {}, c.key_account_reasons.map((r) => kit().tv("kareason", r)).join(", ") || "–"),
      el("td", {}, c.visits_required ? `${c.visits_done}/${c.visits_required}` : "–"), el("td", {}, kit().fmtDate(c.next_follow_up)))));
  }
  function renderKpis(report) {
    $("am-kpi-period").textContent = report.period;
    $("am-kpis").tBodies[0].replaceChildren(...report.items.map((k) => el("tr", { "data-manager": k.account_manager },
      el("td", {}, k.rank === null ? "–" : String(k.rank)), el("td", {}, k.account_manager), el("td", {}, money(k.revenue) + " " + report.revenue_currency),
      el("td", {}, pct(k.revenue_growth)), el("td", {}, pct(k.retention_rate)), el("td", {}, String(k.win_backs)), el("td", {}, pct(k.visit_attainment)),
      el("td", {}, pct(k.follow_up_on_time_rate)), el("td", {}, pct(k.complaint_rate)), el("td", {}, String(k.service_level_breaches)))));
  }

  // --- key-account monthly reports: a month's reports of the portfolio (staff, account manager), or the customer's own
  // once it opted in (the customer sets its choice here); view as Markdown, download CSV or Markdown
  const previousMonth = () => kit().previousMonth();
  const reportPath = (r, format) => `/api/v1/customers/${encodeURIComponent(r.customer_id)}/key-account-reports/${r.month}` + (format ? "?format=" + format : "");
  function renderReports(items, emptyKey) {
    $("kar-view").hidden = true;
    $("kar-empty").hidden = items.length > 0;
    $("kar-empty").textContent = t(emptyKey || "kar.none");
    $("kar-list").tBodies[0].replaceChildren(...items.map((r) => {
      const c = r.content;
      return el("tr", { "data-customer": r.customer_id, "data-month": r.month },
        el("td", {}, c.customer.name), el("td", {}, r.month), el("td", {}, String(c.orders.count)),
        el("td", {}, money(c.orders.revenue) + " " + c.orders.revenue_currency), el("td", {}, String(c.complaints.filed)),
        el("td", {}, c.service_levels.targets_met ? t("kar.met") : t("kar.missed", { n: c.service_levels.measures_missed })),
        el("td", {}, el("button", { type: "button", class: "kar-view", onclick: () => viewReport(r) }, t("kar.view")), " ",
          el("button", { type: "button", class: "kar-csv", onclick: () => download(r, "csv") }, t("kar.csv")), " ",
          el("button", { type: "button", class: "kar-md", onclick: () => download(r, "md") }, t("kar.md"))));
    }));
  }
  async function viewReport(r) {
    try {
      $("kar-view").textContent = await kit().api(reportPath(r, "md"));
      $("kar-view").hidden = false;
    } catch (e) {
      showError("kar-error", e);
    }
  }
  async function download(r, format) {
    try {
      const body = await kit().api(reportPath(r, format));
      const blob = new Blob([body], { type: format === "csv" ? "text/csv" : "text/markdown" });
      const a = el("a", { href: URL.createObjectURL(blob), download: `key-account-report-${r.customer_id}-${r.month}.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      showError("kar-error", e);
    }
  }
  async function loadReports() {
    $("kar-error").textContent = "";
    try {
      if (state.me.role === "customer") return await loadOwnReports();
      if (!$("kar-month").value) $("kar-month").value = previousMonth();
      renderReports((await kit().api("/api/v1/account-manager/key-account-reports?month=" + encodeURIComponent($("kar-month").value))).items);
    } catch (e) {
      showError("kar-error", e);
    }
  }
  const ownChoice = () => `/api/v1/customers/${encodeURIComponent(state.me.customer_id)}/key-account-report-subscription`;
  async function loadOwnReports() {
    const choice = await kit().api(ownChoice());
    $("kar-optin").checked = choice.customer_opted_in;
    if (!choice.customer_opted_in) return renderReports([], "kar.not_opted_in");
    renderReports(await kit().api(`/api/v1/customers/${encodeURIComponent(state.me.customer_id)}/key-account-reports`));
  }
  async function setOptIn() {
    try {
      const saved = await kit().api(ownChoice(), { method: "PUT", json: { customer_opted_in: $("kar-optin").checked } });
      kit().toast(t(saved.customer_opted_in ? "kar.opted_in" : "kar.opted_out"));
      await loadReports();
    } catch (e) {
      showError("kar-error", e);
    }
  }

  function renderCases(items) {
    $("am-cases").replaceChildren(...(items.length ? items.map((c) => el("li", { class: "work-item", "data-case": c.id, "data-customer": c.customer_id,
      onclick: () => openCase(c.id, state.names[c.customer_id] || c.customer_id) },
      el("strong", {}, kit().fmtDate(c.lost_at.slice(0, 10))), " · ", state.names[c.customer_id] || c.customer_id, " · ",
      t("wb.call_agent"), ": ", c.call_agent || t("wb.unassigned"), " · ", t("wb.offers"), ": ", String(c.offers.length))) : [el("li", { class: "muted" }, t("queue.empty"))]));
  }
  function renderOffers(offers) {
    $("wb-offers").replaceChildren(...offers.map((o) => el("li", { "data-offer": o.id },
      o.summary, o.discount_percent ? ` (${o.discount_percent}%)` : "", " · ", kit().fmtDate(o.valid_until), " · ", t("wb.offer." + (o.response || "open")),
      ...(o.response || !manages() ? [] : [" ",
        el("button", { type: "button", class: "offer-accept", onclick: () => answerOffer(o.id, "accepted") }, t("wb.offer_accept")), " ",
        el("button", { type: "button", class: "offer-decline", onclick: () => answerOffer(o.id, "declined") }, t("wb.offer_decline"))]))));
  }
  function canSurvey(c) {
    return !c.surveyed_at && (state.me.role === "admin" || state.me.subject === c.call_agent || (!c.call_agent && state.me.role === "agent"));
  }
  function showCase(c) {
    $("wb-detail").textContent = kit().messageText({ message_key: c.detail_key, message_params: c.detail_params, body: c.detail });
    $("wb-call-agent").textContent = c.call_agent || t("wb.unassigned");
    $("wb-answers").textContent = c.surveyed_at ? t("wb.surveyed", { who: c.surveyed_by, reasons: c.reasons.join(", ") }) : t("wb.not_surveyed");
    $("wb-survey").hidden = !canSurvey(c);
    $("wb-manage").hidden = !manages();
    renderOffers(c.offers);
  }
  async function openCase(caseId, customerName) {
    state.caseId = caseId;
    $("wb-card").hidden = false;
    $("wb-error").textContent = "";
    $("wb-customer").textContent = customerName;
    const label = (r) => (kit().lang() === "zh-CN" ? r.label_zh : r.label_en);
    $("wb-reasons").replaceChildren(...state.reasons.map((r) => el("label", { class: "inline" },
      el("input", { type: "checkbox", id: "wb-reason-" + r.code, value: r.code }), label(r))));
    for (const id of ["wb-reason-text", "wb-return-if", "wb-offer-summary", "wb-offer-discount", "wb-offer-until"]) $(id).value = "";
    try {
      showCase(await kit().api(caseUrl()));
    } catch (e) {
      showError("wb-error", e);
    }
  }
  async function sendOffer() {
    const body = { summary: $("wb-offer-summary").value.trim(), valid_until: $("wb-offer-until").value };
    if ($("wb-offer-discount").value) body.discount_percent = Number($("wb-offer-discount").value);
    try {
      await kit().api(caseUrl("/offers"), { method: "POST", json: body });
      kit().toast(t("wb.offer_sent"));
      $("wb-error").textContent = "";
      showCase(await kit().api(caseUrl()));
    } catch (e) {
      showError("wb-error", e);
    }
  }
  async function answerOffer(offerId, response) {
    try {
      await kit().api(caseUrl(`/offers/${encodeURIComponent(offerId)}/response`), { method: "POST", json: { response } });
      showCase(await kit().api(caseUrl()));
    } catch (e) {
      showError("wb-error", e);
    }
  }
  async function saveSurvey() {
    const reasons = state.reasons.map((r) => r.code).filter((code) => $("wb-reason-" + code).checked);
    const body = { reasons };
    if ($("wb-reason-text").value.trim()) body.reason_text = $("wb-reason-text").value.trim();
    if ($("wb-return-if").value.trim()) body.would_return_if = $("wb-return-if").value.trim();
    try {
      await kit().api(caseUrl("/survey"), { method: "POST", json: body });
      kit().toast(t("wb.saved"));
      $("wb-error").textContent = "";
      showCase(await kit().api(caseUrl()));
      await loadWorklist();
    } catch (e) {
      showError("wb-error", e);
    }
  }
  async function decide(outcome) {
    try {
      await kit().api(caseUrl("/outcome"), { method: "POST", json: { outcome } });
      kit().toast(t("wb." + outcome));
      $("wb-card").hidden = true;
      await load();
    } catch (e) {
      showError("wb-error", e);
    }
  }

  async function loadWorklist() {
    // an agent has no portfolio: their worklist is the survey calls given to them
    const mine = state.me.role === "agent" ? "?account_manager=" + encodeURIComponent(state.me.subject) : "";
    renderWorklist((await kit().api("/api/v1/account-manager/worklist" + mine)).items);
  }
  async function load() {
    $("am-error").textContent = "";
    try {
      state.me = await kit().api("/api/v1/auth/me");
      const customer = state.me.role === "customer";  // a customer has only its reports here
      for (const id of ["am-worklist-card", "am-portfolio-card", "am-kpis-card"]) $(id).hidden = customer;
      $("kar-optin-row").hidden = !customer;
      $("kar-month-row").hidden = customer;
      if (customer) {
        $("am-cases-card").hidden = $("wb-card").hidden = true;
        return await loadReports();
      }
      state.reasons = await kit().api("/api/v1/account-manager/win-back-reasons");
      await loadWorklist();
      const portfolio = (await kit().api("/api/v1/account-manager/portfolio")).items;
      state.names = Object.fromEntries(portfolio.map((c) => [c.customer_id, c.name]));
      renderPortfolio(portfolio);
      $("am-cases-card").hidden = !manages();
      if (manages()) renderCases((await kit().api("/api/v1/account-manager/win-back-cases?status=in_progress")).items);
      renderKpis(await kit().api("/api/v1/account-manager/kpis?period=" + thisMonth()));
      await loadReports();
    } catch (e) {
      showError("am-error", e);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("wb-save").addEventListener("click", saveSurvey);
    $("wb-won").addEventListener("click", () => decide("won_back"));
    $("wb-lost").addEventListener("click", () => decide("lost_for_good"));
    $("wb-offer-send").addEventListener("click", sendOffer);
    $("kar-load").addEventListener("click", loadReports);
    $("kar-optin").addEventListener("change", setOptIn);
  });
  return { load };
})();
