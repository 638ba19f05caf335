// nextbest UI: three small inline-SVG charts (time series, bars, intervals), no library.
"use strict";

(() => {
  const { svg } = NB;

  // The smallest "round" top (4 × 1, 2, 2.5 or 5 × 10^k) at or above value: round tick labels.
  function niceMax(value, ticks = 4) {
    if (!(value > 0)) return 1;
    const raw = value / ticks;
    const power = 10 ** Math.floor(Math.log10(raw));
    for (const step of [1, 2, 2.5, 5, 10]) if (raw <= step * power * (1 + 1e-9)) return ticks * step * power;
    return ticks * 10 * power;
  }

  function empty(container, message) {
    container.replaceChildren(svg("svg", { viewBox: "0 0 520 60", role: "img", "aria-label": message },
      svg("text", { x: 260, y: 34, "text-anchor": "middle", text: message })));
  }

  // points: [{t: ms, y: number|null}], drawn as a line with gaps where y is null.
  function lineChart(container, points, opts = {}) {
    const format = opts.format || ((v) => String(v));
    const color = opts.color || "#2563eb";
    const known = points.filter((p) => p.y !== null && p.y !== undefined);
    if (!known.length) return empty(container, opts.empty || NB.t("no settled decisions in this window yet"));
    const W = 520, H = 200, L = 52, R = 12, T = 12, B = 26;
    const top = niceMax(Math.max(...known.map((p) => p.y)));
    const t0 = points[0].t, t1 = points[points.length - 1].t || t0 + 1;
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const parts = [];
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      parts.push(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }),
                 svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", text: format(v) }));
    }
    parts.push(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + ((t1 - t0) * i) / ticks;
      parts.push(svg("text", { x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle",
                               text: (opts.timeFormat || NB.fmt.clock)(t) }));
    }
    let d = "", pen = false;
    for (const p of points) {
      if (p.y === null || p.y === undefined) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.y).toFixed(1)}`;
      pen = true;
    }
    parts.push(svg("path", { class: "line", d, stroke: color }));
    for (const p of known) {
      parts.push(svg("circle", { class: "dot", cx: x(p.t), cy: y(p.y), r: known.length > 40 ? 2 : 3.5, fill: color },
        svg("title", { text: `${(opts.timeFormat || NB.fmt.clock)(p.t)}: ${format(p.y)}` })));
    }
    container.replaceChildren(svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "" }, parts));
  }

  // items: [{label, value, text}], horizontal bars sorted as given.
  function barChart(container, items, opts = {}) {
    if (!items.length) return empty(container, opts.empty || NB.t("nothing to show yet"));
    const W = 520, row = 26, L = 150, R = 150, H = items.length * row + 8;
    const top = niceMax(Math.max(...items.map((i) => i.value || 0)));
    const parts = [];
    items.forEach((item, i) => {
      const y0 = 4 + i * row;
      const width = ((item.value || 0) / top) * (W - L - R);
      parts.push(svg("text", { x: L - 8, y: y0 + 16, "text-anchor": "end", text: item.label }),
                 svg("rect", { class: i % 2 ? "bar alt" : "bar", x: L, y: y0 + 4, width: Math.max(1, width), height: row - 10,
                               rx: 3 }, svg("title", { text: `${item.label}: ${item.text}` })),
                 svg("text", { x: L + width + 6, y: y0 + 16, text: item.text }));
    });
    container.replaceChildren(svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "" }, parts));
  }

  // rows: [{label, value, lower, upper, format}]: a point and its 95% interval around a zero line.
  function intervalChart(container, rows, opts = {}) {
    const usable = rows.filter((r) => r.value !== null && r.value !== undefined);
    if (!usable.length) return empty(container, opts.empty || NB.t("needs settled decisions in both groups"));
    const W = 520, row = 34, L = 150, R = 20, H = rows.length * row + 10;
    const parts = [];
    rows.forEach((r, i) => {
      const y0 = 8 + i * row + row / 2;
      parts.push(svg("text", { x: L - 8, y: y0 + 4, "text-anchor": "end", text: r.label }));
      if (r.value === null || r.value === undefined) return;
      const reach = Math.max(Math.abs(r.lower ?? r.value), Math.abs(r.upper ?? r.value), Math.abs(r.value), 1e-9) * 1.15;
      const x = (v) => L + ((v + reach) / (2 * reach)) * (W - L - R);
      parts.push(svg("line", { class: "zero", x1: x(0), x2: x(0), y1: y0 - 12, y2: y0 + 12 }));
      if (r.lower !== null && r.lower !== undefined) {
        parts.push(svg("line", { class: "ci", x1: x(r.lower), x2: x(r.upper), y1: y0, y2: y0 }),
                   svg("line", { class: "ci", x1: x(r.lower), x2: x(r.lower), y1: y0 - 5, y2: y0 + 5 }),
                   svg("line", { class: "ci", x1: x(r.upper), x2: x(r.upper), y1: y0 - 5, y2: y0 + 5 }));
      }
      parts.push(svg("circle", { cx: x(r.value), cy: y0, r: 5, fill: r.value >= 0 ? "#15803d" : "#b91c1c" },
        svg("title", { text: `${r.label}: ${r.format(r.value)} [${r.format(r.lower)}, ${r.format(r.upper)}]` })));
    });
    container.replaceChildren(svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "" }, parts));
  }

  Object.assign(NB, { lineChart, barChart, intervalChart });
})();
