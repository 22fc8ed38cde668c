// The emulator's dashboard: plain browser JavaScript, no dependencies, served by the emulator itself.
// Every call goes to the emulator's own admin API (same origin). The admin token, when the emulator
// has one, is asked for once, kept for the tab (sessionStorage) and sent as a Bearer header; a
// "#token=..." fragment in the page's address is taken too (it never reaches the server's logs).
"use strict";

(() => {
  const API = "/_emulator";
  const TOKEN_KEY = "emulator-admin-token";
  const $ = (id) => document.getElementById(id);

  // -- calls to the admin API ----------------------------------------------------------------------

  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    token = fragment.get("token");
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  class ApiError extends Error {}

  // A state-changing call always says Content-Type: application/json (the admin API refuses any
  // other, against cross-site requests), with "{}" when it has nothing to say.
  async function api(method, path, body) {
    const init = { method, headers: headers(), cache: "no-store" };
    if (method === "POST" || method === "PUT" || method === "PATCH") {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    const response = await fetch(API + path, init);
    if (response.status === 401) {
      askToken();
      throw new ApiError("the admin token is needed");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError((data && (data.detail || data.message)) || response.status + " " + response.statusText);
    }
    return data;
  }

  function report(error) {
    const box = $("message");
    box.textContent = String(error && error.message ? error.message : error);
    box.hidden = false;
    clearTimeout(report.timer);
    report.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  function askToken() {
    $("token-bar").hidden = false;
    $("token").focus();
  }

  $("token-save").addEventListener("click", () => {
    token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-bar").hidden = true;
    restartStream();
    refreshVisible();
    refreshClock();
  });

  // -- small DOM helpers (text only: nothing the emulator recorded is ever parsed as HTML) ----------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function cell(value, cls) {
    return el("td", { class: cls, text: value === null || value === undefined ? "" : String(value) });
  }

  function clockTime(epoch) {
    if (epoch === null || epoch === undefined) return "";
    const d = new Date(epoch * 1000);
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function statusClass(status) {
    if (status === null || status === undefined) return "st-none";
    return "st-" + String(status)[0];
  }

  function compact(value) {
    return value === undefined || value === null ? "" : JSON.stringify(value);
  }

  // -- views ---------------------------------------------------------------------------------------

  let view = "traffic";
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => show(button.dataset.view));
  }

  function show(name) {
    view = name;
    for (const button of document.querySelectorAll("#tabs button")) {
      button.classList.toggle("active", button.dataset.view === name);
    }
    for (const section of document.querySelectorAll(".view")) {
      section.hidden = section.id !== "view-" + name;
    }
    refreshVisible();
  }

  function refreshVisible() {
    const refresh = { callbacks: loadCallbacks, faults: loadFaults, state: loadState }[view];
    if (refresh) refresh().catch(report);
  }

  // -- traffic: the live table ---------------------------------------------------------------------

  const traffic = {
    rows: [],          // newest first, at most `cap`
    pending: [],       // arrived while paused, newest first
    fresh: [],         // arrived since the last drawing, newest first: drawn on top of the table
    redraw: true,      // the whole table must be drawn again (a filter, the cap, a clear changed)
    lastId: 0,
    dropped: 0,        // rows the server could not send in time (a page slower than the traffic)
    capped: 0,         // older rows let go past the row cap
    paused: false,
    selected: null,
    actions: new Set(),
    journal: null,
  };
  const filterIds = ["f-provider", "f-action", "f-account", "f-namespace", "f-direction", "f-status", "f-fault", "f-text"];

  function cap() {
    return Number($("cap").value);
  }

  function take(rows) {
    // rows: newest first; only those newer than any seen (a reconnect's snapshot repeats some).
    const fresh = rows.filter((r) => r.id > traffic.lastId);
    if (!fresh.length) return;
    traffic.lastId = Math.max(traffic.lastId, ...fresh.map((r) => r.id));
    const datalist = $("actions");
    for (const r of fresh) {
      if (r.action && !traffic.actions.has(r.action) && traffic.actions.size < 200) {
        traffic.actions.add(r.action);
        datalist.append(el("option", { value: r.action }));
      }
    }
    const into = traffic.paused ? "pending" : "rows";
    traffic[into] = fresh.concat(traffic[into]);
    if (traffic[into].length > cap()) {
      traffic.capped += traffic[into].length - cap();
      traffic[into].length = cap();
    }
    if (!traffic.paused) traffic.fresh = fresh.concat(traffic.fresh).slice(0, cap());
    scheduleRender(false);
  }

  function matches(r, f) {
    const has = (value, want) => !want || String(value || "").toLowerCase().includes(want);
    if (f.provider && r.provider !== f.provider) return false;
    if (!has(r.action, f.action) || !has(r.account, f.account) || !has(r.namespace, f.namespace)) return false;
    if (f.direction && r.direction !== f.direction) return false;
    if (f.status === "none" ? r.status !== null : f.status && String(r.status || "")[0] !== f.status) return false;
    if (f.fault === "yes" && !r.fault) return false;
    if (f.fault === "no" && r.fault) return false;
    if (f.text) {
      const hay = [r.id, r.method, r.path, r.provider, r.action, r.account, r.namespace, r.status,
        r.fault, r.correlationId, r.error, r.snippet].join(" ").toLowerCase();
      if (!hay.includes(f.text)) return false;
    }
    return true;
  }

  function filters() {
    const v = (id) => $(id).value.trim();
    return {
      provider: v("f-provider"), action: v("f-action").toLowerCase(), account: v("f-account").toLowerCase(),
      namespace: v("f-namespace").toLowerCase(), direction: v("f-direction"), status: v("f-status"),
      fault: v("f-fault"), text: v("f-text").toLowerCase(),
    };
  }

  // One drawing at a time, at most every 30 ms. New rows are drawn on top and rows past the cap taken
  // off the bottom, so a batch costs its own rows, not the whole table; a filter draws it all again.
  let renderQueued = false;
  function scheduleRender(redraw) {
    if (redraw !== false) traffic.redraw = true;
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(render, 30);
  }

  function tableRow(r) {
    const tr = el("tr", { "data-id": r.id, class: (r.fault ? "faulted " : "") + (r.id === traffic.selected ? "selected" : "") });
    tr.append(
      cell(r.id), cell(clockTime(r.time)), cell(r.direction), cell(r.provider), cell(r.action),
      cell(r.account), cell(r.namespace), cell(r.status === null ? "—" : r.status, statusClass(r.status)),
      cell(r.fault), cell(r.durationMs), cell(r.method + " " + r.path, "path"),
    );
    return tr;
  }

  function render() {
    renderQueued = false;
    const f = filters();
    const tbody = $("traffic-body");
    const body = document.createDocumentFragment();
    for (const r of traffic.redraw ? traffic.rows : traffic.fresh) {
      if (matches(r, f)) body.append(tableRow(r));
    }
    if (traffic.redraw) {
      tbody.replaceChildren(body);
    } else {
      tbody.prepend(body);
      const oldest = traffic.rows.length ? traffic.rows[traffic.rows.length - 1].id : Infinity;
      while (tbody.lastElementChild && Number(tbody.lastElementChild.dataset.id) < oldest) {
        tbody.lastElementChild.remove();
      }
    }
    traffic.redraw = false;
    traffic.fresh = [];
    let text = `${tbody.childElementCount} shown of ${traffic.rows.length}`;
    if (traffic.pending.length) text += `, ${traffic.pending.length} new while paused`;
    if (traffic.capped) text += `, ${traffic.capped} older past the row cap`;
    if (traffic.dropped) text += `, ${traffic.dropped} not sent (the page was slower than the traffic)`;
    if (traffic.journal) text += ` · journal ${traffic.journal.entries}/${traffic.journal.capacity}`;
    $("counts").textContent = text;
  }

  function select(id) {
    traffic.selected = id;
    for (const tr of document.querySelectorAll("#traffic-body tr.selected")) tr.classList.remove("selected");
    const tr = document.querySelector(`#traffic-body tr[data-id="${id}"]`);
    if (tr) tr.classList.add("selected");
  }

  $("traffic-body").addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (tr) openDetail(Number(tr.dataset.id));
  });
  for (const id of filterIds) {
    $(id).addEventListener("input", () => scheduleRender(true));
    $(id).addEventListener("change", () => scheduleRender(true));
  }
  $("cap").addEventListener("change", () => {
    if (traffic.rows.length > cap()) traffic.rows.length = cap();
    scheduleRender(true);
  });

  function clearRows() {
    traffic.rows = [];
    traffic.pending = [];
    traffic.dropped = 0;
    traffic.capped = 0;
    scheduleRender(true);
  }
  $("clear-rows").addEventListener("click", clearRows);
  $("pause").addEventListener("click", () => {
    traffic.paused = !traffic.paused;
    $("pause").textContent = traffic.paused ? "Resume" : "Pause";
    $("pause").classList.toggle("active", traffic.paused);
    if (!traffic.paused && traffic.pending.length) {
      traffic.rows = traffic.pending.concat(traffic.rows).slice(0, cap());
      traffic.pending = [];
    }
    liveBadge();
    scheduleRender();
  });

  // -- the event stream (read with fetch: EventSource cannot send the token header) ----------------

  let stream = null;
  let connected = false;

  function liveBadge(text) {
    const badge = $("live");
    badge.textContent = text || (traffic.paused ? "paused" : connected ? "live" : "reconnecting");
    badge.className = "badge " + (connected && !traffic.paused ? "ok" : "warn");
  }

  function restartStream() {
    if (stream) stream.abort();
    stream = new AbortController();
    readStream(stream.signal);
  }

  async function readStream(signal) {
    try {
      const response = await fetch(`${API}/ui/events?backlog=${cap()}`, { headers: headers(), signal, cache: "no-store" });
      if (response.status === 401) {
        connected = false;
        liveBadge("token needed");
        askToken();
        return;
      }
      if (!response.ok) throw new Error("the event stream answered " + response.status);
      connected = true;
      liveBadge();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    connected = false;
    liveBadge();
    if (!signal.aborted) setTimeout(() => { if (!signal.aborted) restartStream(); }, 1000);
  }

  // Rows come as arrays in the order of the snapshot's columns (cheaper for the server to encode).
  let columns = [];
  let instance = null;
  function record(values) {
    const r = {};
    columns.forEach((name, i) => { r[name] = values[i]; });
    return r;
  }

  function dispatch(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    traffic.journal = payload.journal || traffic.journal;
    if (name === "snapshot") {
      columns = payload.columns;
      if (instance !== null && payload.instance !== instance) {
        traffic.lastId = 0;  // a restarted emulator numbers its entries from 1 again
        clearRows();
      }
      instance = payload.instance;
      take(payload.rows.map(record));
    } else if (name === "rows") {
      traffic.dropped += payload.dropped || 0;
      take(payload.rows.map(record).reverse());
    }
  }

  // -- detail of one exchange ----------------------------------------------------------------------

  function prettyBody(text, encoding) {
    if (!text) return "(empty)";
    if (encoding === "base64") return `(binary, base64) ${text}`;
    const trimmed = text.trim();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try { return JSON.stringify(JSON.parse(trimmed), null, 2); } catch (e) { return text; }
    }
    if (trimmed.startsWith("<")) return prettyXml(trimmed);
    return text;
  }

  function prettyXml(text) {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) return text;
    const out = [];
    const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    (function walk(node, depth) {
      const pad = "  ".repeat(depth);
      const attrs = Array.from(node.attributes).map((a) => ` ${a.name}="${escape(a.value)}"`).join("");
      const kids = Array.from(node.childNodes).filter((n) => n.nodeType === 1);
      const own = Array.from(node.childNodes).filter((n) => n.nodeType === 3 || n.nodeType === 4)
        .map((n) => n.nodeValue).join("").trim();
      if (!kids.length) {
        out.push(own ? `${pad}<${node.tagName}${attrs}>${escape(own)}</${node.tagName}>` : `${pad}<${node.tagName}${attrs}/>`);
        return;
      }
      out.push(`${pad}<${node.tagName}${attrs}>`);
      if (own) out.push(pad + "  " + escape(own));
      for (const kid of kids) walk(kid, depth + 1);
      out.push(`${pad}</${node.tagName}>`);
    })(doc.documentElement, 0);
    return out.join("\n");
  }

  function headerTable(pairs) {
    const table = el("table", { class: "headers" });
    for (const [k, v] of pairs) table.append(el("tr", {}, cell(k, "key"), cell(v)));
    return table;
  }

  function facts(pairs) {
    const dl = el("dl");
    for (const [k, v] of pairs) {
      if (v === null || v === undefined || v === "") continue;
      dl.append(el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v)));
    }
    return dl;
  }

  function attemptsTimeline(attempts) {
    const list = el("ol", { class: "attempts" });
    for (const a of attempts) {
      const ok = a.status !== null && a.status < 300;
      const what = a.status !== null ? `HTTP ${a.status}` : a.error || "no answer";
      list.append(el("li", { class: ok ? "ok" : "bad", title: a.error || "" },
        `#${a.number} ${a.time} ${what} ${a.durationMs} ms` + (a.fault ? ` · fault ${a.fault}` : "") +
        (a.duplicate ? " · duplicate" : "")));
    }
    return list;
  }

  async function openDetail(id) {
    select(id);
    const pane = $("detail");
    let data;
    try {
      data = await api("GET", `/ui/exchanges/${id}`);
    } catch (error) {
      pane.replaceChildren(el("p", { class: "error", text: String(error.message || error) }));
      return;
    }
    const e = data.entry;
    const sig = data.signature;
    const nodes = [
      el("h2", {}, `#${e.id} `, el("span", { class: statusClass(e.response.status), text: e.response.status === null ? "no answer" : String(e.response.status) }),
        ` ${e.provider || ""} ${e.action || ""}`),
      facts([["time", e.time], ["direction", e.direction], ["account", e.account], ["namespace", e.namespace],
        ["correlation id", e.correlationId], ["duration", e.durationMs + " ms"], ["error", e.error]]),
      el("h3", { text: "Signature" }),
      el("p", { id: "detail-signature", class: "verdict v-" + sig.verdict.replace(/ /g, "-") },
        el("strong", { text: sig.verdict }), sig.code ? ` ${sig.code}` : "", sig.reason ? ` — ${sig.reason}` : ""),
      el("h3", { text: "Fault" }),
    ];
    const fault = el("div", { id: "detail-fault" });
    if (!e.fault) {
      fault.append(el("p", { text: "No fault rule fired." }));
    } else {
      fault.append(el("p", {}, "Fault rule ", el("strong", { text: e.fault }), " fired."));
      if (data.rule) {
        const r = data.rule;
        fault.append(el("p", { text: `Why: the call matched ${compact(r.match || {})} and the schedule ${compact(r.schedule || "always")} fired; ` +
          `the action was ${compact(r.action)}. So far it matched ${r.stats.matched} calls and fired ${r.stats.fired} times.` }));
      } else {
        fault.append(el("p", { class: "hint", text: "The rule is no longer active (removed or reset)." }));
      }
    }
    nodes.push(fault);
    nodes.push(
      el("h3", { text: "Request" }),
      el("p", { class: "mono", text: `${e.request.method} ${e.request.url}` }),
      headerTable(e.request.headers),
      el("pre", { id: "detail-request-body", text: prettyBody(e.request.body, e.request.bodyEncoding) +
        (e.request.bodyTruncated ? `\n… (kept in part; ${e.request.bodySize} bytes in all)` : "") }),
      el("h3", { text: "Response" }),
      headerTable(e.response.headers),
      el("pre", { id: "detail-response-body", text: prettyBody(e.response.body, e.response.bodyEncoding) }),
    );
    const outbound = el("div", { id: "detail-outbound" });
    if (data.deliveries.length || data.related.length) {
      for (const d of data.deliveries) {
        outbound.append(el("p", {}, el("strong", { text: d.state }), ` delivery ${d.id} to ${d.url}`,
          d.refusal ? ` — ${d.refusal}` : ""), attemptsTimeline(d.attempts));
      }
      const list = el("ul");
      for (const r of data.related) {
        list.append(el("li", {}, el("a", { href: "#", "data-id": r.id, text: `#${r.id} ${r.direction} ${r.method} ${r.path} → ${r.status === null ? "no answer" : r.status}` })));
      }
      if (data.related.length) outbound.append(list);
    } else {
      outbound.append(el("p", { class: "hint", text: e.correlationId ? "Nothing else carries its correlation id." : "No correlation id: it caused no callbacks." }));
    }
    nodes.push(el("h3", { text: "Callbacks and linked exchanges" }), outbound);
    pane.replaceChildren(...nodes);
  }

  $("detail").addEventListener("click", (event) => {
    const a = event.target.closest("a[data-id]");
    if (!a) return;
    event.preventDefault();
    openDetail(Number(a.dataset.id));
  });

  // -- callbacks -----------------------------------------------------------------------------------

  async function loadCallbacks() {
    const data = await api("GET", "/callbacks?namespace=*");
    const body = document.createDocumentFragment();
    for (const d of data.deliveries.slice().reverse()) {
      body.append(el("tr", { class: "state-" + d.state, "data-id": d.id },
        cell(d.id, "mono"), cell(d.state), cell(`${d.provider} / ${d.action}`), cell(d.account), cell(d.namespace),
        cell(d.url, "path"), cell(d.correlationId, "mono"),
        el("td", {}, attemptsTimeline(d.attempts)),
        cell(d.nextAttemptAt || (d.held ? "held" : ""))));
    }
    $("callbacks-body").replaceChildren(body);
  }
  $("callbacks-refresh").addEventListener("click", () => loadCallbacks().catch(report));

  // -- faults --------------------------------------------------------------------------------------

  // What is left of a rule's schedule, from its spec and what it counted.
  function remaining(rule) {
    const s = rule.schedule || {};
    const { matched, fired } = rule.stats;
    const parts = [];
    if (s.times !== undefined) parts.push(`${Math.max(0, s.times - fired)} of ${s.times} firings left`);
    if (s.first !== undefined) parts.push(matched >= s.first ? "spent" : `the next ${s.first - matched} matching calls`);
    if (s.nth !== undefined) parts.push(matched >= s.nth ? "spent" : `fires on the ${s.nth - matched}th next matching call`);
    if (s.every !== undefined) parts.push(`next in ${s.every - (matched % s.every)} matching calls`);
    if (s.after !== undefined && matched < s.after) parts.push(`starts after ${s.after - matched} more matching calls`);
    if (s.probability !== undefined) parts.push(`p=${s.probability}`);
    if (s.window) parts.push(`window ${compact(s.window)} s after it was added`);
    return parts.join("; ") || "always";
  }

  async function loadFaults() {
    if (!$("scenario").options.length) {
      const shipped = await api("GET", "/ui/scenarios");
      for (const s of shipped.scenarios) $("scenario").append(el("option", { value: s.name, title: s.description, text: s.name }));
      describeScenario();
    }
    const data = await api("GET", "/faults?namespace=*");
    const body = document.createDocumentFragment();
    for (const r of data.rules) {
      body.append(el("tr", { "data-id": r.id },
        cell(r.id, "mono"), cell(r.name), cell(r.namespace === null ? "every" : r.namespace),
        cell(compact(r.match), "mono"), cell(compact(r.action), "mono"), cell(compact(r.schedule || "always"), "mono"),
        cell(r.stats.matched), cell(r.stats.fired), cell(remaining(r)),
        el("td", {}, el("button", { type: "button", class: "danger", "data-delete": r.id, text: "Delete" }))));
    }
    $("faults-body").replaceChildren(body);
  }

  function describeScenario() {
    const option = $("scenario").selectedOptions[0];
    $("scenario-description").textContent = option ? option.title : "";
  }
  $("scenario").addEventListener("change", describeScenario);
  $("scenario-add").addEventListener("click", async () => {
    const ns = $("scenario-namespace").value.trim() || "default";
    try {
      await api("POST", `/faults?namespace=${encodeURIComponent(ns)}`, { scenario: $("scenario").value });
      await loadFaults();
    } catch (error) { report(error); }
  });
  $("faults-body").addEventListener("click", async (event) => {
    const id = event.target.dataset && event.target.dataset.delete;
    if (!id) return;
    try {
      await api("DELETE", `/faults/${encodeURIComponent(id)}?namespace=*`);
      await loadFaults();
    } catch (error) { report(error); }
  });

  // -- provider state ------------------------------------------------------------------------------

  function stateQuery(extra) {
    const params = new URLSearchParams(extra || {});
    const ns = $("state-namespace").value.trim();
    if (ns) params.set("namespace", ns);
    const text = params.toString();
    return text ? "?" + text : "";
  }

  async function loadState() {
    const consoleData = await api("GET", "/ui/console" + stateQuery());
    const select = $("ali-account");
    const chosen = select.value;
    select.replaceChildren(...consoleData.alibaba.map((a) => el("option", { value: a.uid, text: `${a.uid} (${a.accessKeyId})` })));
    if (chosen && consoleData.alibaba.some((a) => a.uid === chosen)) select.value = chosen;
    const account = consoleData.alibaba.find((a) => a.uid === select.value);
    if (account) {
      $("cb-url").value = account.callback.url || "";
      $("cb-seed").value = account.callback.seed || "";
      const libs = await api("GET", "/alibaba/libraries" + stateQuery({ account: account.uid }));
      const body = document.createDocumentFragment();
      for (const lib of libs.libraries) {
        body.append(el("tr", {}, cell(lib.code, "mono"), cell(lib.name), cell(lib.kind), cell(lib.listType),
          cell(lib.enabled ? "yes" : "no"), cell(lib.count !== undefined ? lib.count : (lib.items || []).length)));
      }
      $("libraries-body").replaceChildren(body);
    }
    const ns = $("state-namespace").value.trim() || "*";
    const badcases = await api("GET", `/tencent/badcases?namespace=${encodeURIComponent(ns)}`);
    const body = document.createDocumentFragment();
    for (const b of badcases.badcases) {
      const confirm = b.state === "reported"
        ? el("button", { type: "button", "data-confirm": b.requestId, "data-namespace": b.namespace, text: "Confirm" })
        : null;
      body.append(el("tr", { "data-id": b.requestId, class: "state-" + b.state },
        cell(b.requestId, "mono"), cell(b.appid), cell(b.namespace), cell(b.state, "badcase-state"), cell(b.label),
        cell(b.suggestedLabel), cell(b.text || b.url), cell(clockTime(b.receivedAt)), cell(clockTime(b.confirmedAt)),
        el("td", {}, confirm)));
    }
    $("badcases-body").replaceChildren(body);
  }

  $("state-refresh").addEventListener("click", () => loadState().catch(report));
  $("ali-account").addEventListener("change", () => loadState().catch(report));
  $("badcases-body").addEventListener("click", async (event) => {
    const id = event.target.dataset && event.target.dataset.confirm;
    if (!id) return;
    const ns = event.target.dataset.namespace;
    try {
      await api("POST", `/tencent/badcases/${encodeURIComponent(id)}/confirm?namespace=${encodeURIComponent(ns)}`);
      await loadState();
    } catch (error) { report(error); }
  });
  $("cb-save").addEventListener("click", async () => {
    const url = $("cb-url").value.trim();
    const body = { account: $("ali-account").value, url: url || null };
    if ($("cb-seed").value.trim()) body.seed = $("cb-seed").value.trim();
    try {
      await api("PUT", "/alibaba/callback" + stateQuery(), body);
      await loadState();
    } catch (error) { report(error); }
  });

  // -- clock, reset, downloads ---------------------------------------------------------------------

  async function refreshClock() {
    try {
      const c = await api("GET", "/clock");
      $("clock").textContent = `${c.mode} clock ${c.iso}`;
      $("clock-advance").hidden = c.mode !== "manual";
    } catch (error) {
      $("clock").textContent = "clock ?";
    }
  }
  $("advance").addEventListener("click", async () => {
    try {
      await api("POST", "/clock", { advance: Number($("advance-seconds").value) });
      await refreshClock();
      refreshVisible();
    } catch (error) { report(error); }
  });
  $("reset").addEventListener("click", async () => {
    try {
      await api("POST", "/reset?namespace=*");
      clearRows();
      refreshVisible();
      report("Every namespace is back to the start config.");
    } catch (error) { report(error); }
  });

  // A download goes through fetch, so that it carries the token header like every other call.
  async function download(path, name) {
    try {
      const response = await fetch(API + path, { headers: headers(), cache: "no-store" });
      if (response.status === 401) { askToken(); return; }
      if (!response.ok) throw new Error(`${path} answered ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const a = el("a", { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) { report(error); }
  }
  $("download-har").addEventListener("click", () => download("/requests.har?namespace=*", "emulator.har"));
  $("download-ndjson").addEventListener("click", () => download("/requests.ndjson?namespace=*", "emulator.ndjson"));

  // -- start ---------------------------------------------------------------------------------------

  restartStream();
  refreshClock();
  setInterval(refreshClock, 5000);
  setInterval(() => { if (view === "callbacks" && !document.hidden) loadCallbacks().catch(report); }, 1000);
  document.body.dataset.ready = "true";
})();
