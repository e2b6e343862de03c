// The ray-multicloud dashboard: polls the JSON endpoints and draws the fleet grid, the spend chart,
// the timeline and the decisions table. Plain DOM and SVG; every value goes in as text (never HTML).
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token") || "";
  const meta = document.querySelector('meta[name="rmc-refresh-ms"]');
  const refreshMs = Math.max(1000, parseInt(meta ? meta.content : "5000", 10) || 5000);
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = { aws: "#e8890c", gcp: "#3b7ddd", azure: "#0f9d9a" };
  const state = { fleet: null, decisions: null, timeline: null, spend: null, errors: {} };

  function cloudColor(cloud) {
    if (COLORS[cloud]) return COLORS[cloud];
    let h = 0;
    for (const c of String(cloud)) h = (h * 31 + c.charCodeAt(0)) % 360;
    return "hsl(" + h + ", 45%, 50%)";
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const usd = (v, d) => (v === null || v === undefined ? "-" : "$" + Number(v).toFixed(d === undefined ? 2 : d));
  const pct = (v) => (v === null || v === undefined ? "-" : (100 * v).toFixed(1) + "%");

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    const s = Math.floor(seconds);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d" + String(Math.floor((s % 86400) / 3600)).padStart(2, "0") + "h";
  }

  function when(t) {
    const d = new Date(t * 1000);
    return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  // -- totals and problems -------------------------------------------------------------------------

  function drawTotals() {
    const box = document.getElementById("totals");
    box.replaceChildren();
    const f = state.fleet || {};
    const t = (state.spend && state.spend.totals) || {};
    const cards = [
      ["machines now", f.nodes ? String(f.nodes.length) : "-"],
      ["$/h now", usd(f.cost_per_hour, 3)],
      ["on-demand $/h", usd(f.ondemand_cost_per_hour, 3)],
      ["spent to date", usd(t.spend_usd)],
      ["on-demand to date", usd(t.ondemand_spend_usd)],
      ["saved", t.ondemand_spend_usd ? usd(t.saved_usd) + " (" + pct(t.savings_fraction) + ")" : "-"],
    ];
    for (const [k, v] of cards) {
      box.appendChild(el("div", { class: "card" }, [el("div", { class: "v", text: v }), el("div", { class: "k", text: k })]));
    }
    const problems = document.getElementById("problems");
    problems.replaceChildren();
    const lines = [];
    for (const part of [state.fleet, state.decisions, state.spend]) {
      for (const p of (part && part.problems) || []) if (!lines.includes(p)) lines.push(p);
    }
    for (const e of Object.values(state.errors)) lines.push(e);
    for (const line of lines) problems.appendChild(el("div", { class: "problem", text: line }));
  }

  // -- the fleet grid: one card per cloud, its regions inside -----------------------------------------

  function drawFleet() {
    const box = document.getElementById("fleet");
    box.replaceChildren();
    const f = state.fleet;
    if (!f) return;
    const byCloud = new Map();
    for (const c of f.clouds || []) byCloud.set(c, new Map());
    for (const n of f.nodes || []) {
      if (!byCloud.has(n.cloud)) byCloud.set(n.cloud, new Map());
      const regions = byCloud.get(n.cloud);
      const key = n.region || "-";
      if (!regions.has(key)) regions.set(key, []);
      regions.get(key).push(n);
    }
    for (const [cloud, regions] of byCloud) {
      let count = 0, cost = 0;
      for (const nodes of regions.values()) for (const n of nodes) { count += 1; cost += n.price_per_hour || 0; }
      const card = el("div", { class: "cloud", "data-cloud": cloud }, [
        el("h3", {}, [el("span", { text: cloud }), el("span", { class: "muted", text: count + " · " + usd(cost, 3) + "/h" })]),
      ]);
      card.style.borderTopColor = cloudColor(cloud);
      if (count === 0) card.appendChild(el("div", { class: "empty", text: "no machines" }));
      for (const [region, nodes] of [...regions.entries()].sort()) {
        const r = el("div", { class: "region", "data-region": region }, [el("div", { class: "name", text: region })]);
        for (const n of nodes) {
          const flag = n.price_source !== "offer book" || n.stale_price ? " *" : "";
          r.appendChild(el("div", { class: "node " + n.capacity, "data-instance": n.instance_id }, [
            el("span", { class: "id", text: n.instance_id }),
            el("span", { class: "price", text: usd(n.price_per_hour, 4) + "/h" + flag }),
            el("span", { class: "meta" }, [
              document.createTextNode([n.zone || "regional", n.instance_type, n.capacity, n.pool, "age " + age(n.age_s)]
                .filter(Boolean).join(" · ") + (n.job ? " · job " + n.job : "") + " "),
              el("span", { class: "badge " + n.ray_state, text: "ray " + n.ray_state }),
            ]),
          ]));
        }
        card.appendChild(r);
      }
      box.appendChild(card);
    }
  }

  // -- spend vs on-demand ------------------------------------------------------------------------------

  function axisTime(g, x0, x1, t0, t1, y) {
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      const x = x0 + ((x1 - x0) * i) / 4;
      g.appendChild(svg("line", { x1: x, x2: x, y1: y, y2: y + 4, stroke: "#999" }));
      g.appendChild(svg("text", { x: x, y: y + 16, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" },
        new Date(t * 1000).toISOString().slice(11, 19)));
    }
  }

  function drawSpend() {
    const box = document.getElementById("spend");
    box.replaceChildren();
    const series = (state.spend && state.spend.series) || [];
    if (series.length < 2) {
      box.appendChild(el("div", { class: "empty", text: "no spend recorded yet" }));
      return;
    }
    box.appendChild(el("div", { class: "legend" }, [
      el("span", {}, [el("i", { class: "sw-spend" }), document.createTextNode("spent")]),
      el("span", {}, [el("i", { class: "sw-od" }), document.createTextNode("the same hours on on-demand")]),
    ]));
    box.querySelector(".sw-spend").style.background = "var(--spend)";
    box.querySelector(".sw-od").style.background = "var(--ondemand)";
    const W = 1000, H = 240, L = 60, R = 10, T = 10, B = 26;
    const t0 = series[0].t, t1 = series[series.length - 1].t;
    const ymax = Math.max(1e-9, ...series.map((p) => Math.max(p.spend_usd, p.ondemand_spend_usd))) * 1.05;
    const X = (t) => L + ((W - L - R) * (t - t0)) / Math.max(1e-9, t1 - t0);
    const Y = (v) => H - B - ((H - B - T) * v) / ymax;
    const s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "spend vs on-demand", id: "spend-svg" });
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      s.appendChild(svg("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: "#eee" }));
      s.appendChild(svg("text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end" }, "$" + v.toFixed(v < 1 ? 3 : 2)));
    }
    axisTime(s, L, W - R, t0, t1, H - B);
    const line = (key, color, cls) => {
      const d = series.map((p, i) => (i ? "L" : "M") + X(p.t).toFixed(1) + " " + Y(p[key]).toFixed(1)).join(" ");
      s.appendChild(svg("path", { d: d, fill: "none", stroke: color, "stroke-width": 2, class: cls }));
    };
    line("ondemand_spend_usd", "#b3261e", "line-ondemand");
    line("spend_usd", "#1f7a3a", "line-spend");
    const last = series[series.length - 1];
    s.appendChild(svg("text", { x: W - R, y: Y(last.ondemand_spend_usd) - 6, "text-anchor": "end" }, usd(last.ondemand_spend_usd)));
    s.appendChild(svg("text", { x: W - R, y: Y(last.spend_usd) + 14, "text-anchor": "end" }, usd(last.spend_usd)));
    box.appendChild(s);
  }

  // -- timeline: one lane per node life, moves as arrows, preemption notices as markers ----------------

  function drawTimeline() {
    const box = document.getElementById("timeline");
    box.replaceChildren();
    const tl = state.timeline;
    const lives = ((tl && tl.lives) || []).slice(-40);
    if (!lives.length) {
      box.appendChild(el("div", { class: "empty", text: "no node lives recorded yet" }));
      return;
    }
    const now = tl.at;
    const t0 = Math.min(...lives.map((l) => l.launched_at));
    const t1 = Math.max(now, ...lives.map((l) => l.ended_at || now));
    const lane = 18, W = 1000, L = 190, R = 10, T = 6;
    const H = T + lane * lives.length + 26;
    const X = (t) => L + ((W - L - R) * (t - t0)) / Math.max(1e-9, t1 - t0);
    const row = new Map(lives.map((l, i) => [l.instance_id, i]));
    const Yc = (i) => T + lane * i + lane / 2;
    const s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "timeline", id: "timeline-svg" });
    lives.forEach((l, i) => {
      s.appendChild(svg("text", { x: L - 6, y: Yc(i) + 4, "text-anchor": "end" }, l.instance_id + " (" + l.pool + ")"));
      const x0 = X(l.launched_at), x1 = X(l.ended_at || now);
      const bar = svg("rect", { x: x0, y: Yc(i) - 6, width: Math.max(2, x1 - x0), height: 12, rx: 3,
        fill: cloudColor(l.cloud), "fill-opacity": l.capacity === "spot" ? 0.85 : 0.45, class: "life",
        "data-instance": l.instance_id });
      bar.appendChild(svg("title", {}, l.instance_id + " · " + l.cloud + "/" + (l.zone || l.region) + " · " + l.instance_type +
        " · " + l.capacity + " · from " + when(l.launched_at) + (l.ended_at ? " to " + when(l.ended_at) + " (" + (l.end_reason || "ended") + ")" : " (running)")));
      s.appendChild(bar);
    });
    for (const m of (tl && tl.moves) || []) {
      if (!row.has(m.from) || !row.has(m.to)) continue;
      const x = X(m.at), y0 = Yc(row.get(m.from)), y1 = Yc(row.get(m.to));
      const arrow = svg("path", { d: "M" + x + " " + y0 + " L" + x + " " + (y1 + (y1 > y0 ? -7 : 7)), stroke: "#9a3412",
        "stroke-width": 1.5, fill: "none", class: "move" });
      arrow.appendChild(svg("title", {}, "move " + m.from + " → " + m.to + ": " + m.reason));
      s.appendChild(arrow);
      const head = y1 > y0 ? -1 : 1;
      s.appendChild(svg("path", { d: "M" + (x - 4) + " " + (y1 + head * 11) + " L" + x + " " + (y1 + head * 6) + " L" + (x + 4) + " " + (y1 + head * 11) + " Z", fill: "#9a3412" }));
    }
    for (const p of (tl && tl.preemptions) || []) {
      if (!row.has(p.instance_id)) continue;
      const x = X(p.at), y = Yc(row.get(p.instance_id)) - 8;
      const mark = svg("path", { d: "M" + (x - 5) + " " + (y - 7) + " L" + (x + 5) + " " + (y - 7) + " L" + x + " " + y + " Z", fill: "#b3261e", class: "preemption" });
      mark.appendChild(svg("title", {}, "preemption notice for " + p.instance_id + " at " + when(p.at)));
      s.appendChild(mark);
    }
    axisTime(s, L, W - R, t0, t1, H - 24);
    box.appendChild(s);
  }

  // -- decisions -------------------------------------------------------------------------------------

  function drawDecisions() {
    const body = document.querySelector("#decisions tbody");
    body.replaceChildren();
    const list = ((state.decisions && state.decisions.decisions) || []).slice(0, 200);
    if (!list.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "8", class: "empty", text: "no decisions recorded yet" })]));
      return;
    }
    for (const d of list) {
      const reasons = el("ul");
      for (const r of d.reasons || []) reasons.appendChild(el("li", { text: r }));
      if (!(d.reasons || []).length) reasons.appendChild(el("li", { class: "muted", text: "not recorded in the ledger" }));
      const price = d.kind === "launch"
        ? usd(d.price_per_hour, 4) + (d.discount !== null && d.discount !== undefined ? " (" + pct(d.discount) + " off on-demand)" : "")
        : "";
      body.appendChild(el("tr", { class: d.kind }, [
        el("td", { text: when(d.at) }),
        el("td", { text: d.kind === "move" ? "move → " + (d.to_instance_id || "?") : "launch" }),
        el("td", { text: d.pool || "-" }),
        el("td", { class: "mono", text: d.instance_id }),
        el("td", { class: "mono", text: d.offer || "-" }),
        el("td", { text: price }),
        el("td", { text: d.state || "" }),
        el("td", {}, [reasons]),
      ]));
    }
  }

  // -- polling -----------------------------------------------------------------------------------------

  async function poll() {
    const parts = [["fleet", "/api/fleet"], ["decisions", "/api/decisions"], ["timeline", "/api/timeline"], ["spend", "/api/spend"]];
    await Promise.all(parts.map(async ([key, path]) => {
      try {
        state[key] = await getJson(path);
        delete state.errors[key];
      } catch (e) {
        state.errors[key] = String(e.message || e);
      }
    }));
    drawTotals();
    drawFleet();
    drawSpend();
    drawTimeline();
    drawDecisions();
    const stamp = document.getElementById("updated");
    stamp.textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z · every " + refreshMs / 1000 + " s";
    document.body.setAttribute("data-polls", String(Number(document.body.getAttribute("data-polls") || 0) + 1));
    setTimeout(poll, refreshMs);
  }

  poll();
})();
