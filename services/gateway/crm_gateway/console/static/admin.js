/* The console's admin tab: teams with their business calendar, agents with their shifts, routing rules.
   Reads and writes the gateway's setup API (GET/PUT /api/v1/teams, /agents, /routing-rules); console.js lends its helpers
   through window.ConsoleKit and calls Admin.load() when the tab opens. */
"use strict";
window.Admin = (function () {
  const $ = (id) => document.getElementById(id);
  const kit = () => window.ConsoleKit;
  const t = (key, vars) => kit().t(key, vars);
  const el = (...args) => kit().el(...args);
  const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];
  const CATEGORIES = ["delay", "wrong_delivery", "missed_delivery", "pickup", "damage", "loss", "billing", "staff_attitude", "information", "other"];
  const state = { teams: [], agents: [], rules: [] };

  const dates = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  const periodsText = (periods) => (periods || []).map(([s, e]) => `${s}-${e}`).join(", ");
  function parsePeriods(text) {
    return text.split(/[,;\n]+/).map((s) => s.trim()).filter(Boolean).map((p) => p.split(/\s*-\s*/));
  }
  function weekdayBoxes(container, prefix, checked) {
    container.replaceChildren(...WEEKDAYS.map((d) => el("label", { class: "inline" },
      el("input", Object.assign({ type: "checkbox", id: `${prefix}-${d}`, value: String(d) }, checked.includes(d) ? { checked: "" } : {})),
      t("weekday." + d))));
  }
  const checkedDays = (prefix) => WEEKDAYS.filter((d) => $(`${prefix}-${d}`).checked);
  function showError(target, e) {
    // where it went wrong (errors[].loc); the message itself only when the detail does not already say it
    const where = (e.body && e.body.errors || []).map((x) => (x.loc || []).slice(1).join(".") + (x.msg === e.message ? "" : ": " + x.msg)).join("; ");
    $(target).textContent = e.message + (where ? " — " + where : "");
  }
  async function put(path, body) {
    return kit().api(path, { method: "PUT", json: body });
  }

  // ------------------------------------------------------------------ teams and their calendars
  function renderTeams() {
    $("teams-table").tBodies[0].replaceChildren(...state.teams.map((team) => el("tr", { class: "team-row", "data-id": team.id, onclick: () => editTeam(team) },
      el("td", {}, team.id), el("td", {}, team.name), el("td", {}, t("strategy." + team.strategy)), el("td", {}, team.calendar.timezone),
      el("td", {}, team.calendar.weekdays.map((d) => t("weekday." + d)).join(" ")), el("td", {}, periodsText(team.calendar.periods)),
      el("td", {}, String(team.calendar.holidays.length)), el("td", {}, String(team.calendar.workdays.length)))));
    $("agent-team").replaceChildren(...state.teams.map((team) => el("option", { value: team.id }, team.name)));
  }
  function editTeam(team) {
    const cal = team ? team.calendar : { timezone: "Asia/Shanghai", weekdays: [0, 1, 2, 3, 4], periods: [["09:00", "12:00"], ["13:00", "18:00"]], holidays: [], workdays: [] };
    $("team-form").hidden = false;
    $("team-error").textContent = "";
    $("team-id").value = team ? team.id : "";
    $("team-id").readOnly = !!team;
    $("team-name").value = team ? team.name : "";
    $("team-strategy").value = team ? team.strategy : "least_load";
    $("team-lead").value = team && team.team_lead || "";
    $("team-manager").value = team && team.manager || "";
    $("team-timezone").value = cal.timezone;
    weekdayBoxes($("team-weekdays"), "team-wd", cal.weekdays);
    $("team-periods").value = periodsText(cal.periods);
    $("team-holidays").value = cal.holidays.join("\n");
    $("team-workdays").value = cal.workdays.join("\n");
    $("team-holiday-year").value = String(new Date().getFullYear());
  }
  async function prefillHolidays() {
    // merged into what the form holds: the admin reviews and may edit before saving the team
    $("team-error").textContent = "";
    const year = $("team-holiday-year").value;
    try {
      const found = await kit().api(`/api/v1/calendars/mainland-china/${encodeURIComponent(year)}`);
      const merge = (id, more) => { $(id).value = [...new Set([...dates($(id).value), ...more])].sort().join("\n"); };
      merge("team-holidays", found.holidays);
      merge("team-workdays", found.workdays);
      kit().toast(t("admin.prefilled", { y: found.year, h: found.holidays.length, w: found.workdays.length, s: found.source }));
    } catch (e) {
      const covered = e.status === 404 && e.body && e.body.covered;  // said in the reader's language from the problem's fields
      if (covered) $("team-error").textContent = t("admin.year_not_covered", { y: year, from: covered.from, to: covered.to, s: e.body.source });
      else showError("team-error", e);
    }
  }
  async function saveTeam(ev) {
    ev.preventDefault();
    $("team-error").textContent = "";
    const id = $("team-id").value.trim();
    const body = {
      name: $("team-name").value.trim() || null, strategy: $("team-strategy").value,
      team_lead: $("team-lead").value.trim() || null, manager: $("team-manager").value.trim() || null,
      calendar: { timezone: $("team-timezone").value.trim(), weekdays: checkedDays("team-wd"), periods: parsePeriods($("team-periods").value),
                  holidays: dates($("team-holidays").value), workdays: dates($("team-workdays").value) },
    };
    try {
      await put(`/api/v1/teams/${encodeURIComponent(id)}`, body);
      kit().toast(t("admin.saved"));
      $("team-form").hidden = true;
      await load();
    } catch (e) {
      showError("team-error", e);
    }
  }

  // ------------------------------------------------------------------ agents
  function shiftsText(shifts) {
    if (!shifts || !shifts.length) return "–";
    const same = shifts.every((s) => s.start === shifts[0].start && s.end === shifts[0].end);
    if (same) return shifts.map((s) => t("weekday." + s.weekday)).join(" ") + ` ${shifts[0].start}-${shifts[0].end}`;
    return shifts.map((s) => `${t("weekday." + s.weekday)} ${s.start}-${s.end}`).join(", ");
  }
  const list = (text) => [...new Set(text.split(/[\s,;，]+/).map((s) => s.trim()).filter(Boolean))];
  function renderAgents() {
    $("agents-table").tBodies[0].replaceChildren(...state.agents.map((a) => el("tr", { class: "agent-row", "data-id": a.id, onclick: () => editAgent(a) },
      el("td", {}, a.id), el("td", {}, a.name || "–"), el("td", {}, a.team_id), el("td", {}, t("role." + a.role)),
      el("td", {}, a.active ? t("yes") : t("no")), el("td", {}, String(a.open_complaints) + " / " + (a.capacity === null ? "∞" : String(a.capacity))),
      el("td", {}, a.skills.map((c) => kit().tv("cat", c)).join(" ") || "–"), el("td", {}, a.languages.join(" ") || "–"),
      el("td", { class: "shifts" }, shiftsText(a.shifts)))));
  }
  function editAgent(agent) {
    $("agent-form").hidden = false;
    $("agent-error").textContent = "";
    $("agent-id").value = agent ? agent.id : "";
    $("agent-id").readOnly = !!agent;
    $("agent-name").value = agent && agent.name || "";
    $("agent-team").value = agent ? agent.team_id : (state.teams[0] || {}).id || "";
    $("agent-role").value = agent ? agent.role : "agent";
    $("agent-active").checked = agent ? agent.active : true;
    $("agent-capacity").value = agent && agent.capacity !== null ? String(agent.capacity) : "";
    const skills = agent ? agent.skills : [];
    $("agent-skills").replaceChildren(...CATEGORIES.map((c) => el("label", { class: "inline" },
      el("input", Object.assign({ type: "checkbox", class: "agent-skill", value: c }, skills.includes(c) ? { checked: "" } : {})), kit().tv("cat", c))));
    $("agent-languages").value = agent ? agent.languages.join(", ") : "zh-CN";
    const shifts = agent ? agent.shifts : [];
    weekdayBoxes($("agent-weekdays"), "agent-wd", shifts.length ? shifts.map((s) => s.weekday) : [0, 1, 2, 3, 4]);
    $("agent-start").value = shifts.length ? shifts[0].start : "09:00";
    $("agent-end").value = shifts.length ? shifts[0].end : "18:00";
    const uneven = shifts.some((s) => s.start !== shifts[0].start || s.end !== shifts[0].end);
    $("agent-shift-note").textContent = uneven ? t("admin.uneven_shifts", { s: shiftsText(shifts) }) : "";
  }
  async function saveAgent(ev) {
    ev.preventDefault();
    $("agent-error").textContent = "";
    const id = $("agent-id").value.trim();
    const start = $("agent-start").value, end = $("agent-end").value;
    const body = { team_id: $("agent-team").value, name: $("agent-name").value.trim() || null, role: $("agent-role").value,
                   active: $("agent-active").checked, shifts: checkedDays("agent-wd").map((weekday) => ({ weekday, start, end })),
                   capacity: $("agent-capacity").value === "" ? null : Number($("agent-capacity").value),
                   skills: [...document.querySelectorAll("#agent-skills .agent-skill")].filter((b) => b.checked).map((b) => b.value),
                   languages: list($("agent-languages").value) };
    try {
      await put(`/api/v1/agents/${encodeURIComponent(id)}`, body);
      kit().toast(t("admin.saved"));
      $("agent-form").hidden = true;
      await load();
    } catch (e) {
      showError("agent-error", e);
    }
  }

  // ------------------------------------------------------------------ routing rules (replaced as a whole)
  function select(cls, options, value) {
    const s = el("select", { class: cls }, ...options.map(([v, label]) => el("option", Object.assign({ value: v }, v === (value || "") ? { selected: "" } : {}), label)));
    return s;
  }
  function ruleRow(rule) {
    const any = ["", t("admin.any")];
    return el("tr", { class: "rule-row" },
      el("td", {}, el("input", { class: "rule-name", value: rule.name || "", maxlength: "100" })),
      el("td", {}, select("rule-category", [any, ...CATEGORIES.map((c) => [c, kit().tv("cat", c)])], rule.category)),
      el("td", {}, el("input", { class: "rule-region", value: rule.region || "", placeholder: t("admin.any") })),
      el("td", {}, el("input", { class: "rule-service-type", value: rule.service_type || "", placeholder: t("admin.any") })),
      el("td", {}, select("rule-team", state.teams.map((team) => [team.id, team.name]), rule.team)),
      el("td", {}, el("input", { class: "rule-position", type: "number", min: "0", value: rule.position === undefined ? "" : String(rule.position) })),
      el("td", {}, el("button", { type: "button", class: "rule-delete", onclick: (ev) => ev.target.closest("tr").remove() }, t("admin.delete"))));
  }
  function renderRules() {
    $("rules-table").tBodies[0].replaceChildren(...state.rules.map(ruleRow));
    $("rules-default-note").hidden = state.rules.length > 0;
  }
  async function saveRules() {
    $("rules-error").textContent = "";
    const rules = [...document.querySelectorAll("#rules-table .rule-row")].map((row) => {
      const value = (cls) => row.querySelector("." + cls).value.trim();
      const rule = { team: value("rule-team") };
      for (const [cls, key] of [["rule-name", "name"], ["rule-category", "category"], ["rule-region", "region"], ["rule-service-type", "service_type"]]) if (value(cls)) rule[key] = value(cls);
      if (value("rule-position") !== "") rule.position = Number(value("rule-position"));
      return rule;
    });
    try {
      state.rules = await put("/api/v1/routing-rules", rules);
      renderRules();
      kit().toast(t("admin.saved"));
    } catch (e) {
      showError("rules-error", e);
    }
  }

  // ------------------------------------------------------------------ loading and wiring
  async function load() {
    try {
      const [teams, agents, rules] = await Promise.all([kit().api("/api/v1/teams"), kit().api("/api/v1/agents"), kit().api("/api/v1/routing-rules")]);
      Object.assign(state, { teams, agents, rules });
      render();
    } catch (e) {
      kit().toast(e.message);
    }
  }
  function render() {
    renderTeams();
    renderAgents();
    renderRules();
  }
  document.addEventListener("DOMContentLoaded", () => {
    $("team-new").addEventListener("click", () => editTeam(null));
    $("team-form").addEventListener("submit", saveTeam);
    $("team-cancel").addEventListener("click", () => { $("team-form").hidden = true; });
    $("team-prefill").addEventListener("click", prefillHolidays);
    $("agent-new").addEventListener("click", () => editAgent(null));
    $("agent-form").addEventListener("submit", saveAgent);
    $("agent-cancel").addEventListener("click", () => { $("agent-form").hidden = true; });
    $("rule-add").addEventListener("click", () => $("rules-table").tBodies[0].append(ruleRow({ team: (state.teams[0] || {}).id })));
    $("rules-save").addEventListener("click", saveRules);
  });
  return { load, render };
})();
