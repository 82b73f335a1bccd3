/* Small inline-SVG charts (no library, no CDN). Every text goes through textContent. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#0a7ea4", "#d1242f", "#57606a"];

  function svg(w, h) {
    const s = document.createElementNS(NS, "svg");
    s.setAttribute("viewBox", `0 0 ${w} ${h}`);
    s.setAttribute("role", "img");
    return s;
  }
  function node(parent, tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = String(text);
    parent.appendChild(e);
    return e;
  }
  function noData(target, label) {
    target.replaceChildren();
    const p = document.createElement("div");
    p.className = "nodata";
    p.textContent = label;
    target.appendChild(p);
  }
  const short = (s, n) => (String(s).length > n ? String(s).slice(0, n - 1) + "…" : String(s));
  /* the width a label takes at `size` px: CJK characters are about square, Latin ones about 0.6 of the size (no
     layout pass needed before the chart is drawn, so the label column can be sized from it) */
  const textWidth = (s, size) => [...String(s)].reduce((w, ch) => w + (/[\u2E80-\u9FFF\uF900-\uFAFF\uFF00-\uFFEF]/.test(ch) ? size : size * 0.6), 0);
  /* a label cut to `width` px at `size` (… at the end); the whole label stays in the element's <title> */
  function fit(s, width, size) {
    let out = String(s);
    if (textWidth(out, size) <= width) return out;
    while (out.length > 1 && textWidth(out + "…", size) > width) out = out.slice(0, -1);
    return out + "…";
  }
  /* the chart's drawing width: the width its box has in the page, so 11 px text is 11 px on screen at every width */
  const widthOf = (target, fallback) => Math.max(320, Math.round(target.clientWidth || fallback));
  /* 0 and whole round steps (1, 2, 5 x 10^n) up to at least `max`: the ticks of a count axis */
  function niceTicks(max, count) {
    if (!(max > 0)) return [0, 1];
    const raw = max / (count || 4), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw));
    const ticks = [];
    for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
    return ticks;
  }
  const fmt = (v) => (Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(1) + "M" : Math.abs(v) >= 1e3 ? (v / 1e3).toFixed(1) + "k" : String(Math.round(v * 100) / 100));

  /* Pareto: bars (value, descending) + cumulative share line; bars coloured by class (A/B/C/D). */
  function pareto(target, rows, labels) {
    if (!rows.length) return noData(target, labels.nodata);
    const W = 560, H = 280, L = 50, R = 40, T = 14, B = 76;
    const s = svg(W, H);
    const max = Math.max(...rows.map((r) => r.value)) || 1;
    const bw = (W - L - R) / rows.length;
    const classColor = { A: COLORS[0], B: COLORS[1], C: COLORS[2], D: COLORS[7] };
    node(s, "line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" });
    rows.forEach((r, i) => {
      const h = ((H - T - B) * r.value) / max;
      const rect = node(s, "rect", { x: L + i * bw + 1, y: H - B - h, width: Math.max(1, bw - 2), height: h, fill: classColor[r.klass] || COLORS[0], class: "bar" });
      node(rect, "title", {}, `${r.label}: ${fmt(r.value)} (${r.klass || "-"})`);
      if (rows.length <= 20) node(s, "text", { x: L + i * bw + bw / 2, y: H - B + 12, "font-size": 9, "text-anchor": "end", transform: `rotate(-35 ${L + i * bw + bw / 2} ${H - B + 12})` }, short(r.label, 14));
    });
    const pts = rows.map((r, i) => `${L + i * bw + bw / 2},${T + (H - T - B) * (1 - r.cumulative)}`).join(" ");
    node(s, "polyline", { points: pts, fill: "none", stroke: COLORS[3], "stroke-width": 2, class: "cumulative" });
    const y80 = T + (H - T - B) * 0.2;
    node(s, "line", { x1: L, y1: y80, x2: W - R, y2: y80, stroke: COLORS[3], "stroke-dasharray": "4 3", opacity: 0.6 });
    node(s, "text", { x: W - R + 4, y: y80 + 4, "font-size": 10, fill: COLORS[3] }, "80%");
    node(s, "text", { x: 4, y: T + 8, "font-size": 10 }, fmt(max));
    node(s, "text", { x: L, y: H - 4, "font-size": 10, fill: "#555" }, `■ ${labels.revenue}   — ${labels.cumulative}`);
    target.replaceChildren(s);
  }

  /* Heat grid: cells {x, y, value} with x/y in lo..n (lo = 0 when a cell has a 0 score, as F for dormant customers). */
  function heatGrid(target, cells, labels) {
    if (!cells.length) return noData(target, labels.nodata);
    const n = Math.max(...cells.map((c) => Math.max(c.x, c.y)), 5);
    const lo = Math.min(1, ...cells.map((c) => Math.min(c.x, c.y)));
    const k = n - lo + 1;
    const W = 360, H = 300, L = 40, T = 10, size = Math.min((W - L - 10) / k, (H - T - 40) / k);
    const s = svg(W, H);
    const max = Math.max(...cells.map((c) => c.value)) || 1;
    for (let gx = lo; gx <= n; gx++) for (let gy = lo; gy <= n; gy++) node(s, "rect", { x: L + (gx - lo) * size, y: T + (n - gy) * size, width: size - 2, height: size - 2, fill: "#eef1f6" });
    cells.forEach((c) => {
      const x = L + (c.x - lo) * size, y = T + (n - c.y) * size;
      const rect = node(s, "rect", { x, y, width: size - 2, height: size - 2, fill: COLORS[0], "fill-opacity": 0.1 + 0.9 * (c.value / max), class: "cell" });
      node(rect, "title", {}, `${c.label || ""} R${c.x} F${c.y}: ${c.value}`);
      node(s, "text", { x: x + size / 2 - 1, y: y + size / 2 + 4, "font-size": 11, "text-anchor": "middle", fill: c.value / max > 0.55 ? "#fff" : "#222" }, c.value);
    });
    node(s, "text", { x: L, y: H - 6, "font-size": 11 }, `→ ${labels.x}`);
    node(s, "text", { x: 12, y: T + 10, "font-size": 11, transform: `rotate(90 12 ${T + 10})` }, `→ ${labels.y}`);
    target.replaceChildren(s);
  }

  /* Grouped horizontal bars: rows {label, values: [..]} with series names. The label column is as wide as the longest
     label (up to half the chart), so "大客户 → 普通客户" or "Key account → At risk" is read whole. */
  function bars(target, rows, series, labels, opts) {
    if (!rows.length) return noData(target, labels.nodata);
    const W = widthOf(target, 560), rowH = 18 * series.length + 10, R = 60, T = 8, size = 11;
    const L = Math.min(W * 0.5, Math.max(60, ...rows.map((r) => textWidth(r.label, size))) + 12);
    const H = T + rows.length * rowH + 24;
    const s = svg(W, H);
    const max = Math.max(...rows.flatMap((r) => r.values)) || 1;
    rows.forEach((r, i) => {
      const y0 = T + i * rowH;
      const label = node(s, "text", { x: L - 6, y: y0 + rowH / 2, "font-size": size, "text-anchor": "end", class: "bar-label" }, fit(r.label, L - 10, size));
      node(label, "title", {}, r.label);
      r.values.forEach((v, j) => {
        const w = ((W - L - R) * v) / max;
        const rect = node(s, "rect", { x: L, y: y0 + j * 18, width: Math.max(1, w), height: 15, fill: COLORS[j % COLORS.length], class: "bar" });
        node(rect, "title", {}, `${r.label} ${series[j]}: ${v}`);
        node(s, "text", { x: L + w + 4, y: y0 + j * 18 + 12, "font-size": 10 }, fmt(v) + (r.notes && r.notes[j] ? ` ${r.notes[j]}` : ""));
      });
    });
    let lx = L;
    series.forEach((name, j) => {
      node(s, "rect", { x: lx, y: H - 14, width: 10, height: 10, fill: COLORS[j % COLORS.length] });
      node(s, "text", { x: lx + 14, y: H - 5, "font-size": 11 }, name);
      lx += 24 + textWidth(name, 11);
    });
    target.replaceChildren(s);
  }

  /* Line chart: points {label, value}, in order. A value axis with round ticks from 0 and grid lines, a category
     axis with every label that fits (every n-th when they would overlap), numbers by `labels.number`. */
  function line(target, points, labels) {
    if (!points.length) return noData(target, labels.nodata);
    const number = labels.number || fmt, size = 11;
    const ticks = niceTicks(Math.max(...points.map((p) => p.value)), 4);
    const top = ticks[ticks.length - 1] || 1;
    const L = 12 + Math.max(...ticks.map((v) => textWidth(number(v), size))), R = 24, T = 12, B = 30;
    const W = widthOf(target, 560), H = 230;
    const s = svg(W, H);
    const y = (v) => T + (H - T - B) * (1 - v / top);
    ticks.forEach((v) => {
      node(s, "line", { x1: L, y1: y(v), x2: W - R, y2: y(v), stroke: v === 0 ? "#999" : "#e3e7ef" });
      node(s, "text", { x: L - 6, y: y(v) + 4, "font-size": size, "text-anchor": "end", class: "tick tick-y" }, number(v));
    });
    const slot = (W - L - R) / points.length;  // each point in the middle of its slot: one point is not on the axis
    const xy = points.map((p, i) => [L + slot * (i + 0.5), y(p.value)]);
    node(s, "polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", stroke: COLORS[0], "stroke-width": 2 });
    const widest = Math.max(...points.map((p) => textWidth(p.label, size))) + 8;
    const every = Math.max(1, Math.ceil(widest / slot));
    xy.forEach(([x, py], i) => {
      const c = node(s, "circle", { cx: x, cy: py, r: 3, fill: COLORS[0], class: "point" });
      node(c, "title", {}, `${points[i].label}: ${number(points[i].value)}`);
      if ((points.length - 1 - i) % every === 0) {  // the latest period always has its label
        node(s, "line", { x1: x, y1: H - B, x2: x, y2: H - B + 4, stroke: "#999" });
        node(s, "text", { x, y: H - B + 17, "font-size": size, "text-anchor": "middle", class: "tick tick-x" }, points[i].label);
      }
    });
    target.replaceChildren(s);
  }

  window.Charts = { pareto, heatGrid, bars, line, noData };
})();
