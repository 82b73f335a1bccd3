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

  /* Grouped horizontal bars: rows {label, values: [..]} with series names. */
  function bars(target, rows, series, labels, opts) {
    if (!rows.length) return noData(target, labels.nodata);
    const W = 560, rowH = 18 * series.length + 10, L = 130, R = 60, T = 8;
    const H = T + rows.length * rowH + 24;
    const s = svg(W, H);
    const max = Math.max(...rows.flatMap((r) => r.values)) || 1;
    rows.forEach((r, i) => {
      const y0 = T + i * rowH;
      node(s, "text", { x: L - 6, y: y0 + rowH / 2, "font-size": 11, "text-anchor": "end" }, short(r.label, 20));
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
      lx += 20 + name.length * 8;
    });
    target.replaceChildren(s);
  }

  /* Line chart: points {label, value}. */
  function line(target, points, labels) {
    if (!points.length) return noData(target, labels.nodata);
    const W = 560, H = 220, L = 40, R = 20, T = 14, B = 40;
    const s = svg(W, H);
    const max = Math.max(...points.map((p) => p.value)) || 1;
    const step = points.length > 1 ? (W - L - R) / (points.length - 1) : 0;
    const xy = points.map((p, i) => [L + i * step, T + (H - T - B) * (1 - p.value / max)]);
    node(s, "line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" });
    node(s, "polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", stroke: COLORS[0], "stroke-width": 2 });
    xy.forEach(([x, y], i) => {
      const c = node(s, "circle", { cx: x, cy: y, r: 3, fill: COLORS[0], class: "point" });
      node(c, "title", {}, `${points[i].label}: ${points[i].value}`);
      if (points.length <= 16) node(s, "text", { x, y: H - B + 14, "font-size": 9, "text-anchor": "middle" }, short(points[i].label, 10));
    });
    node(s, "text", { x: 4, y: T + 8, "font-size": 10 }, fmt(max));
    target.replaceChildren(s);
  }

  window.Charts = { pareto, heatGrid, bars, line, noData };
})();
