/* The CRM console: call-center page and management dashboard, vanilla JS against /api/v1.
   Same auth as every client: a bearer token (demo login in development mode). */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { token: sessionStorage.getItem("crm.token"), me: null, lang: localStorage.getItem("crm.lang") || "zh-CN", customer: null, complaint: null, slaTimer: null };

  // ------------------------------------------------------------------ i18n
  function t(key, vars) {
    const table = window.I18N[state.lang] || window.I18N.en;
    let s = table[key] !== undefined ? table[key] : (window.I18N.en[key] !== undefined ? window.I18N.en[key] : key);
    for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
    return s;
  }
  function applyLang() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((e) => { e.placeholder = t(e.dataset.i18nPlaceholder); });
    $("lang-toggle").textContent = state.lang === "zh-CN" ? "EN" : "中文";
    if (state.customer) render360(state.customer);
    if (state.complaint) renderComplaint(state.complaint.complaint, state.complaint.timeline);
    if (state.dashboard) renderDashboard(state.dashboard);
    if (isWorker()) loadQueue();
    if (state.me && !$("admin-view").hidden) window.Admin.render();
  }

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function toast(msg) {
    const box = $("toast");
    box.textContent = msg;
    box.classList.add("show");
    setTimeout(() => box.classList.remove("show"), 3000);
  }
  // dates and numbers in the reader's locale (zh-CN: 2026年3月5日 14:30; en: Mar 5, 2026, 2:30 PM)
  const fmtTime = (iso) => (iso ? new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)) : "–");
  // a calendar day ("2026-03-05"): formatted in UTC so the day never shifts with the browser's time zone
  const fmtDate = (day) => (day ? new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(day.slice(0, 10) + "T00:00:00Z")) : "–");
  const fmtNumber = (n, digits) => new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits === undefined ? 2 : digits }).format(n);
  // months as the services count them: calendar months in China time (docs/scoring.md); the last closed one is the
  // newest month a monthly report has whole
  const thisMonth = () => new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" }).slice(0, 7);
  function previousMonth() {
    const [y, m] = thisMonth().split("-").map(Number);
    return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
  }
  const pct = (v) => (v === undefined || v === null ? "–" : new Intl.NumberFormat(state.lang, { style: "percent", maximumFractionDigits: 0 }).format(Number(v)));
  function duration(ms) {
    const m = Math.floor(Math.abs(ms) / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mm = m % 60;
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + mm + "m";
  }
  function display(v) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v === "object") {
      for (const k of ["value", "label", "level", "grade", "segment", "tier", "score", state.lang, "en"]) if (v[k] !== undefined && v[k] !== null) return display(v[k]);
      return "–";
    }
    if (typeof v === "number") return fmtNumber(v);
    return String(v);
  }
  function pick(obj, ...keys) {
    for (const key of keys) {
      let cur = obj;
      for (const part of key.split(".")) cur = cur && typeof cur === "object" ? cur[part] : undefined;
      if (cur !== undefined && cur !== null) return cur;
    }
    return undefined;
  }
  function listOf(body, ...keys) {
    if (Array.isArray(body)) return body;
    if (!body || typeof body !== "object") return [];
    for (const k of [...keys, "items", "results", "data", "rows"]) if (Array.isArray(body[k])) return body[k];
    return [];
  }
  // a data value in the reader's language: the key `<prefix>.<value>` when there is one, else the value itself
  function tv(prefix, value) {
    if (value === null || value === undefined || value === "") return value;
    const key = prefix + "." + value;
    const text = t(key);
    return text === key ? value : text;
  }
  // a data value that may arrive as an object ({level: "high"}) or a number: display() first, then tv()
  const tvd = (prefix, value) => tv(prefix, display(value));
  function statusText(c) {
    const st = c.status_text;
    if (st && typeof st === "object") return st[state.lang] || st.en || c.status;
    return st || tv("status", c.status);
  }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (state.token) opts.headers.Authorization = "Bearer " + state.token;
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    const response = await fetch(path, opts);
    const body = (response.headers.get("content-type") || "").includes("json") ? await response.json() : await response.text();
    if (response.status === 401 && state.token) logout();
    if (!response.ok) {
      const err = new Error((body && body.detail) || (body && body.title) || t("error.http", { s: response.status }));
      err.status = response.status;
      err.body = body;
      throw err;
    }
    return body;
  }
  function showWarnings(target, warnings) {
    target.replaceChildren(...(warnings || []).map((w) => el("div", { class: "warning" }, t("warning.partial", { s: w.source + " (" + w.status + ")" }))));
  }

  // ------------------------------------------------------------------ login
  async function loadDemoUsers() {
    try {
      const body = await api("/api/v1/auth/demo-users");
      $("login-user").replaceChildren(...body.users.map((u) => el("option", { value: u.username }, `${u.name || u.username} (${u.role})`)));
    } catch (e) {
      $("login-user").replaceChildren();
      $("login-btn").disabled = true;
    }
  }
  async function login() {
    $("login-error").textContent = "";
    try {
      const body = await api("/api/v1/auth/demo-login", { method: "POST", json: { username: $("login-user").value } });
      await useToken(body.access_token);
    } catch (e) {
      $("login-error").textContent = t("login.failed") + ": " + e.message;
    }
  }
  async function useToken(token) {
    state.token = token;
    try {
      state.me = await api("/api/v1/auth/me");
    } catch (e) {
      state.token = null;
      $("login-error").textContent = t("login.failed") + ": " + e.message;
      return;
    }
    sessionStorage.setItem("crm.token", token);
    $("whoami").textContent = `${state.me.name || state.me.subject} · ${state.me.role}`;
    $("login-view").hidden = true;
    $("logout-btn").hidden = false;
    $("tabs").hidden = false;
    $("tab-dashboard").hidden = state.me.role !== "admin";
    $("tab-sent").hidden = !isWorker();
    $("tab-admin").hidden = state.me.role !== "admin";
    $("tab-accounts").hidden = !["account_manager", "admin", "agent", "customer"].includes(state.me.role);  // a customer: its reports
    showTab(state.me.role === "account_manager" ? "accounts" : "callcenter");
    startWorkspace();
  }
  function logout() {
    if (state.refreshTimer) clearInterval(state.refreshTimer);
    state.token = null;
    state.me = null;
    sessionStorage.removeItem("crm.token");
    for (const id of ["callcenter-view", "dashboard-view", "sent-view", "admin-view", "accounts-view", "tabs", "logout-btn"]) $(id).hidden = true;
    $("whoami").textContent = "";
    $("login-view").hidden = false;
  }
  function showTab(name) {
    document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
    $("callcenter-view").hidden = name !== "callcenter";
    $("dashboard-view").hidden = name !== "dashboard";
    $("sent-view").hidden = name !== "sent";
    $("admin-view").hidden = name !== "admin";
    $("accounts-view").hidden = name !== "accounts";
    if (name === "dashboard") loadDashboard();
    else if (name === "sent") loadSent();
    else if (name === "admin") window.Admin.load();
    else if (name === "accounts") window.Accounts.load();
    else $("search-input").focus();
  }

  // ------------------------------------------------------------------ call center
  async function search(ev) {
    if (ev) ev.preventDefault();
    const q = $("search-input").value.trim();
    if (!q) return;
    try {
      const body = await api("/api/v1/search?q=" + encodeURIComponent(q));
      showWarnings($("search-warnings"), body.warnings);
      const customers = body.customers.map((c) => el("li", { class: "result-customer", "data-id": c.id, onclick: () => open360(c.id) },
        el("strong", {}, c.name), el("span", { class: "badge" }, c.id), c.industry ? el("span", { class: "muted" }, " " + c.industry) : null));
      const complaints = body.complaints.map((c) => el("li", { class: "result-complaint", "data-id": c.id, onclick: () => openComplaint(c.id) },
        el("strong", {}, c.number || c.id), el("span", { class: "badge" }, statusText(c)), " ", tv("cat", c.category) || ""));
      $("result-customers").replaceChildren(...(customers.length ? customers : [el("li", { class: "empty" }, t("search.none"))]));
      $("result-complaints").replaceChildren(...(complaints.length ? complaints : [el("li", { class: "empty" }, t("search.none"))]));
      if (body.customers.length === 1) open360(body.customers[0].id);
    } catch (e) {
      toast(e.message);
    }
  }

  async function open360(customerId) {
    try {
      state.customer = await api(`/api/v1/customers/${encodeURIComponent(customerId)}/360`);
      render360(state.customer);
    } catch (e) {
      toast(e.message);
    }
  }
  function kpi(label, value, cls) {
    return el("div", { class: "kpi" + (cls ? " " + cls : "") }, el("div", { class: "k" }, label), el("div", { class: "v" }, display(value)));
  }
  function render360(v) {
    const p = v.profile || {}, s = v.scores || {};
    $("c360").hidden = false;
    $("c360-name").textContent = p.name || v.customer_id;
    showWarnings($("c360-warnings"), v.warnings);
    $("c360-kpis").replaceChildren(
      kpi(t("kpi.tier"), tvd("tier", v.tier)),
      kpi(t("kpi.abc"), pick(s, "abc_class", "abc.class", "abc")),
      kpi(t("kpi.value"), pick(s, "current_value", "value_score", "value.score", "customer_value")),
      kpi(t("kpi.loyalty"), pick(s, "loyalty.score", "loyalty_score", "loyalty")),
      kpi(t("kpi.credit"), pick(s, "credit_grade", "credit.grade", "credit")),
      kpi(t("kpi.churn"), tvd("risk", pick(s, "churn_risk.level", "churn.level", "churn_risk", "churn"))),
      kpi(t("kpi.rfm"), tvd("rfm", pick(s, "rfm_segment", "rfm.segment", "rfm"))),
      kpi(t("kpi.manager"), p.account_manager),
    );
    const complaints = v.open_complaints || [];
    $("c360-complaints").replaceChildren(...(complaints.length ? complaints.map((c) => el("li", { class: "c360-complaint", "data-id": c.id, onclick: () => openComplaint(c.id) },
      el("strong", {}, c.number || c.id), el("span", { class: "badge " + (c.priority || "") }, statusText(c)), " ", tv("cat", c.category) || "")) : [el("li", { class: "empty" }, "–")]));
    const ships = v.recent_shipments || [];
    $("c360-shipments").tBodies[0].replaceChildren(...ships.map((o) => el("tr", {},
      el("td", {}, o.order_id || "–"), el("td", {}, o.tracking_number || "–"), el("td", {}, tvd("status", o.status)),
      el("td", {}, o.on_time === undefined || o.on_time === null ? "–" : o.on_time ? t("yes") : t("no")))));
    const notes = v.last_notifications || [];
    $("c360-notifications").replaceChildren(...notes.map((n) => el("li", {}, `${tv("channel", n.channel) || ""} · ${n.template || n.template_key || n.kind || ""} · ${tvd("status", n.status)} ${n.sent_at ? fmtTime(n.sent_at) : ""}`)));
  }

  // ------------------------------------------------------------------ sent messages (make run's sink, as Mailpit lists them)
  async function loadSent() {
    $("sent-empty").hidden = true;
    try {
      const items = listOf(await api("/api/v1/dev/sent?limit=100"));
      $("sent-table").tBodies[0].replaceChildren(...items.map((m) => el("tr", { class: "sent-item" },
        el("td", {}, fmtTime(m.received_at)), el("td", {}, tv("channel", m.channel)), el("td", {}, (m.to || []).join(", ")),
        el("td", {}, m.subject || "–"), el("td", { class: "pre" }, m.body || ""))));
      if (!items.length) { $("sent-empty").textContent = t("sent.none"); $("sent-empty").hidden = false; }
    } catch (e) {
      $("sent-table").tBodies[0].replaceChildren();
      $("sent-empty").textContent = e.status === 404 ? t("sent.no_sink") : e.message;
      $("sent-empty").hidden = false;
    }
  }

  // ------------------------------------------------------------------ agent workspace: queues and actions
  const WORKERS = ["agent", "admin"];
  const SOON_MS = 3600 * 1000;
  state.queue = "mine";
  function isWorker() { return state.me && WORKERS.includes(state.me.role); }
  function slaDue(c) {
    const running = (c.clocks || []).filter((k) => k.deadline_at && !k.stopped_at && !k.paused).map((k) => new Date(k.deadline_at).getTime());
    return running.length ? Math.min(...running) : null;
  }
  function queuePath(queue) {
    const team = state.me.role === "agent" && state.me.team ? "&team_id=" + encodeURIComponent(state.me.team) : "";
    if (queue === "mine") return "/api/v1/complaints?open_only=true&limit=200&agent_id=" + encodeURIComponent(state.me.subject);
    if (queue === "team") return "/api/v1/complaints?status=new&limit=200" + team;
    return "/api/v1/complaints?open_only=true&limit=500" + team;
  }
  function inQueue(queue, c, now) {
    const due = slaDue(c);
    if (queue === "soon") return due !== null && due >= now && due - now <= SOON_MS;
    if (queue === "breached") return (due !== null && due < now) || (c.clocks || []).some((k) => k.breached_at && !k.stopped_at);
    return true;
  }
  async function loadQueue() {
    if (!isWorker()) return;
    const queue = state.queue;
    try {
      const now = Date.now();
      const items = listOf(await api(queuePath(queue))).filter((c) => inQueue(queue, c, now));
      items.sort((a, b) => (slaDue(a) ?? Infinity) - (slaDue(b) ?? Infinity));
      if (queue !== state.queue) return;  // another queue was chosen meanwhile
      $("queue-list").replaceChildren(...(items.length ? items.map((c) => {
        const due = slaDue(c);
        return el("li", { class: "queue-item" + (due !== null && due < now ? " breached" : ""), "data-id": c.id, onclick: () => openComplaint(c.id) },
          el("strong", {}, c.number || c.id), el("span", { class: "badge " + (c.priority || "") }, statusText(c)), " ", tv("cat", c.category) || "",
          due !== null ? el("span", { class: "muted" }, " · " + t("queue.due", { t: fmtTime(new Date(due).toISOString()) })) : null);
      }) : [el("li", { class: "empty" }, t("queue.empty"))]));
    } catch (e) {
      toast(e.message);
    }
  }
  function chooseQueue(name) {
    state.queue = name;
    document.querySelectorAll(".queue-tab").forEach((b) => b.classList.toggle("active", b.dataset.queue === name));
    loadQueue();
  }
  function startWorkspace() {
    $("queues").hidden = !isWorker();
    if (!isWorker()) return;
    chooseQueue(state.queue);
    if (state.refreshTimer) clearInterval(state.refreshTimer);
    // the timeline, the clocks and the queues follow what others do, without a reload
    state.refreshTimer = setInterval(() => {
      loadQueue();
      if (state.complaint && !$("complaint-panel").hidden) openComplaint(state.complaint.complaint.id);
    }, 15000);
  }
  async function act(action) {
    const c = state.complaint && state.complaint.complaint;
    if (!c) return;
    const text = $("action-text").value.trim();
    const needsText = { reply: true, note: true, resolve: true };
    if (needsText[action] && !text) { toast(t("action.need_text")); return; }
    const calls = {
      claim: ["assign", { agent_id: state.me.subject, team_id: c.team_id || undefined, reason: c.agent_id && c.agent_id !== state.me.subject ? t("action.claim") : undefined }],  // the agent's word, in their language
      reply: ["replies", { body: text }],
      note: ["notes", { body: text }],
      waiting: ["status", { status: "waiting_on_customer", reason: text || undefined }],
      resolve: ["resolve", { outcome: text }],
      close: ["close", { reason: text || undefined }],
      reopen: ["reopen", { reason: text || undefined }],
    };
    const [path, body] = calls[action];
    try {
      await api(`/api/v1/complaints/${encodeURIComponent(c.id)}/${path}`, { method: "POST", json: body,
        headers: { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) } });
      $("action-text").value = "";
      toast(t("action.done"));
      await openComplaint(c.id);
      loadQueue();
    } catch (e) {
      toast(e.message);
    }
  }

  async function openComplaint(id) {
    try {
      const [complaint, timeline] = await Promise.all([
        api(`/api/v1/complaints/${encodeURIComponent(id)}`),
        api(`/api/v1/complaints/${encodeURIComponent(id)}/timeline`),
      ]);
      state.complaint = { complaint, timeline: listOf(timeline, "entries", "timeline") };
      renderComplaint(state.complaint.complaint, state.complaint.timeline);
    } catch (e) {
      toast(e.message);
    }
  }
  // the routing rule an assignment kept (complaints' routing.rule_record): its name, or what it matches, and the team
  function ruleText(rule) {
    if (!rule) return null;
    if (rule.source === "fallback") return t("rule.fallback", { team: rule.team });
    const matches = [rule.category && tv("cat", rule.category), rule.region, rule.service_type].filter(Boolean).join(" · ") || t("admin.any");
    const label = rule.name || matches;
    return (rule.source === "built_in" ? t("rule.built_in") + " " : "") + `${label} → ${rule.team}`;
  }
  // a text of a service (complaints' messages.py): its message key and parameters through the message tables, the
  // parameters that are codes through their value tables; an entry without a key we know (someone's own words, a row
  // written before keys existed) shows its body as the service wrote it
  const PARAM_TABLES = { status_from: "status", status_to: "status", priority_from: "priority", priority_to: "priority", tier: "tier", clock: "clock", strategy: "strategy", interaction_kind: "ikind", period: "qperiod", old_status: "status" };
  function messageText(e) {
    const key = e.message_key ? "msg." + e.message_key : null;
    if (!key || window.I18N.en[key] === undefined) return e.body || "";
    const params = {};
    const given = e.message_params || {};
    for (const [name, value] of Object.entries(given)) {
      // a nested message (the worklist's win-back call names its case's detail): its own key, else its English
      if (name === "case_detail") { params[name] = messageText({ message_key: given.case_detail_key, message_params: given.case_detail_params, body: value }); continue; }
      params[name] = name === "rule" ? ruleText(value) : PARAM_TABLES[name] ? display(tv(PARAM_TABLES[name], value)) : display(value);
    }
    return t(key, params);
  }
  function renderComplaint(c, timeline) {
    $("complaint-panel").hidden = false;
    const routed = [...timeline].reverse().find((e) => e.data && e.data.rule);
    $("complaint-number").textContent = c.number || c.id;
    $("complaint-facts").replaceChildren(...[kpi(t("kpi.status"), statusText(c)), kpi(t("kpi.category"), tv("cat", c.category)), kpi(t("kpi.priority"), tv("priority", c.priority)),
      kpi(t("kpi.channel"), tv("channel", c.channel)), kpi(t("kpi.filed"), c.filed_at ? fmtTime(c.filed_at) : null),
      routed ? kpi(t("kpi.rule"), ruleText(routed.data.rule), "rule") : null].filter(Boolean));
    // a description the service wrote (a TMS incident's) from its key; the filer's own words as written
    $("complaint-description").textContent = messageText({ message_key: c.description_key, message_params: c.description_params, body: c.description });
    $("complaint-actions").hidden = !isWorker();
    $("complaint-panel").dataset.status = c.status;
    $("timeline").replaceChildren(...timeline.map((e) => {
      const text = messageText(e);
      return el("li", { class: "timeline-entry", "data-message": e.message_key || undefined }, el("time", { datetime: e.at }, fmtTime(e.at)),
        el("strong", { "data-kind": e.kind }, tv("kind", e.kind)), text ? " — " + text : "");
    }));
    if (state.slaTimer) clearInterval(state.slaTimer);
    const tick = () => renderSla(c);
    tick();
    state.slaTimer = setInterval(tick, 1000);
  }
  function renderSla(c) {
    const box = $("sla-clock");
    const clocks = Array.isArray(c.clocks) ? c.clocks : [];
    const clock = clocks.find((k) => !k.stopped_at) || clocks[0];
    box.className = "sla";
    if (clock && clock.paused && !clock.stopped_at) { box.textContent = t("sla.paused"); box.classList.add("stopped"); return; }  // no deadline while paused
    if (!clock || !clock.deadline_at) { box.textContent = t("sla.none"); box.classList.add("stopped"); return; }
    if (clock.stopped_at) { box.textContent = t("sla.stopped"); box.classList.add("stopped"); return; }
    const left = new Date(clock.deadline_at).getTime() - Date.now();
    if (left < 0 || clock.breached_at) { box.textContent = `${tv("clock", clock.kind)}: ` + t("sla.breached", { t: duration(left) }); box.classList.add("breached"); return; }
    box.textContent = `${tv("clock", clock.kind)}: ` + t("sla.left", { t: duration(left) });
    if (left < 3600 * 1000) box.classList.add("soon");
  }

  function startNewComplaint() {
    $("new-complaint").hidden = false;
    $("f-customer").value = state.customer ? state.customer.customer_id : "";
    const phone = state.customer && state.customer.profile ? state.customer.profile.phone || pick(state.customer.profile, "contacts.0.phone") : "";
    $("f-phone").value = phone || "";
    $("f-description").focus();
  }
  async function fileComplaint(ev) {
    ev.preventDefault();
    $("f-error").textContent = "";
    const body = { customer_id: $("f-customer").value.trim(), category: $("f-category").value, description: $("f-description").value.trim(), channel: "call_center",
      tracking_numbers: $("f-tracking").value.trim() ? [$("f-tracking").value.trim()] : [], language: state.lang };
    if ($("f-phone").value.trim()) body.reporter = { phone: $("f-phone").value.trim() };
    try {
      const created = await api("/api/v1/complaints", { method: "POST", json: body, headers: { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) } });
      toast(t("complaint.filed") + ": " + (created.number || created.id));
      $("new-complaint").hidden = true;
      $("complaint-form").reset();
      await openComplaint(created.id);
      if (state.customer) open360(state.customer.customer_id);
    } catch (e) {
      $("f-error").textContent = e.message;
    }
  }

  // ------------------------------------------------------------------ dashboard
  async function loadDashboard() {
    loadModelChart();
    await loadReports();
  }
  // the management reports' filters (scoring's crm_scoring.reports.filters), validated by the service, not here
  const DASH_FILTERS = ["region", "industry", "account_manager", "service_type", "tier", "period_start", "period_end"];
  function dashFilterQuery() {
    const q = new URLSearchParams();
    for (const name of DASH_FILTERS) {
      const v = $("filter-" + name).value.trim();
      if (v) q.append(name, v);
    }
    return q.toString();
  }
  function problemText(e) {
    /* a 422's detail and its field errors ("period_end: period_start is after period_end.") */
    const errors = ((e.body && e.body.errors) || []).map((x) => `${(x.loc || []).slice(-1)[0]}: ${x.msg}`);
    return [e.message, ...errors.filter((x) => !x.endsWith(": " + e.message))].join(" ");
  }
  async function loadReports(ev) {
    /* the report-backed cards with the filter bar's filters; rejected filters leave the cards as they were and say why */
    if (ev) ev.preventDefault();
    const filters = dashFilterQuery();
    $("dash-filter-error").textContent = "";
    loadServiceLevels(filters);
    try {
      state.dashboard = await api("/api/v1/dashboard" + (filters ? "?" + filters : ""));
      renderDashboard(state.dashboard);
    } catch (e) {
      if (e.status === 422) $("dash-filter-error").textContent = t("filter.rejected", { m: problemText(e) });
      else toast(e.message);
    }
  }
  function clearFilters() {
    $("dash-filters").reset();
    loadReports();
  }
  async function loadModelChart(ev) {
    /* the scoring service draws the chart (SVG); fetched with the token, shown as an image from a blob URL */
    if (ev) ev.preventDefault();
    const input = $("model-calibration-end");
    if (!input.value) input.value = new Date(Date.now() - 182 * 86400000).toISOString().slice(0, 10);
    try {
      const svgText = await api("/api/v1/reports/model.svg?calibration_end=" + encodeURIComponent(input.value));
      if (state.modelChartUrl) URL.revokeObjectURL(state.modelChartUrl);
      state.modelChartUrl = URL.createObjectURL(new Blob([svgText], { type: "image/svg+xml" }));
      $("chart-model").replaceChildren(el("img", { src: state.modelChartUrl, alt: t("dash.model"), class: "model-chart" }));
    } catch (e) {
      Charts.noData($("chart-model"), e.message);
    }
  }
  async function loadServiceLevels(filters) {
    /* scoring's /reports/service-levels for the last closed month, fetched apart from /dashboard (like the model
       chart): the aggregate's sources already come close to its per-source timeout (docs/performance.md) */
    state.serviceLevels = null;
    state.serviceLevelsFilters = filters || "";
    try {
      state.serviceLevels = await api("/api/v1/reports/service-levels?" + serviceLevelsQuery(previousMonth()) + "&worst=5");
      renderServiceLevels(state.serviceLevels);
    } catch (e) {
      Charts.noData($("chart-service-levels"), e.message);
      $("service-levels-worst").replaceChildren();
    }
  }
  const serviceLevelsQuery = (month) => "measure=on_time_delivery_pct&month=" + encodeURIComponent(month) + (state.serviceLevelsFilters ? "&" + state.serviceLevelsFilters : "");
  function renderServiceLevels(report) {
    /* the base's on-time delivery per month (the trend's order-weighted mean, in percent); a month without records
       has no rate and is left out rather than drawn as 0%. The worst customers of the month below, lowest first */
    const monthLabel = new Intl.DateTimeFormat(state.lang, { year: "numeric", month: "short", timeZone: "UTC" });
    const percent = (v) => (v === null || v === undefined ? "–" : fmtNumber(v, 1) + "%");
    const points = (report.trend || []).filter((m) => m.on_time_delivery_pct !== null && m.on_time_delivery_pct !== undefined)
      .map((m) => ({ label: monthLabel.format(new Date(m.month + "-01T00:00:00Z")), value: Number(m.on_time_delivery_pct) }));
    Charts.line($("chart-service-levels"), points, { nodata: t("dash.nodata"), number: (v) => fmtNumber(v, 0) + "%" });
    caption($("chart-service-levels"), t("dash.sl_caption", { m: report.month, n: fmtNumber(report.customers) }));
    const rows = (report.worst || []).map((r) => el("tr", {}, el("td", {}, r.customer_id), el("td", {}, tvd("tier", r.tier)),
      el("td", {}, percent(r.on_time_delivery_pct)), el("td", {}, fmtNumber(r.orders || 0))));
    $("service-levels-worst").replaceChildren(...(rows.length ? [el("table", { class: "table" },
      el("thead", {}, el("tr", {}, ...["sl.customer", "kpi.tier", "sl.on_time", "sl.orders"].map((k) => el("th", {}, t(k))))),
      el("tbody", {}, ...rows))] : []));
  }
  async function downloadServiceLevels(ev) {
    /* the CSV needs the token, so it is fetched and handed to the browser as a file */
    ev.preventDefault();
    const month = (state.serviceLevels && state.serviceLevels.month) || previousMonth();
    try {
      const body = await api("/api/v1/reports/service-levels.csv?" + serviceLevelsQuery(month));
      const a = el("a", { href: URL.createObjectURL(new Blob([body], { type: "text/csv" })), download: `service-levels-${month}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      toast(e.message);
    }
  }
  function entries(obj, keyName) {
    /* {"delay": 12} or [{category: "delay", count: 12}] -> [{label, value}] */
    if (Array.isArray(obj)) return obj.map((r) => ({ label: display(r[keyName] || r.label || r.name), value: Number(pick(r, "count", "total", "value") || 0) }));
    if (obj && typeof obj === "object") return Object.entries(obj).map(([k, v]) => ({ label: k, value: Number(typeof v === "object" ? pick(v, "count", "total") || 0 : v) }));
    return [];
  }
  function paretoRows(data) {
    if (data && Array.isArray(data.classes)) {  // the scoring service's report: contribution per ABC class
      let acc = 0;
      return data.classes.filter((c) => c.customers > 0).map((c) => {
        acc += Number(c.contribution_share || 0);
        return { label: `${c.class} (${c.customers})`, value: Number(c.contribution || 0), cumulative: acc, klass: c.class };
      });
    }
    const rows = listOf(data, "customers", "pareto").map((r) => ({
      label: r.name || r.customer_name || r.customer_id || r.label || "?",
      value: Number(pick(r, "revenue", "monetary", "amount", "contribution", "value") || 0),
      cumulative: pick(r, "cumulative_share", "cum_share", "cumulative"),
      klass: pick(r, "abc_class", "class", "abc"),
    })).sort((a, b) => b.value - a.value).slice(0, 60);
    const total = rows.reduce((s, r) => s + r.value, 0) || 1;
    let acc = 0;
    rows.forEach((r) => { acc += r.value; if (r.cumulative === undefined) r.cumulative = acc / total; r.cumulative = Number(r.cumulative); });
    return rows;
  }
  // the complaints report lists only the periods that had complaints (2026-11, or 2026-11-05 by day): the trend shows
  // every month or day from the first to the latest, at least six, those without complaints at 0, labelled in the
  // reader's language; other period keys (weeks) are shown as they come
  function trendPoints(rows) {
    const byKey = new Map(rows.map((r) => [r.label, r.value]));
    const keys = [...byKey.keys()].sort();
    const month = /^\d{4}-\d{2}$/, day = /^\d{4}-\d{2}-\d{2}$/;
    if (!keys.length || !(keys.every((k) => month.test(k)) || keys.every((k) => day.test(k)))) return rows;
    const monthly = month.test(keys[0]);
    const start = (k) => new Date(Date.UTC(+k.slice(0, 4), +k.slice(5, 7) - 1, monthly ? 1 : +k.slice(8, 10)));
    const next = (d) => (monthly ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)) : new Date(d.getTime() + 86400000));
    const keyOf = (d) => d.toISOString().slice(0, monthly ? 7 : 10);
    const last = start(keys[keys.length - 1]);
    let first = start(keys[0]);
    for (let back = 5; back > 0; back--) {  // at least six periods up to the latest
      const d = monthly ? new Date(Date.UTC(last.getUTCFullYear(), last.getUTCMonth() - back, 1)) : new Date(last.getTime() - back * 86400000);
      if (d < first) { first = d; break; }
    }
    const label = new Intl.DateTimeFormat(state.lang, monthly ? { year: "numeric", month: "short", timeZone: "UTC" } : { month: "short", day: "numeric", timeZone: "UTC" });
    const points = [];
    for (let d = first; d <= last; d = next(d)) points.push({ label: label.format(d), value: byKey.get(keyOf(d)) || 0, period: keyOf(d) });
    return points;
  }
  function caption(target, text) {
    if (text) target.append(el("div", { class: "muted caption" }, text));
  }
  function renderDashboard(d) {
    const s = d.sections || {}, labels = { nodata: t("dash.nodata"), revenue: t("chart.revenue"), cumulative: t("chart.cumulative") };
    showWarnings($("dashboard-warnings"), d.warnings);
    Charts.pareto($("chart-pareto"), paretoRows(s.pareto), labels);
    if (s.pareto && s.pareto.top_20pct_share !== undefined) caption($("chart-pareto"), [t("dash.top_share", { p: pct(0.2), s: pct(s.pareto.top_20pct_share) }), t("dash.top_share", { p: pct(0.01), s: pct(s.pareto.top_1pct_share) })].join(" · "));
    const cells = listOf(s.rfm, "cells", "grid").filter((c) => pick(c, "r", "recency_score", "x") !== undefined).map((c) => ({
      x: Number(pick(c, "r", "recency_score", "x")), y: Number(pick(c, "f", "frequency_score", "y")), value: Number(pick(c, "count", "customers", "value") || 0), label: tv("rfm", c.segment) }));
    if (cells.length) Charts.heatGrid($("chart-rfm"), cells, { nodata: labels.nodata, x: t("chart.recency"), y: t("chart.frequency") });
    else Charts.bars($("chart-rfm"), entries(s.rfm && s.rfm.segments, "segment").map((g) => ({ label: tv("rfm", g.label), values: [g.value] })), [t("chart.count")], labels);
    if (s.rfm && Array.isArray(s.rfm.segments) && cells.length) caption($("chart-rfm"), s.rfm.segments.map((g) => `${tv("rfm", g.segment)}: ${fmtNumber(g.count)}`).join(" · "));
    const tiers = listOf(s.tiers, "tiers");
    const moves = listOf(s.tier_movements, "movements", "changes");
    if (moves.length) {
      Charts.bars($("chart-tiers"), moves.map((m) => ({ label: `${tvd("tier", m.from || m.old_tier)} → ${tvd("tier", m.to || m.new_tier)}`, values: [Number(m.count || 0)] })), ["#"], labels);
      caption($("chart-tiers"), entries(tiers, "tier").map((g) => `${tv("tier", g.label)}: ${fmtNumber(g.value)}`).join(" · "));
    } else Charts.bars($("chart-tiers"), entries(tiers, "tier").map((g) => ({ label: tv("tier", g.label), values: [g.value] })), [t("kpi.tier")], labels);
    const valueMatrix = s.matrices && s.matrices.matrices && s.matrices.matrices.current_potential;
    Charts.bars($("chart-value-matrix"), (valueMatrix ? valueMatrix.cells : []).map((cell) => ({
      label: t("matrix." + cell.cell), values: [Number(cell.customers || 0)], notes: [pct(cell.revenue_share)] })), [t("chart.customers")], labels);
    renderAbc(s.abc, labels);
    renderCreditChurn(s.credit_churn, labels);
    if (state.serviceLevels) renderServiceLevels(state.serviceLevels);
    const c = s.complaints || {};
    const cats = entries(c.by_category, "category").sort((a, b) => b.value - a.value);
    Charts.bars($("chart-complaints"), cats.map((g) => {
      const row = Array.isArray(c.by_category) ? c.by_category.find((r) => display(r.category) === g.label) : null;
      const within = row ? pick(row, "within_sla", "sla_met") : undefined;
      const label = tv("cat", g.label);
      return within === undefined ? { label, values: [g.value] } : { label, values: [g.value, Number(within)] };
    }), Array.isArray(c.by_category) ? [t("chart.count"), t("chart.sla")] : [t("chart.count")], labels);
    if (c.sla) caption($("chart-complaints"), `${t("chart.sla")}: ${t("clock.first_response")} ${pct(pick(c.sla, "first_response.rate"))} · ${t("clock.resolution")} ${pct(pick(c.sla, "resolution.rate"))}`);
    Charts.line($("chart-complaint-trend"), trendPoints(entries(c.by_period || c.by_week || c.by_month || c.trend, "period")), Object.assign({ number: (v) => fmtNumber(v, 0) }, labels));
    const n = s.notifications || {};
    const perChannel = Array.isArray(n.by_channel) ? n.by_channel
      : Object.entries(n.by_channel || {}).map(([channel, st]) => Object.assign({ channel }, st));  // {email: {sent: 3, failed: 1}}
    Charts.bars($("chart-notifications"), perChannel.map((c) => ({
      label: tvd("channel", c.channel), values: [Number(c.sent || 0) + Number(c.delivered || 0), Number(c.failed || 0) + Number(c.bounced || 0)] })),
      [t("chart.sent"), t("chart.failed")], labels);
    // suppressions by reason key (notifications' reasons.py) in the reader's language; a reason without a key as written
    const suppressed = Array.isArray(n.suppressed_by_reason_key) ? n.suppressed_by_reason_key.map((g) => [g.key ? tv("reason", g.key) : g.text || "–", g.count])
      : Object.entries(n.suppressed_by_reason || {});
    if (suppressed.length) caption($("chart-notifications"), t("chart.suppressed") + ": " + suppressed.map(([r, k]) => `${r} ${fmtNumber(k)}`).join(" · "));
  }

  function renderAbc(abc, labels) {
    /* scoring's /reports/abc: the three- and four-way classes as bars, the deciles' revenue shares as the caption */
    const splits = (abc && abc.splits) || {};
    const rows = ["three_way", "four_way"].flatMap((name) => ((splits[name] && splits[name].classes) || []).map((k) => ({
      label: `${t("abc." + name)} ${k.class}`, values: [Number(k.customers || 0)], notes: [pct(k.revenue_share)] })));
    Charts.bars($("chart-abc"), rows, [t("chart.customers")], labels);
    const deciles = (splits.ten_way && splits.ten_way.classes) || [];
    if (rows.length && deciles.length) caption($("chart-abc"), t("dash.deciles") + ": " + deciles.map((d) => `${d.class}: ${pct(d.revenue_share)}`).join(" · "));
  }
  function renderCreditChurn(report, labels) {
    /* scoring's /reports/credit-churn: customers per credit grade and per churn risk, their movements as the caption */
    const grades = ((report && report.credit_grades) || []).map((d) => ({
      label: d.value === "unrated" ? t("matrix.unrated") : t("credit.grade", { g: d.value }), values: [Number(d.customers || 0)], notes: [pct(d.share)] }));
    const risks = ((report && report.churn_risk) || []).map((d) => ({ label: `${t("kpi.churn")}: ${tv("risk", d.value)}`, values: [Number(d.customers || 0)], notes: [pct(d.share)] }));
    Charts.bars($("chart-credit-churn"), grades.concat(risks), [t("chart.customers")], labels);
    const m = report && report.movements;
    if (m && grades.length) caption($("chart-credit-churn"), [["kpi.credit", m.credit_grade], ["kpi.churn", m.churn_risk]].map(([key, moved]) =>
      t("dash.moved", { s: t(key), from: fmtDate(m.period_start), to: fmtDate(m.period_end), up: fmtNumber(moved.improved), down: fmtNumber(moved.worsened) })).join(" · "));
  }

  // what the admin tab (admin.js) borrows
  window.ConsoleKit = { api, t, tv, el, toast, fmtTime, fmtDate, fmtNumber, pct, thisMonth, previousMonth, messageText, lang: () => state.lang };

  // ------------------------------------------------------------------ wiring
  document.addEventListener("DOMContentLoaded", async () => {
    $("lang-toggle").addEventListener("click", () => { state.lang = state.lang === "zh-CN" ? "en" : "zh-CN"; localStorage.setItem("crm.lang", state.lang); applyLang(); });
    $("login-btn").addEventListener("click", login);
    $("token-btn").addEventListener("click", () => useToken($("login-token").value.trim()));
    $("logout-btn").addEventListener("click", logout);
    document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
    $("search-form").addEventListener("submit", search);
    $("new-complaint-btn").addEventListener("click", startNewComplaint);
    $("complaint-form").addEventListener("submit", fileComplaint);
    document.querySelectorAll(".queue-tab").forEach((b) => b.addEventListener("click", () => chooseQueue(b.dataset.queue)));
    for (const action of ["claim", "reply", "note", "waiting", "resolve", "close", "reopen"]) $("act-" + action).addEventListener("click", () => act(action));
    $("model-form").addEventListener("submit", loadModelChart);
    $("service-levels-csv").addEventListener("click", downloadServiceLevels);
    $("dash-filters").addEventListener("submit", loadReports);
    $("filter-clear").addEventListener("click", clearFilters);
    let resizing = null;  // the charts are drawn at their box's width: drawn again when the window's width changes
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(() => { if (state.dashboard) renderDashboard(state.dashboard); }, 200); });
    applyLang();
    await loadDemoUsers();
    if (state.token) await useToken(state.token);
  });
})();
