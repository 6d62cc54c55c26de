// The report's interactive part (bench/analysis/explorer.py writes it into the page): plots drawn by
// plotly.js from the page's JSON data, redrawn when a filter or an axis changes; sortable tables with a
// CSV export of the rows shown. Nothing is fetched: the data is in the page, plotly.js beside it.
"use strict";
(() => {
  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const CONFIG = { displaylogo: false, responsive: true };
  const byId = (id) => document.getElementById(id);
  const picked = (name) =>
    new Set([...document.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value));
  const fmt = (v) => (v == null ? "-" : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en") : String(+v.toPrecision(4)));
  const axis = (key) => DATA.axes.find((a) => a.key === key);
  const label = (a, task) => (a.key === "mean_x100" ? `test ${DATA.metric[task]} ×100` : a.label);
  const usable = (p, a) => p.values[a.key] != null && (!a.log || p.values[a.key] > 0);

  function frontier(points, ax, ay) {
    // the points no other point beats on both axes (each axis in its own direction)
    const atLeast = (a, p, q) => (a.high ? p.values[a.key] >= q.values[a.key] : p.values[a.key] <= q.values[a.key]);
    const same = (p, q) => p.values[ax.key] === q.values[ax.key] && p.values[ay.key] === q.values[ay.key];
    return points.filter(
      (p) => !points.some((q) => q !== p && atLeast(ax, q, p) && atLeast(ay, q, p) && !same(p, q)),
    );
  }

  function whiskers(points, a) {
    const ci = points.map((p) => p.ci[a.key]);
    return {
      type: "data", symmetric: false, thickness: 1, width: 3, visible: ci.some(Boolean),
      array: points.map((p, i) => (ci[i] ? ci[i][1] - p.values[a.key] : 0)),
      arrayminus: points.map((p, i) => (ci[i] ? p.values[a.key] - ci[i][0] : 0)),
    };
  }

  function hover(p) {
    const lines = [`<b>${p.variant}</b> (${p.model}) on ${p.task}`, `configuration: ${p.config}`];
    for (const a of DATA.axes) {
      if (p.values[a.key] == null) continue;
      const ci = p.ci[a.key] ? ` [${fmt(p.ci[a.key][0])}, ${fmt(p.ci[a.key][1])}] 95% CI` : "";
      lines.push(`${a.label}: ${fmt(p.values[a.key])}${ci}`);
    }
    lines.push(`seeds: ${p.seeds.join(", ") || "-"}; runs: ${p.runs} completed, ${p.failed} failed`);
    lines.push(`tuning: ${p.grid} candidate(s), ${p.grid_runs} run(s); ${p.tied ? "best or tied with it" : "not tied with the best"}`);
    return lines.join("<br>");
  }

  function chanceShape(task, ax, ay) {
    const chance = DATA.chance[task];
    if (chance == null) return [];
    const line = { type: "line", line: { dash: "dot", color: "#999", width: 1 } };
    if (ay.key === "mean_x100") return [{ ...line, xref: "paper", x0: 0, x1: 1, yref: "y", y0: chance, y1: chance }];
    if (ax.key === "mean_x100") return [{ ...line, yref: "paper", y0: 0, y1: 1, xref: "x", x0: chance, x1: chance }];
    return [];
  }

  function panel(box, task) {
    const div = document.createElement("div");
    div.className = "plot";
    div.dataset.task = task;
    box.append(div);
    return div;
  }

  function drawPareto() {
    const ax = axis(byId("x-axis").value);
    const ay = axis(byId("y-axis").value);
    const tasks = picked("task");
    const variants = picked("variant");
    const box = byId("pareto");
    box.replaceChildren();
    for (const task of DATA.tasks.filter((t) => tasks.has(t))) {
      const shown = DATA.points.filter((p) => p.task === task && variants.has(p.variant));
      const points = shown.filter((p) => usable(p, ax) && usable(p, ay));
      const traces = DATA.variants.flatMap((v) => {
        const g = points.filter((p) => p.variant === v);
        if (!g.length) return [];
        const color = DATA.colors[v];
        return [{
          type: "scatter", mode: "markers", name: v, x: g.map((p) => p.values[ax.key]),
          y: g.map((p) => p.values[ay.key]), error_x: { ...whiskers(g, ax), color }, error_y: { ...whiskers(g, ay), color },
          marker: { color, size: 11, symbol: g.map((p) => (p.tied ? "circle" : "circle-open")), line: { color, width: 2 } },
          text: g.map(hover), hovertemplate: "%{text}<extra></extra>",
        }];
      });
      const front = frontier(points, ax, ay).sort((p, q) => p.values[ax.key] - q.values[ax.key]);
      traces.push({
        type: "scatter", mode: "lines", name: "Pareto frontier", hoverinfo: "skip",
        x: front.map((p) => p.values[ax.key]), y: front.map((p) => p.values[ay.key]),
        line: { dash: "dash", color: "#555", width: 1, shape: ax.high ? "vh" : "hv" },
      });
      const left = shown.length - points.length;
      Plotly.newPlot(panel(box, task), traces, {
        title: { text: left ? `${task} (${left} without a value on these axes)` : task, font: { size: 14 } },
        showlegend: false, height: 380, margin: { l: 60, r: 20, t: 40, b: 50 }, hovermode: "closest",
        xaxis: { title: { text: label(ax, task) }, type: ax.log ? "log" : "linear", zeroline: false },
        yaxis: { title: { text: label(ay, task) }, type: ay.log ? "log" : "linear", zeroline: false },
        shapes: chanceShape(task, ax, ay),
      }, CONFIG);
    }
  }

  function drawSensitivity() {
    const tasks = DATA.tasks.filter((t) => picked("task").has(t));
    const variants = DATA.variants.filter((v) => picked("variant").has(v));
    const box = byId("sensitivity");
    box.replaceChildren();
    if (!tasks.length || !variants.length || !DATA.sensitivity.length) return;
    const rows = tasks.length, cols = variants.length;
    const layout = {
      grid: { rows, columns: cols, pattern: "independent", xgap: 0.3, ygap: 0.45 },
      showlegend: false, height: 90 + 210 * rows, margin: { l: 80, r: 20, t: 40, b: 50 },
      hovermode: "closest", annotations: [], shapes: [],
    };
    const traces = [];
    tasks.forEach((task, r) => {
      const lines = DATA.sensitivity.filter((l) => l.task === task);
      const ys = lines.flatMap((l) => l.dev).concat(DATA.chance[task] ?? []).filter((y) => y != null);
      const [low, high] = [Math.min(...ys), Math.max(...ys)];
      const range = [low - 0.08 * (high - low || 1), high + 0.3 * (high - low || 1)];
      variants.forEach((v, c) => {
        const n = r * cols + c + 1;
        const [xa, ya] = n === 1 ? ["x", "y"] : [`x${n}`, `y${n}`];
        layout[n === 1 ? "xaxis" : `xaxis${n}`] = {
          type: "log", dtick: 1, exponentformat: "power", title: r === rows - 1 ? { text: "lr" } : undefined,
        };
        layout[n === 1 ? "yaxis" : `yaxis${n}`] = {
          range, showticklabels: c === 0, title: c === 0 ? { text: `${task}<br>dev ${DATA.metric[task]} ×100` } : undefined,
        };
        if (r === 0) {
          layout.annotations.push({ text: `<b>${v}</b>`, xref: `${xa} domain`, yref: `${ya} domain`, x: 0.5, y: 1.02,
            yanchor: "bottom", showarrow: false });
        }
        if (DATA.chance[task] != null) {
          layout.shapes.push({ type: "line", xref: `${xa} domain`, x0: 0, x1: 1, yref: ya, y0: DATA.chance[task],
            y1: DATA.chance[task], line: { dash: "dot", color: "#999", width: 1 } });
        }
        for (const l of lines.filter((l) => l.variant === v)) {
          const color = DATA.colors[v];
          const text = l.lr.map((lr, i) => `${v} (${l.model}) on ${task}<br>${l.config[i]}<br>dev ${fmt(l.dev[i])}, test ${fmt(l.test[i])}; ${l.seeds[i]} seed(s)`);
          traces.push({ type: "scatter", mode: "lines+markers", x: l.lr, y: l.dev, xaxis: xa, yaxis: ya, name: v,
            line: { color }, marker: { color, size: 6 }, text, hovertemplate: "%{text}<extra></extra>" });
          const at = l.lr.indexOf(l.selected);
          if (at < 0) continue;
          traces.push({ type: "scatter", mode: "markers", x: [l.selected], y: [l.dev[at]], xaxis: xa, yaxis: ya,
            name: "selected", hoverinfo: "skip", marker: { size: 15, symbol: "circle-open", color: "#222", line: { width: 2 } } });
          layout.annotations.push({ text: `lr ${l.selected_text}`, x: Math.log10(l.selected), y: l.dev[at], xref: xa, yref: ya,
            showarrow: true, arrowhead: 0, ax: 0, ay: -24, font: { size: 11 }, bgcolor: "rgba(255,255,255,0.8)",
            xanchor: at === 0 && l.lr.length > 1 ? "left" : at === l.lr.length - 1 && l.lr.length > 1 ? "right" : "center" });
        }
      });
    });
    Plotly.newPlot(panel(box, "all"), traces, layout, CONFIG);
  }

  function drawCurves() {
    const tasks = picked("task"), variants = picked("variant");
    const box = byId("curves");
    box.replaceChildren();
    for (const task of DATA.tasks.filter((t) => tasks.has(t))) {
      const lines = DATA.curves.filter((l) => l.task === task && variants.has(l.variant));
      if (!lines.length) continue;
      const traces = lines.map((l) => ({
        type: "scatter", mode: "lines+markers", name: l.variant, x: l.step, y: l.mean, line: { color: DATA.colors[l.variant] },
        error_y: { type: "data", array: l.std, color: DATA.colors[l.variant], thickness: 1, width: 3 },
        hovertemplate: `${l.variant} (${l.model}): %{y:.2f} at step %{x}<extra></extra>`,
      }));
      const keys = [...new Set(lines.flatMap((l) => l.key))].join(" / ");
      Plotly.newPlot(panel(box, task), traces, {
        title: { text: task, font: { size: 14 } }, showlegend: false, height: 340, hovermode: "closest",
        margin: { l: 60, r: 20, t: 40, b: 50 }, xaxis: { title: { text: "step" } }, yaxis: { title: { text: `${keys} ×100` } },
        shapes: chanceShape(task, { key: "step" }, { key: "mean_x100" }),
      }, CONFIG);
    }
  }

  function cellValue(text) {
    const n = Number(text.replace(/,/g, ""));
    return text.trim() === "" || text === "-" ? null : Number.isNaN(n) ? text : n;
  }

  function sortBy(table, column, header) {
    const body = table.tBodies[0];
    const down = header.getAttribute("aria-sort") === "ascending";
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", down ? "descending" : "ascending");
    const rows = [...body.rows].map((row) => [cellValue(row.cells[column].textContent), row]);
    rows.sort(([a], [b]) => {
      if (a === null || b === null) return (a === null) - (b === null); // no value: last either way
      const order = typeof a === typeof b ? (a < b ? -1 : a > b ? 1 : 0) : typeof a === "number" ? -1 : 1;
      return down ? -order : order;
    });
    body.append(...rows.map(([, row]) => row));
  }

  function csv(table) {
    const quote = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    const rows = [table.tHead.rows[0], ...[...table.tBodies[0].rows].filter((r) => !r.hidden)];
    return rows.map((r) => [...r.cells].map((c) => quote(c.textContent.trim())).join(",")).join("\n") + "\n";
  }

  function exportCsv(table, name) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([csv(table)], { type: "text/csv" }));
    link.download = `${name}.csv`;
    link.click();
    URL.revokeObjectURL(link.href);
  }

  function filterTables() {
    const tasks = picked("task"), variants = picked("variant");
    for (const table of document.querySelectorAll("table.leaderboard")) {
      const names = [...table.tHead.rows[0].cells].map((c) => c.textContent.trim());
      const [t, v] = [names.indexOf("task"), names.indexOf("variant")];
      for (const row of table.tBodies[0].rows) {
        const task = t >= 0 ? row.cells[t].textContent : null;
        const variant = v >= 0 ? row.cells[v].textContent : null;
        row.hidden = (DATA.tasks.includes(task) && !tasks.has(task)) || (DATA.variants.includes(variant) && !variants.has(variant));
      }
    }
  }

  function tables() {
    document.querySelectorAll("table.leaderboard").forEach((table, i) => {
      [...table.tHead.rows[0].cells].forEach((th, column) => {
        th.title = "sort by this column";
        th.addEventListener("click", () => sortBy(table, column, th));
      });
      const button = document.createElement("button");
      button.type = "button";
      button.className = "csv";
      button.textContent = "Export CSV (the rows shown)";
      button.addEventListener("click", () => exportCsv(table, `peft-bench-table-${i + 1}`));
      table.before(button);
    });
  }

  function draw() {
    if (typeof Plotly === "undefined") {
      byId("explore").insertAdjacentHTML("afterbegin",
        '<p class="note">plotly.js did not load: the plots need the assets/ folder the report command wrote beside this page.</p>');
      return;
    }
    drawPareto();
    drawSensitivity();
    drawCurves();
  }

  window.peftBench = { csv, draw, frontier };
  document.addEventListener("DOMContentLoaded", () => {
    // the tables come after this script in the page
    tables();
    byId("filters").addEventListener("change", () => { filterTables(); draw(); });
    byId("x-axis").addEventListener("change", drawPareto);
    byId("y-axis").addEventListener("change", drawPareto);
    draw();
  });
})();
