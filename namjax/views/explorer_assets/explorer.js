// namjax explorer: the whole-graph NIV app. One ES module shared by two hosts:
// * the offline page (explorer.html): inlined after plotly.js, which calls mountPage();
// * the Jupyter widget (anywidget): imports this module and calls the default export's render().
// Its only input is the payload written by namjax/views/explorer_data.py (format
// "namjax-explorer/1"); node references in it are page indices into data.nodes.
// Every user string reaches the DOM as textContent, and plotly (which renders a small HTML
// subset) only through esc().

const SYMBOL = { 1: "triangle-up", "-1": "triangle-down", 0: "circle" };
const WALK_COLOUR = "#000000";
const LABELLED = 10; // neighbours that get a text label, largest |contribution| first

// ------------------------------------------------------------------------------ helpers
export function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(value, digits = 4) {
  const text = String(Number(Number(value).toPrecision(digits)));
  return value > 0 || Object.is(value, 0) ? `+${text}` : text;
}

const percent = (v) => `${v >= 0 ? "+" : ""}${(100 * v).toFixed(1)}%`;
const mod1 = (v) => ((v % 1) + 1) % 1;
const sign = (v) => String(Math.sign(v) || 0);
const sum = (values) => values.reduce((a, b) => a + b, 0);
const hopNames = (K) => ["self", ...Array.from({ length: K }, (_, h) => `${h + 1}-hop`)];

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

// ------------------------------------------------------------------------------ data
class Store {
  constructor(data) {
    this.data = data;
    this.K = data.depth;
    this.Q = data.slots;
    this.index = new Map(data.nodes.map((id, i) => [id, i]));
    this.row = new Map(data.targets.map((i, t) => [i, t]));
  }
  id(i) { return this.data.nodes[i]; }
  name(i) { return this.data.names ? this.data.names[i] : String(this.data.nodes[i]); }
  nodeText(i) {
    const id = this.id(i), name = this.name(i);
    return name === String(id) ? `node ${id}` : `node ${id} (${name})`;
  }
  classLabel(c) { return c < 0 ? "unknown" : this.data.class_names[c]; }
  colour(c) { return c < 0 ? this.data.unknown_colour : this.data.colours[c]; }
  split(i) { return this.data.splits[this.data.split[i]]; }
  slots(t) { return this.data.classes.slice(t * this.Q, (t + 1) * this.Q); }
  predicted(m, i) {
    const t = this.row.get(i);
    return t === undefined ? -1 : this.data.methods[m].predicted[t];
  }
  neighbours(i) { return this.data.indices.slice(this.data.indptr[i], this.data.indptr[i + 1]); }
}

// The contributors the view draws: the target, the top k within `hops`, and faded bridges.
function contributors(store, st) {
  const t = store.row.get(st.node), method = store.data.methods[st.m];
  const q = store.slots(t).indexOf(st.cls), K1 = store.K + 1, at = t * store.Q + q;
  const [src, hop, pos, val] = method.lists[t];
  const ranked = pos[q]
    .map((p, j) => ({ i: src[p], hop: hop[p], c: val[q][j] }))
    .filter((e) => e.hop <= st.hops);
  const shown = ranked.slice(0, st.k);
  const hopSums = method.hop_sums.slice(at * K1, at * K1 + K1);
  const counts = method.counts.slice(t * store.K, t * store.K + st.hops);
  return {
    hopSums, shown,
    self: { i: st.node, hop: 0, c: hopSums[0] },
    bridges: bridges(store, st.node, shown, ranked.slice(st.k), st.hops),
    within: sum(counts),
    hiddenSum: sum(hopSums.slice(1, st.hops + 1)) - sum(shown.map((e) => e.c)),
    bias: method.bias[at], rest: method.rest[at], logit: method.logits[at],
    absSum: method.abs_sum[at],
  };
}

// For each drawn hop-g node with no drawn hop-(g-1) neighbour, the largest such node left out
// of the top k (the payload lists one for every listed node), so that nothing floats.
function bridges(store, target, shown, rest, hops) {
  const drawn = new Map([[target, 0], ...shown.map((e) => [e.i, e.hop])]);
  const added = [];
  for (let g = hops; g >= 2; g--) {
    for (const e of [...shown, ...added].filter((d) => d.hop === g)) {
      const near = new Set(store.neighbours(e.i));
      if ([...near].some((u) => drawn.get(u) === g - 1)) continue;
      const via = rest.find((r) => r.hop === g - 1 && near.has(r.i) && !drawn.has(r.i));
      if (via) {
        added.push(via);
        drawn.set(via.i, via.hop);
      }
    }
  }
  return added;
}

// Edges {u, v} among `nodes` on some walk source → ... → target of length ≤ K inside `nodes`.
function walkEdges(store, nodes, source, target, K) {
  const inside = new Set(nodes);
  const distances = (start) => {
    const d = new Map([[start, 0]]), queue = [start];
    while (queue.length) {
      const v = queue.shift();
      for (const u of store.neighbours(v)) {
        if (inside.has(u) && !d.has(u)) { d.set(u, d.get(v) + 1); queue.push(u); }
      }
    }
    return d;
  };
  const ds = distances(source), dt = distances(target), far = Infinity;
  const edges = [];
  for (const v of nodes) {
    for (const u of store.neighbours(v)) {
      if (u <= v || !inside.has(u)) continue;
      const a = (ds.get(v) ?? far) + 1 + (dt.get(u) ?? far);
      const b = (ds.get(u) ?? far) + 1 + (dt.get(v) ?? far);
      if (Math.min(a, b) <= K) edges.push([v, u]);
    }
  }
  return edges;
}

// ------------------------------------------------------------------------------ layout
// Hop-1 sort key as niv.py: grouped by class; inside a class the largest nodes are spread over
// the class's arc (golden-ratio sequence of their ranks).
function ringOrder(nodes) {
  const byClass = new Map();
  nodes.forEach((e, j) => {
    if (!byClass.has(e.cls)) byClass.set(e.cls, []);
    byClass.get(e.cls).push(j);
  });
  const spread = new Array(nodes.length);
  for (const members of byClass.values()) {
    members.sort((a, b) => Math.abs(nodes[b].c) - Math.abs(nodes[a].c));
    members.forEach((j, r) => { spread[j] = mod1(r * 0.6180339887498949); });
  }
  const key = new Array(nodes.length);
  nodes
    .map((_, j) => j)
    .sort((a, b) => nodes[a].cls - nodes[b].cls || spread[a] - spread[b])
    .forEach((j, r) => { key[j] = r; });
  return key;
}

// niv.py's ring layout: target at the centre, hop h on a ring of radius h; each outer ring is
// ordered by the mean angle of a node's neighbours on the ring inside it.
function ringLayout(store, nodes) {
  const n = nodes.length, x = new Array(n).fill(0), y = new Array(n).fill(0);
  const frac = new Array(n).fill(0), key = ringOrder(nodes);
  const local = new Map(nodes.map((e, j) => [e.i, j]));
  const top = Math.max(0, ...nodes.map((e) => e.hop));
  for (let h = 1; h <= top; h++) {
    const ring = nodes.map((_, j) => j).filter((j) => nodes[j].hop === h);
    const anchor = new Map(ring.map((j) => [j, Infinity])); // hop 1: by key alone
    for (const j of h > 1 ? ring : []) {
      let sx = 0, sy = 0, linked = false;
      for (const u of store.neighbours(nodes[j].i)) {
        const l = local.get(u);
        if (l === undefined || nodes[l].hop !== h - 1) continue;
        sx += Math.cos(2 * Math.PI * frac[l]);
        sy += Math.sin(2 * Math.PI * frac[l]);
        linked = true;
      }
      if (linked) anchor.set(j, mod1(Math.atan2(sy, sx) / (2 * Math.PI)));
    }
    ring.sort((a, b) => anchor.get(a) - anchor.get(b) || key[a] - key[b]);
    ring.forEach((j, r) => {
      frac[j] = (r + 0.5) / ring.length;
      const angle = Math.PI / 2 - 2 * Math.PI * frac[j];
      x[j] = h * Math.cos(angle);
      y[j] = h * Math.sin(angle);
    });
  }
  return { x, y };
}

function outward(x, y) {
  const r = Math.hypot(x, y);
  if (r < 1e-9) return "top center";
  const s = y / r;
  if (s > 0.5) return "top center";
  if (s < -0.5) return "bottom center";
  return x >= 0 ? "middle right" : "middle left";
}

// ------------------------------------------------------------------------------ figures
function hoverText(store, st, e, view, note = "") {
  const p = store.predicted(st.m, e.i), label = store.data.labels[e.i];
  const share = view.absSum > 0 ? `${percent(e.c / view.absSum)} of Σ|C|` : "n/a";
  return (
    `<b>${esc(store.nodeText(e.i))}</b><br>hop ${e.hop}<br>` +
    `true class: ${esc(store.classLabel(label))}<br>` +
    `predicted: ${p >= 0 ? esc(store.classLabel(p)) : "not computed"}<br>` +
    `split: ${store.split(e.i)}<br>` +
    `contribution to class ${esc(store.classLabel(st.cls))} of node ${store.id(st.node)}: ` +
    `${fmt(e.c)}<br>share: ${share}${note}`
  );
}

function legendEntry(name, marker, extra = {}) {
  return { x: [null], y: [null], mode: "markers", name, marker, hoverinfo: "skip", ...extra };
}

function nivFigure(store, st, view, source) {
  const nodes = [view.self, ...view.shown, ...view.bridges].map((e) => ({
    ...e, cls: store.predicted(st.m, e.i),
  }));
  const faded = nodes.map((_, j) => j >= 1 + view.shown.length);
  const { x, y } = ringLayout(store, nodes);
  // the marker encoding of niv.py (its STYLE): sign by symbol and by outline (black; white
  // inside a black rim drawn behind every marker), training nodes circled, bridges faded
  const style = store.data.style, { max_diameter: big, min_diameter: small } = style;
  const fade = style.bridge_opacity;
  const scale = Math.max(0, ...nodes.map((e) => Math.abs(e.c)));
  const size = nodes.map((e) =>
    Math.max(scale > 0 ? big * Math.sqrt(Math.abs(e.c) / scale) : 0, small));
  const labelled = new Set(
    nodes.map((_, j) => j).filter((j) => j > 0 && !faded[j])
      .sort((a, b) => Math.abs(nodes[b].c) - Math.abs(nodes[a].c)).slice(0, LABELLED),
  );
  const pick = (want) => nodes.map((_, j) => j).filter((j) => faded[j] === want);
  const points = (js, uid, extra) => ({
    type: "scatter", uid, mode: "markers+text", showlegend: false, hoverinfo: "text",
    x: js.map((j) => x[j]), y: js.map((j) => y[j]),
    customdata: js.map((j) => store.id(nodes[j].i)),
    text: js.map((j) => (labelled.has(j) ? esc(store.name(nodes[j].i)) : "")),
    textposition: js.map((j) => outward(x[j], y[j])), textfont: { size: 10 },
    hovertext: js.map((j) => hoverText(store, st, nodes[j], view, extra.note || "")),
    marker: {
      size: js.map((j) => size[j]),
      color: js.map((j) => store.colour(nodes[j].cls)),
      symbol: js.map((j) => SYMBOL[sign(nodes[j].c)]),
      line: {
        width: style.outline_width, color: js.map((j) => style.outline[sign(nodes[j].c)]),
      },
      opacity: extra.opacity,
    },
  });
  const local = new Map(nodes.map((e, j) => [e.i, j]));
  const segments = (pairs) => {
    const xs = [], ys = [];
    for (const [a, b] of pairs) {
      xs.push(x[local.get(a)], x[local.get(b)], null);
      ys.push(y[local.get(a)], y[local.get(b)], null);
    }
    return { xs, ys };
  };
  const edges = [];
  for (const e of nodes) {
    for (const u of store.neighbours(e.i)) if (u > e.i && local.has(u)) edges.push([e.i, u]);
  }
  const walk = source === null
    ? []
    : walkEdges(store, nodes.map((e) => e.i), source, st.node, store.K);
  const all = segments(edges), walked = segments(walk);
  const train = nodes.map((_, j) => j).filter((j) => store.split(nodes[j].i) === "train");
  const present = [...new Set(nodes.map((e) => e.cls))].sort((a, b) => a - b);
  const line = (pts, uid, width, colour, name) => ({
    type: "scatter", uid, mode: "lines", x: pts.xs, y: pts.ys, hoverinfo: "skip",
    line: { width, color: colour }, name, showlegend: Boolean(name) && pts.xs.length > 0,
  });
  const data = [
    line(all, "nx-edges", 0.7, "#9A9A9A"),
    line(walked, "nx-walk", 3, WALK_COLOUR, "walk edges (source → target)"),
    {
      type: "scatter", uid: "nx-train", mode: "markers", hoverinfo: "skip", showlegend: false,
      x: train.map((j) => x[j]), y: train.map((j) => y[j]),
      marker: {
        symbol: "circle-open", size: train.map((j) => size[j] + style.rim_extra + 8),
        color: style.train_ring, line: { width: 1.5 },
      },
    },
    {
      type: "scatter", uid: "nx-rims", mode: "markers", hoverinfo: "skip", showlegend: false,
      x, y,
      marker: {
        symbol: nodes.map((e) => SYMBOL[sign(e.c)]), size: size.map((d) => d + style.rim_extra),
        color: style.rim, line: { width: 0 }, opacity: faded.map((f) => (f ? fade : 1)),
      },
    },
    points(pick(true), "nx-bridges", {
      opacity: fade, note: "<br><i>not in the top k: drawn faded as a bridge</i>",
    }),
    points(pick(false), "nx-nodes", { opacity: 1 }),
    {
      type: "scatter", uid: "nx-halo", mode: "markers+text", hoverinfo: "skip",
      x: [0], y: [0], text: [esc(store.name(st.node))], textposition: "top center",
      textfont: { size: 12 }, name: `target: ${esc(store.nodeText(st.node))}`,
      marker: { symbol: "circle-open", size: size[0] + 16, color: "#000000", line: { width: 3 } },
    },
    ...present.map((c) =>
      legendEntry(c >= 0 ? esc(store.classLabel(c)) : "prediction not computed", {
        color: store.colour(c), size: 12, symbol: "circle", line: { width: 1, color: style.rim },
      }),
    ),
    legendEntry("▲ raises the class score (black outline)", {
      symbol: "triangle-up", color: "#999999", size: 12, line: { width: 2, color: style.rim },
    }),
    legendEntry("▼ lowers it (white ring inside the black rim)", {
      symbol: "triangle-down", color: "#999999", size: 12, line: { width: 2, color: style.rim },
    }),
    legendEntry("training node (label seen in training)", {
      symbol: "circle-open", color: style.train_ring, size: 14, line: { width: 1.5 },
    }),
    legendEntry("faded: bridge outside the top k", {
      symbol: "circle", color: "#999999", size: 12, opacity: fade,
    }, { showlegend: view.bridges.length > 0 }),
  ];
  const R = st.hops + 0.45, rings = Array.from({ length: st.hops }, (_, h) => h + 1);
  const layout = {
    height: 640, margin: { l: 8, r: 8, t: 8, b: 30 }, hovermode: "closest",
    paper_bgcolor: "#FFFFFF", plot_bgcolor: "#FFFFFF", uirevision: `${st.node}`,
    xaxis: { // the hop labels: ticks at the rings' radii, below the rings
      range: [-R, R], showgrid: false, zeroline: false, showline: false, ticks: "",
      tickvals: rings.map((h) => h), ticktext: rings.map((h) => `hop ${h}`),
      tickfont: { size: 11, color: "#444444" },
    },
    yaxis: { visible: false, range: [-R, R], scaleanchor: "x" },
    legend: { orientation: "h", x: 0, y: -0.05, yanchor: "top", font: { size: 11 } },
    shapes: rings.flatMap((h) => [
      {
        type: "circle", x0: -h, y0: -h, x1: h, y1: h, layer: "below",
        line: { color: "#B5B5B5", width: 1, dash: "dot" },
      },
      { // a tick from the ring down to its label
        type: "line", x0: h, x1: h, y0: 0, y1: -R, layer: "below",
        line: { color: "#CFCFCF", width: 1, dash: "dot" },
      },
    ]),
    meta: {
      view: "explorer-niv", node: store.id(st.node), class: st.cls, hops: st.hops, k: st.k,
      method: store.data.methods[st.m].name, shown: view.shown.length,
      bridges: view.bridges.length,
      walk: walk.length, source: source === null ? null : store.id(source),
    },
  };
  return { data, layout, scale };
}

function barsFigure(store, st, view, source) {
  const rows = [view.self, ...view.shown];
  const lo = Math.min(0, ...rows.map((e) => e.c)), hi = Math.max(0, ...rows.map((e) => e.c));
  const pad = 0.22 * (hi - lo || 1); // room for the share labels outside the bars
  const labels = rows.map((e) =>
    `${esc(store.nodeText(e.i))} · ${e.hop === 0 ? "self" : `hop ${e.hop}`}`);
  const data = [{
    type: "bar", uid: "nx-bars", orientation: "h", y: labels, x: rows.map((e) => e.c),
    customdata: rows.map((e) => store.id(e.i)),
    marker: {
      color: rows.map((e) => store.colour(store.predicted(st.m, e.i))),
      line: { color: "#333333", width: rows.map((e) => (e.i === source ? 3 : 1)) },
    },
    text: rows.map((e) => (view.absSum > 0 ? percent(e.c / view.absSum) : "")),
    textposition: "outside", cliponaxis: false, hoverinfo: "text",
    hovertext: rows.map((e) => hoverText(store, st, e, view)),
  }];
  const layout = {
    height: 110 + 20 * rows.length, margin: { l: 10, r: 40, t: 36, b: 36 },
    title: { text: `Top ${view.shown.length} contributors and self`, font: { size: 13 }, x: 0 },
    xaxis: {
      title: { text: "contribution (click a bar: walks from it)" }, zeroline: true,
      automargin: true, range: [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0],
    },
    yaxis: { autorange: "reversed", automargin: true, tickfont: { size: 10 } },
    meta: { view: "explorer-bars", node: store.id(st.node), class: st.cls },
  };
  return { data, layout };
}

function breakdownFigure(store, st, view) {
  const dropped = view.rest !== 0; // a top-k attribution: what it dropped
  const names = [...hopNames(store.K), "bias", ...(dropped ? ["dropped"] : []), "logit"];
  const values = [...view.hopSums, view.bias, ...(dropped ? [view.rest] : []), view.logit];
  const data = [{
    type: "waterfall", uid: "nx-breakdown", x: names, y: values,
    measure: [...values.slice(0, -1).map(() => "relative"), "absolute"],
    text: values.map((v) => fmt(v)), textposition: "outside", cliponaxis: false,
    hoverinfo: "x+text", connector: { line: { color: "#999999" } },
    increasing: { marker: { color: "#0072B2" } }, decreasing: { marker: { color: "#D55E00" } },
    totals: { marker: { color: "#555555" } },
  }];
  const layout = {
    height: 260, margin: { l: 40, r: 10, t: 36, b: 30 },
    title: { text: "Per-hop breakdown: Σ + bias = logit", font: { size: 13 }, x: 0 },
    yaxis: { zeroline: true, automargin: true },
    meta: { view: "explorer-breakdown", node: store.id(st.node), class: st.cls },
  };
  return { data, layout };
}

// ------------------------------------------------------------------------------ history
// "hash": the top-level page keeps its state in location.hash (browser back/forward work);
// "stack": an in-memory list (the widget, or the page inside an iframe).
function makeHistory(kind, onMove) {
  if (kind === "hash") {
    let at = 0, last = 0;
    window.addEventListener("popstate", (event) => {
      if (event.state && typeof event.state.nx === "number") at = event.state.nx;
      else {
        at += 1; // a hash typed by hand: a new entry after the current one
        last = at;
        history.replaceState({ nx: at }, "");
      }
      onMove(location.hash);
    });
    return {
      start(hash) { history.replaceState({ nx: 0 }, "", hash); },
      push(hash) { at += 1; last = at; history.pushState({ nx: at }, "", hash); },
      replace(hash) { history.replaceState({ nx: at }, "", hash); },
      back() { history.back(); },
      forward() { history.forward(); },
      canBack: () => at > 0,
      canForward: () => at < last,
    };
  }
  let entries = [], at = 0;
  return {
    start(hash) { entries = [hash]; at = 0; },
    push(hash) { entries = entries.slice(0, at + 1); entries.push(hash); at += 1; },
    replace(hash) { entries[at] = hash; },
    back() { if (at > 0) onMove(entries[(at -= 1)]); },
    forward() { if (at < entries.length - 1) onMove(entries[(at += 1)]); },
    canBack: () => at > 0,
    canForward: () => at < entries.length - 1,
  };
}

// ------------------------------------------------------------------------------ the app
function buildDom(root, store) {
  const control = (tag, cls, label, props = {}) =>
    el(tag, { class: cls, "aria-label": label, ...props });
  const ui = {
    search: control("input", "nx-search", "find a node", {
      type: "search", placeholder: "node id or name",
    }),
    suggest: el("div", { class: "nx-suggest", role: "listbox" }),
    back: el("button", { type: "button", class: "nx-back", textContent: "◀ back" }),
    forward: el("button", { type: "button", class: "nx-forward", textContent: "forward ▶" }),
    cls: control("select", "nx-class", "class"),
    method: control("select", "nx-method", "method"),
    hops: control("select", "nx-hops", "hops"),
    k: control("input", "nx-k", "top k", { type: "range", min: 1, max: store.data.top_k }),
    kOut: el("output", { class: "nx-k-value" }),
    title: el("div", { class: "nx-title" }),
    subtitle: el("div", { class: "nx-subtitle" }),
    message: el("div", { class: "nx-message", role: "status" }),
    niv: el("div", { class: "nx-niv-plot" }),
    caption: el("p", { class: "nx-caption" }),
    walk: el("p", { class: "nx-walk-caption" }),
    clearWalk: el("button", { type: "button", class: "nx-clear-walk", textContent: "clear walks" }),
    bars: el("div", { class: "nx-bars-plot" }),
    breakdown: el("div", { class: "nx-breakdown-plot" }),
    sums: el("p", { class: "nx-sums" }),
  };
  store.data.methods.forEach((m, j) => {
    ui.method.append(el("option", { value: j, textContent: m.name }));
  });
  for (let h = 1; h <= store.K; h++) {
    ui.hops.append(el("option", { value: h, textContent: `${h} hop${h > 1 ? "s" : ""}` }));
  }
  const label = (text, input) => el("label", {}, el("span", { textContent: text }), input);
  const methodLabel = label("method", ui.method);
  methodLabel.hidden = store.data.methods.length < 2;
  root.replaceChildren(
    el("div", { class: "nx-app" },
      el("header", { class: "nx-header" },
        el("h1", { textContent: store.data.title }), ui.title, ui.subtitle),
      el("div", { class: "nx-controls" },
        el("div", { class: "nx-find" }, ui.search, ui.suggest), ui.back, ui.forward,
        label("class", ui.cls), methodLabel, label("hops", ui.hops),
        label("top k", ui.k), ui.kOut),
      ui.message,
      el("div", { class: "nx-main" },
        el("section", { class: "nx-niv" }, ui.niv, ui.caption,
          el("div", { class: "nx-walk" }, ui.walk, ui.clearWalk)),
        el("section", { class: "nx-side" }, ui.bars, ui.breakdown, ui.sums))));
  return ui;
}

// State: {node: page index of a target, m: method, cls: class id, hops, k, source: the walk
// source's page index or null}. Moving to another node pushes a history entry; the controls
// replace the current one.
function mount(root, data, { plotly, history: kind, start = null, onNode = () => {} }) {
  if (data.format !== "namjax-explorer/1") throw new Error(`unknown explorer data ${data.format}`);
  const store = new Store(data), ui = buildDom(root, store);
  const config = {
    displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"],
  };
  let st = null;
  const say = (text) => { ui.message.textContent = text; };
  const clamp = (v, hi) => Math.min(Math.max(Math.round(v), 1), hi);

  // The state showing target i; the class defaults to its predicted class.
  function stateFor(i, want = {}) {
    const t = store.row.get(i), m = want.m ?? st?.m ?? 0, slots = store.slots(t);
    const predicted = data.methods[m].predicted[t];
    let cls = slots.includes(predicted) ? predicted : slots[0];
    if (slots.includes(want.cls)) cls = want.cls;
    return {
      node: i, m, cls, source: null,
      hops: clamp(want.hops ?? st?.hops ?? store.K, store.K),
      k: clamp(want.k ?? st?.k ?? data.top_k, data.top_k),
    };
  }
  const hashOf = (s) => "#" + new URLSearchParams({
    node: store.id(s.node), class: s.cls, method: data.methods[s.m].name, hops: s.hops, k: s.k,
  }).toString();

  // A graph id → the page index of an explained target, or null (saying why).
  function target(id) {
    const i = store.index.get(id);
    if (i === undefined) {
      say(`node ${id} is not on this page`);
      return null;
    }
    if (!store.row.has(i)) {
      say(`${store.nodeText(i)} is not an explained target: its attribution was not ` +
        "computed (run nam() with it among the targets)");
      return null;
    }
    return i;
  }
  function fromHash(hash) {
    const p = new URLSearchParams(hash.replace(/^#/, ""));
    const i = p.has("node") ? target(Number(p.get("node"))) : null;
    if (i === null) return null;
    const num = (key) => {
      const v = Number(p.get(key));
      return p.has(key) && Number.isFinite(v) ? v : undefined;
    };
    const m = data.methods.findIndex((x) => x.name === p.get("method"));
    const want = { cls: num("class"), hops: num("hops"), k: num("k") };
    return stateFor(i, m >= 0 ? { ...want, m } : want);
  }

  const nav = makeHistory(kind, (hash) => {
    const next = fromHash(hash);
    if (next) show(next);
    buttons();
  });
  function buttons() {
    ui.back.disabled = !nav.canBack();
    ui.forward.disabled = !nav.canForward();
  }
  function show(next) {
    const moved = !st || next.node !== st.node;
    st = next;
    if (moved) {
      const options = store.slots(store.row.get(st.node))
        .map((c) => el("option", { value: c, textContent: store.classLabel(c) }));
      ui.cls.replaceChildren(...options);
      onNode(store.id(st.node));
    }
    render();
  }
  function go(next, how) {
    say("");
    show(next);
    nav[how](hashOf(next));
    buttons();
  }
  function walkFrom(id) {
    const i = store.index.get(id);
    st = { ...st, source: i === st.source ? null : i };
    render();
  }

  function render() {
    const view = contributors(store, st);
    const drawn = [view.self, ...view.shown, ...view.bridges].map((e) => e.i);
    if (st.source !== null && !drawn.includes(st.source)) st = { ...st, source: null };
    const niv = nivFigure(store, st, view, st.source);
    header();
    ui.cls.value = String(st.cls);
    ui.method.value = String(st.m);
    ui.hops.value = String(st.hops);
    ui.k.value = String(st.k);
    ui.kOut.textContent = String(st.k);
    captions(view, niv.scale);
    plotly.react(ui.niv, niv.data, niv.layout, config);
    const bars = barsFigure(store, st, view, st.source);
    plotly.react(ui.bars, bars.data, bars.layout, config);
    const breakdown = breakdownFigure(store, st, view);
    plotly.react(ui.breakdown, breakdown.data, breakdown.layout, config);
  }
  function header() {
    const predicted = data.methods[st.m].predicted[store.row.get(st.node)];
    ui.title.textContent = store.nodeText(st.node);
    ui.subtitle.textContent =
      `predicted: ${store.classLabel(predicted)} · ` +
      `label: ${store.classLabel(data.labels[st.node])} · split: ${store.split(st.node)} · ` +
      `explaining class ${store.classLabel(st.cls)}` +
      (data.methods.length > 1 ? ` · method ${data.methods[st.m].name}` : "");
    if (kind === "hash") document.title = `${store.nodeText(st.node)} · ${data.title}`;
  }
  function captions(view, scale) {
    const hidden = view.within - view.shown.length;
    ui.caption.textContent =
      `The ${view.shown.length} largest of ${view.within} neighbours within ${st.hops} ` +
      `hop${st.hops > 1 ? "s" : ""}` +
      (hidden > 0 ? `; ${hidden} more not in the top k (sum ${fmt(view.hiddenSum)})` : "") +
      (view.bridges.length ? `, ${view.bridges.length} of them drawn faded as bridges` : "") +
      `. Marker area ∝ |contribution| (largest |C| = ${fmt(scale).replace("+", "")}); ` +
      "rings: hop distance. Click a marker to explore that node; shift-click it (or click " +
      "its bar) to highlight its walks.";
    ui.walk.textContent = st.source === null ? "" :
      `Highlighted: the edges of walks of length ≤ ${store.K} from ` +
      `${store.nodeText(st.source)} to ${store.nodeText(st.node)} among the drawn nodes. ` +
      "This highlights the walks' edges, not their individual contributions.";
    ui.clearWalk.hidden = st.source === null;
    const parts = hopNames(store.K).map((name, h) => `${name} ${fmt(view.hopSums[h])}`);
    parts.push(`bias ${fmt(view.bias)}`);
    if (view.rest !== 0) parts.push(`dropped by top-k ${fmt(view.rest)}`);
    const total = sum(view.hopSums) + view.bias + view.rest;
    ui.sums.textContent =
      `${parts.join(" + ")} = ${fmt(total)}; ` +
      `logit of class ${store.classLabel(st.cls)}: ${fmt(view.logit)}`;
  }

  // Search: an exact id, an exact name, else the first target whose name contains the text
  // (or whose id starts with it).
  function matches(text) {
    const needle = text.trim().toLowerCase(), found = [];
    if (!needle) return found;
    for (const i of data.targets) {
      const name = store.name(i).toLowerCase();
      if (name.includes(needle) || String(store.id(i)).startsWith(needle)) found.push(i);
      if (found.length === 8) break;
    }
    return found;
  }
  function find(text) {
    const raw = text.trim();
    if (/^\d+$/.test(raw) && store.index.has(Number(raw))) return target(Number(raw));
    const exact = data.nodes.findIndex((_, i) => store.name(i) === raw);
    if (exact >= 0) return target(store.id(exact));
    const near = matches(raw);
    if (near.length) return near[0];
    say(`no node matches “${raw}”`);
    return null;
  }
  function choose(i) {
    ui.suggest.replaceChildren();
    if (i !== null) go(stateFor(i), "push");
  }
  ui.search.addEventListener("input", () => {
    const options = matches(ui.search.value).map((i) => el("button", {
      type: "button", role: "option", textContent: store.nodeText(i), onclick: () => choose(i),
    }));
    ui.suggest.replaceChildren(...options);
  });
  ui.search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") choose(find(ui.search.value));
  });
  ui.back.addEventListener("click", () => nav.back());
  ui.forward.addEventListener("click", () => nav.forward());
  ui.cls.addEventListener("change", () => {
    go({ ...st, cls: Number(ui.cls.value), source: null }, "replace");
  });
  ui.method.addEventListener("change", () => {
    go(stateFor(st.node, { m: Number(ui.method.value), cls: st.cls }), "replace");
  });
  ui.hops.addEventListener("change", () => go({ ...st, hops: Number(ui.hops.value) }, "replace"));
  ui.k.addEventListener("input", () => go({ ...st, k: Number(ui.k.value) }, "replace"));
  ui.clearWalk.addEventListener("click", () => walkFrom(store.id(st.source)));

  let initial = null;
  if (start !== null) {
    const i = target(start);
    if (i !== null) initial = stateFor(i);
  } else if (kind === "hash" && location.hash) initial = fromHash(location.hash);
  show(initial ?? stateFor(data.targets[0]));
  nav.start(hashOf(st));
  buttons();

  // A click on a marker moves to that node; with Shift held, or on a bar, it picks the
  // source whose walks are highlighted (a second such click clears them).
  ui.niv.on("plotly_click", (event) => {
    const point = event.points[0], id = point.customdata;
    if (!["nx-nodes", "nx-bridges"].includes(point.data.uid)) return;
    if (event.event && event.event.shiftKey) walkFrom(id);
    else if (id === store.id(st.node)) say(`${store.nodeText(st.node)} is the current node`);
    else {
      const i = target(id);
      if (i !== null) go(stateFor(i), "push");
    }
  });
  ui.bars.on("plotly_click", (event) => walkFrom(event.points[0].customdata));

  return {
    goToId(id) {
      if (id === store.id(st.node)) return;
      const i = target(id);
      if (i !== null) go(stateFor(i), "push");
    },
    destroy() {
      for (const div of [ui.niv, ui.bars, ui.breakdown]) plotly.purge(div);
    },
  };
}

// ------------------------------------------------------------------------------ hosts
export function mountPage() {
  const data = JSON.parse(document.getElementById("namjax-explorer-data").textContent);
  const framed = window.self !== window.top;
  return mount(document.getElementById("namjax-explorer"), data, {
    plotly: window.Plotly, history: framed ? "stack" : "hash",
    start: Number.isInteger(data.start) ? data.start : null, // the widget's page: its node
  });
}

// plotly.js arrives with the widget (a traitlet) and is run once per notebook page, leaving
// any plotly.js the notebook already has in place.
function plotlyFrom(source) {
  if (!window.namjaxPlotly) {
    const before = window.Plotly, module = { exports: {} };
    new Function("module", "define", source)(module, undefined);
    window.namjaxPlotly = module.exports;
    if (before) window.Plotly = before;
  }
  return window.namjaxPlotly;
}

export default {
  render({ model, el: host }) {
    const app = mount(host, JSON.parse(model.get("data")), {
      plotly: plotlyFrom(model.get("_plotly")),
      history: "stack",
      start: model.get("node") >= 0 ? model.get("node") : null,
      onNode: (id) => {
        if (model.get("node") === id) return;
        model.set("node", id);
        model.save_changes();
      },
    });
    const changed = () => app.goToId(model.get("node"));
    model.on("change:node", changed);
    return () => {
      model.off("change:node", changed);
      app.destroy();
    };
  },
};
