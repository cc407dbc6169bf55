/**
 * The live page of the web view: HTML, script and style, served from the
 * package (no CDN). The script builds every element with `textContent`, never
 * `innerHTML`, so a label is always shown as text. It polls `/stats?history`
 * and `/ready` every second.
 */

export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-faust</title>
<link rel="stylesheet" href="/page.css">
<script src="/page.js" defer></script>
</head>
<body>
<header>
  <h1>effect-faust</h1>
  <span id="ready" class="badge">…</span>
  <span id="updated" class="muted"></span>
</header>
<main>
  <section>
    <h2>Pipeline</h2>
    <p class="muted">Agents and the channels and topics they read and write. Each node: its rate (events per second) and its queue depth, lag or events in flight; the line shows the rate over the last minutes.</p>
    <div id="graph-wrap"><svg id="graph" role="img" aria-label="pipeline graph"></svg></div>
  </section>
  <section><h2>Channels</h2><table id="channels"></table></section>
  <section id="topics-section"><h2>Topics</h2><table id="topics"></table></section>
  <section><h2>Agents</h2><table id="agents"></table></section>
</main>
</body>
</html>
`

export const style = `:root { color-scheme: light; --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #6b7385;
  --channel: #2f6fdf; --topic: #8a4bd6; --agent: #1f9d6b; --sink: #8a8f99; --bad: #c9372c; --line: #c5cad4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; gap: 16px; align-items: baseline; padding: 14px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 0 0 6px; }
main { padding: 16px 24px; display: grid; gap: 18px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; overflow-x: auto; }
.muted { color: var(--muted); font-size: 12px; }
.badge { padding: 2px 10px; border-radius: 10px; font-weight: 600; font-size: 12px; background: #e4e7ec; }
.badge.ok { background: #d8f3e6; color: #0f6b45; }
.badge.bad { background: #fbe0de; color: var(--bad); }
#graph-wrap { overflow-x: auto; }
svg text { font-family: inherit; }
.node rect.box { fill: #fff; stroke-width: 2; }
.node.channel rect.box { stroke: var(--channel); }
.node.topic rect.box { stroke: var(--topic); }
.node.agent rect.box { stroke: var(--agent); }
.node.sink rect.box { stroke: var(--sink); stroke-dasharray: 4 3; }
.node.down rect.box { stroke: var(--bad); }
.node .kind { font-size: 10px; text-transform: uppercase; letter-spacing: .06em; fill: var(--muted); }
.node .label { font-size: 13px; font-weight: 600; fill: var(--ink); }
.node .rate { font-size: 16px; font-weight: 700; fill: var(--ink); }
.node .depth { font-size: 12px; fill: var(--muted); }
.node.channel .spark { stroke: var(--channel); }
.node.topic .spark { stroke: var(--topic); }
.node.agent .spark { stroke: var(--agent); }
.spark { fill: none; stroke-width: 1.5; }
.edge { fill: none; stroke: #98a0ae; stroke-width: 1.6; }
#arrow path { fill: #98a0ae; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 4px 10px; border-bottom: 1px solid #eceef2; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.text, th.text { text-align: left; }
.status-running { color: #0f6b45; font-weight: 600; }
.status-down { color: var(--bad); font-weight: 600; }
`

export const script = `"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var NODE_W = 210, NODE_H = 92, COL_GAP = 70, ROW_GAP = 22, PAD = 16;

  function el(name, attrs, text) {
    var node = document.createElement(name);
    if (attrs) for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function svg(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    if (attrs) for (var key in attrs) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function fmt(n) {
    if (!isFinite(n)) return "0";
    if (Math.abs(n) < 10 && n !== Math.round(n)) return n.toFixed(1);
    return Math.round(n).toLocaleString("en-US");
  }
  function short(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "\\u2026" : text;
  }

  function graphOf(stats) {
    var nodes = new Map();
    var lag = new Map();
    stats.topics.forEach(function (t) { lag.set(t.label, t); });
    stats.channels.forEach(function (c) {
      var topic = lag.get(c.label);
      nodes.set("channel:" + c.label, {
        id: "channel:" + c.label, kind: c.kind, label: c.label,
        rate: c.kind === "topic" ? Math.max(c.sentPerSecond, c.deliveredPerSecond) : c.sentPerSecond,
        detail: topic ? "lag " + fmt(topic.lag) + (topic.assigned ? "" : " (unassigned)") + " \\u00b7 queued " + fmt(c.queueDepth)
          : "queued " + fmt(c.queueDepth) + " \\u00b7 " + fmt(c.subscribers) + " sub"
      });
    });
    stats.agents.forEach(function (a) {
      nodes.set("agent:" + a.name, {
        id: "agent:" + a.name, kind: "agent", label: a.name, rate: a.eventsPerSecond, down: a.status !== "running",
        detail: "in flight " + fmt(a.inFlight) + (a.failures > 0 ? " \\u00b7 failed " + fmt(a.failures) : "") +
          (a.status !== "running" ? " \\u00b7 " + a.status : "")
      });
    });
    stats.edges.forEach(function (e) {
      [e.from, e.to].forEach(function (id) {
        if (!nodes.has(id)) {
          var label = id.slice(id.indexOf(":") + 1);
          nodes.set(id, { id: id, kind: "sink", label: label, rate: NaN, detail: "not registered" });
        }
      });
    });
    // Columns: the longest path from a node nothing feeds (bounded, so cycles end).
    var column = new Map();
    nodes.forEach(function (_, id) { column.set(id, 0); });
    for (var round = 0; round < nodes.size; round++) {
      var changed = false;
      stats.edges.forEach(function (e) {
        var next = column.get(e.from) + 1;
        if (next > column.get(e.to) && next < nodes.size) { column.set(e.to, next); changed = true; }
      });
      if (!changed) break;
    }
    var columns = [];
    nodes.forEach(function (node, id) {
      var c = column.get(id);
      (columns[c] = columns[c] || []).push(node);
    });
    var height = 0;
    columns.forEach(function (list, c) {
      list.sort(function (a, b) { return a.label < b.label ? -1 : a.label > b.label ? 1 : 0; });
      list.forEach(function (node, r) {
        node.x = PAD + c * (NODE_W + COL_GAP);
        node.y = PAD + r * (NODE_H + ROW_GAP);
        height = Math.max(height, node.y + NODE_H + PAD);
      });
    });
    return { nodes: nodes, width: PAD * 2 + Math.max(1, columns.length) * (NODE_W + COL_GAP) - COL_GAP, height: Math.max(height, 120) };
  }

  function sparkline(values, x, y, w, h) {
    if (!values || values.length < 2) return null;
    var max = 0;
    values.forEach(function (v) { if (v > max) max = v; });
    var step = w / (values.length - 1);
    var points = values.map(function (v, i) {
      return (x + i * step).toFixed(1) + "," + (y + h - (max > 0 ? (v / max) * h : 0)).toFixed(1);
    });
    return svg("polyline", { class: "spark", points: points.join(" ") });
  }

  function drawGraph(stats) {
    var graph = graphOf(stats);
    var root = document.getElementById("graph");
    var history = (stats.history && stats.history.series) || {};
    root.setAttribute("width", graph.width);
    root.setAttribute("height", graph.height);
    root.setAttribute("viewBox", "0 0 " + graph.width + " " + graph.height);
    while (root.firstChild) root.removeChild(root.firstChild);
    var defs = svg("defs");
    var marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
    defs.appendChild(marker);
    root.appendChild(defs);
    stats.edges.forEach(function (e) {
      var a = graph.nodes.get(e.from), b = graph.nodes.get(e.to);
      if (!a || !b) return;
      var x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      var bend = Math.max(40, Math.abs(x2 - x1) / 2);
      var path = svg("path", {
        class: "edge", "marker-end": "url(#arrow)",
        d: "M" + x1 + "," + y1 + " C" + (x1 + bend) + "," + y1 + " " + (x2 - bend) + "," + y2 + " " + x2 + "," + y2
      });
      path.setAttribute("data-edge", e.from + " -> " + e.to);
      root.appendChild(path);
    });
    graph.nodes.forEach(function (node) {
      var g = svg("g", { class: "node " + node.kind + (node.down ? " down" : ""), transform: "translate(" + node.x + "," + node.y + ")" });
      g.setAttribute("data-node", node.id);
      g.appendChild(svg("title", null, node.kind + " " + node.label));
      g.appendChild(svg("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 8 }));
      g.appendChild(svg("text", { class: "kind", x: 10, y: 16 }, node.kind));
      g.appendChild(svg("text", { class: "label", x: 10, y: 33 }, short(node.label, 27)));
      var rate = svg("text", { class: "rate", x: 10, y: 56 }, isNaN(node.rate) ? "\\u2013" : fmt(node.rate) + "/s");
      rate.setAttribute("data-value", isNaN(node.rate) ? "" : String(node.rate));
      g.appendChild(rate);
      g.appendChild(svg("text", { class: "depth", x: 10, y: 78 }, node.detail));
      var series = history[node.id];
      var line = series ? sparkline(series.rate, 112, 40, NODE_W - 122, 24) : null;
      if (line) g.appendChild(line);
      root.appendChild(g);
    });
  }

  function table(id, headers, rows) {
    var t = document.getElementById(id);
    while (t.firstChild) t.removeChild(t.firstChild);
    var head = el("tr");
    headers.forEach(function (h, i) {
      var th = el("th", null, h);
      if (i > 0 && rows.length > 0 && typeof rows[0][i] === "string") th.className = "text";
      head.appendChild(th);
    });
    t.appendChild(head);
    rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (cell, i) {
        var td = el("td", null, typeof cell === "number" ? fmt(cell) : cell);
        if (i > 0 && typeof cell === "string") td.className = "text";
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
  }

  function drawTables(stats) {
    table("channels", ["channel", "kind", "subscribers", "queued", "sent", "sent/s", "delivered", "delivered/s", "decode errors"],
      stats.channels.map(function (c) {
        var d = c.decodeErrors;
        return [c.label, c.kind, c.subscribers, c.queueDepth, c.sent, c.sentPerSecond, c.delivered, c.deliveredPerSecond, d.failed + d.skipped + d.deadLettered];
      }));
    document.getElementById("topics-section").hidden = stats.topics.length === 0;
    var rows = [];
    stats.topics.forEach(function (t) {
      if (t.partitions.length === 0) rows.push([t.label, "unassigned", "", "", t.acknowledged, t.committed]);
      t.partitions.forEach(function (p) {
        rows.push([t.label, p.topic + "[" + p.partition + "]", p.committedOffset, p.lag, t.acknowledged, t.committed]);
      });
    });
    table("topics", ["topic", "partition", "committed offset", "lag", "acknowledged", "committed"], rows);
    table("agents", ["agent", "status", "source", "sinks", "in flight", "events", "events/s", "failures", "retries", "restarts", "mean ms"],
      stats.agents.map(function (a) {
        return [a.name, a.status, a.source, a.sinks.join(", "), a.inFlight, a.events, a.eventsPerSecond, a.failures, a.retries, a.restarts, a.meanProcessingSeconds * 1000];
      }));
  }

  function setReady(body, ok) {
    var badge = document.getElementById("ready");
    badge.className = "badge " + (ok ? "ok" : "bad");
    badge.textContent = ok ? "ready" : "not ready";
    badge.title = body && body.notReady ? body.notReady.join("\\n") : "";
  }

  function tick() {
    Promise.all([
      fetch("/stats?history", { cache: "no-store" }).then(function (r) { return r.json(); }),
      fetch("/ready", { cache: "no-store" }).then(function (r) { return r.json().then(function (b) { return [b, r.ok]; }); })
    ]).then(function (results) {
      drawGraph(results[0]);
      drawTables(results[0]);
      setReady(results[1][0], results[1][1]);
      document.getElementById("updated").textContent = "updated " + new Date(results[0].time).toLocaleTimeString();
    }).catch(function () {
      var badge = document.getElementById("ready");
      badge.className = "badge bad";
      badge.textContent = "disconnected";
    }).then(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
`
