// The status page: fetches /api/v1/status, fills the page, and repeats every few seconds
// without reloading. An API key, when the server asks for one, lives in sessionStorage only.
"use strict";

const KEY_STORE = "abuseipdb-ioc.api-key";
const SVG_NS = "http://www.w3.org/2000/svg";
const numbers = new Intl.NumberFormat("en-US");

const state = { timer: null, lastOk: null, everLoaded: false };

// `#refresh=2` shortens the period (the browser test uses it); a fragment never reaches the
// server, so every visitor gets the same cached page.
function refreshSeconds() {
  const asked = Number(new URLSearchParams(location.hash.slice(1)).get("refresh"));
  return asked >= 1 ? asked : 15;
}

// === fetching ===

async function fetchStatus() {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers["X-API-Key"] = key;
  const response = await fetch("/api/v1/status", { headers, cache: "no-store" });
  if (response.status === 401) return { unauthorized: true, hadKey: Boolean(key) };
  if (!response.ok) throw new Error("the server answered " + response.status);
  return { report: await response.json() };
}

async function tick() {
  clearTimeout(state.timer);
  try {
    const result = await fetchStatus();
    if (result.unauthorized) {
      askForKey(result.hadKey);
      return;
    }
    state.lastOk = new Date();
    render(result.report);
  } catch (err) {
    showOffline(err);
  }
  state.timer = setTimeout(tick, refreshSeconds() * 1000);
}

// === the API key ===

function askForKey(refused) {
  document.getElementById("content").hidden = !state.everLoaded;
  document.getElementById("auth").hidden = false;
  document.getElementById("auth-error").hidden = !refused;
  setOverall("locked", "API key needed");
}

function onKeySubmit(event) {
  event.preventDefault();
  const input = document.getElementById("auth-key");
  sessionStorage.setItem(KEY_STORE, input.value.trim());
  input.value = "";
  document.getElementById("auth").hidden = true;
  tick();
}

// === banners ===

function setBanner(kind, text) {
  const banner = document.getElementById("banner");
  banner.hidden = !kind;
  banner.className = "banner " + (kind || "");
  banner.dataset.kind = kind || "";
  banner.textContent = text || "";
}

function showOffline(err) {
  const since = state.lastOk ? " Last data from " + state.lastOk.toLocaleTimeString() + "." : "";
  setBanner("offline", "The server cannot be reached (" + err.message + ")." + since +
    " Retrying every " + refreshSeconds() + " s.");
  setOverall("offline", "unreachable");
}

function snapshotBanner(snapshot) {
  if (!snapshot.built_at) {
    setBanner("stale", "No snapshot has been published yet; the first cycle is still running.");
  } else if (snapshot.stale) {
    setBanner("stale", "The data is stale: the snapshot is " + duration(snapshot.age_seconds) +
      " old, older than the " + duration(snapshot.ttl_seconds) + " limit. A refresh has been started.");
  } else {
    setBanner(null, "");
  }
}

// === rendering ===

function render(report) {
  state.everLoaded = true;
  document.getElementById("auth").hidden = true;
  document.getElementById("content").hidden = false;
  setOverall(report.health.status, report.health.status);
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  snapshotBanner(report.snapshot);
  fillFields(flatten(report));
  renderHealth(report.health);
  renderBudget(report.abuseipdb);
  renderAgeBar(report.snapshot);
  renderHistogram(report.histogram);
  renderCountries(report.countries);
  renderCycles(report.cycles);
  renderPoints(report.map.points);
  document.getElementById("map-truncated").hidden = !report.map.truncated;
}

function setOverall(status, text) {
  const pill = document.getElementById("overall");
  pill.dataset.status = status;
  pill.textContent = text;
}

// The values shown in `data-field` elements, by field name.
function flatten(r) {
  const a = r.abuseipdb;
  return {
    "snapshot.age": r.snapshot.age_seconds == null ? "none yet" : duration(r.snapshot.age_seconds),
    "snapshot.ttl": duration(r.snapshot.ttl_seconds),
    "snapshot.built_at": r.snapshot.built_at ? when(r.snapshot.built_at) : "never",
    "health.snapshot.generation": count(r.health.snapshot.generation),
    "health.version": "version " + r.health.version,
    "counts.all": count(r.counts.all),
    "counts.high": count(r.counts.high),
    "counts.local": count(r.counts.local),
    "counts.abuseipdb": count(r.counts.abuseipdb),
    "counts.both": count(r.counts.both),
    "counts.revoked": count(r.counts.revoked),
    "counts.excluded": count(r.counts.excluded),
    "abuseipdb.blacklist": usedOf(a.blacklist_used, a.blacklist_limit),
    "abuseipdb.check": usedOf(a.check_used, a.check_limit),
    "abuseipdb.next_reset": a.next_reset ? when(a.next_reset) : "–",
    "geo.share": r.geo.share == null ? "–" : (r.geo.share * 100).toFixed(1) + " %",
    "geo.geolocated": count(r.geo.geolocated),
    "geo.public": count(r.geo.public),
    "map.located": count(r.map.located),
    "map.cells": count(r.map.points.length),
    "taxii.elastic": r.taxii.elastic,
    "taxii.elastic_high_confidence": r.taxii.elastic_high_confidence,
    "taxii.opencti": r.taxii.opencti,
  };
}

function fillFields(values) {
  for (const el of document.querySelectorAll("[data-field]")) {
    const value = values[el.dataset.field];
    if (value !== undefined && el.textContent !== value) el.textContent = value;
  }
}

function renderHealth(health) {
  replaceChildren("reasons", health.reasons.map((reason) => element("li", {}, reason)));
  const rows = Object.entries(health.components).map(([name, c]) =>
    element("tr", {}, [
      element("th", {}, name),
      element("td", {}, [element("span", { class: "pill", "data-status": c.status }, c.status)]),
      element("td", { class: "detail" }, c.detail),
    ]));
  replaceChildren("components", rows);
}

function renderBudget(budget) {
  const localOnly = budget.mode === "local-only";
  document.getElementById("local-only").hidden = !localOnly;
  document.getElementById("budget").hidden = localOnly;
}

function renderAgeBar(snapshot) {
  const bar = document.getElementById("age-bar");
  const share = snapshot.age_seconds == null ? 0 : snapshot.age_seconds / snapshot.ttl_seconds;
  bar.style.width = Math.min(100, share * 100).toFixed(1) + "%";
  bar.className = snapshot.stale ? "over" : "";
}

function renderHistogram(histogram) {
  const top = Math.max(1, ...histogram);
  const bars = histogram.map((n, i) => {
    const bar = element("div", { class: "bar", title: decile(i) + ": " + count(n) }, []);
    bar.style.height = ((n / top) * 100).toFixed(1) + "%";
    return element("div", { class: "column", "data-count": String(n) }, [
      element("span", { class: "n" }, count(n)),
      element("div", { class: "track" }, [bar]),
      element("span", { class: "label" }, String(i * 10)),
    ]);
  });
  replaceChildren("histogram", bars);
}

function renderCountries(countries) {
  const rows = countries.map(([code, n]) =>
    element("tr", {}, [element("th", {}, code), element("td", { class: "num" }, count(n))]));
  if (rows.length === 0) rows.push(element("tr", {}, [element("td", { class: "muted" }, "none yet")]));
  replaceChildren("countries", rows);
}

function renderCycles(cycles) {
  const rows = cycles.map((c) => element("tr", { class: c.error ? "failed" : "" }, [
    element("td", {}, c.started_at ? when(c.started_at) : "–"),
    element("td", {}, c.trigger),
    element("td", { class: "num" }, (c.duration_ms / 1000).toFixed(1) + " s"),
    element("td", { class: "num" }, count(c.rows_read)),
    element("td", { class: "num" }, count(c.indicators)),
    element("td", { class: "num" }, count(c.published.new)),
    element("td", { class: "num" }, count(c.published.changed)),
    element("td", { class: "num" }, count(c.published.revoked)),
    element("td", { class: c.error ? "error" : "ok" }, c.error || "published"),
  ]));
  replaceChildren("cycles", rows);
}

// === the map ===

function drawGraticule() {
  const lines = [];
  for (let lon = -150; lon <= 150; lon += 30) lines.push(svg("line", { x1: lon, y1: -90, x2: lon, y2: 90 }));
  for (let lat = -60; lat <= 60; lat += 30) lines.push(svg("line", { x1: -180, y1: -lat, x2: 180, y2: -lat }));
  replaceChildren("graticule", lines);
}

async function loadOutline() {
  try {
    const text = await (await fetch("/assets/world.svg")).text();
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const land = doc.getElementById("land");
    if (land) document.getElementById("land").setAttribute("d", land.getAttribute("d"));
  } catch (err) {
    console.warn("world outline not loaded", err);
  }
}

function renderPoints(points) {
  const top = Math.max(1, ...points.map((p) => p[2]));
  const circles = points.map(([lon, lat, n]) => {
    const circle = svg("circle", {
      cx: lon, cy: -lat, r: (0.9 + 3.2 * Math.sqrt(n / top)).toFixed(2), "data-count": n,
    });
    circle.appendChild(svg("title", {}, lat.toFixed(1) + ", " + lon.toFixed(1) + ": " + count(n)));
    return circle;
  });
  replaceChildren("points", circles);
}

// === helpers ===

function element(tag, attrs, children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) if (value) el.setAttribute(name, value);
  appendAll(el, children);
  return el;
}

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text) el.textContent = text;
  return el;
}

function appendAll(el, children) {
  if (typeof children === "string") el.textContent = children;
  else for (const child of children || []) el.appendChild(child);
}

function replaceChildren(id, children) {
  document.getElementById(id).replaceChildren(...children);
}

function count(n) {
  return n == null ? "–" : numbers.format(n);
}

function usedOf(used, limit) {
  return used == null ? "–" : count(used) + " / " + count(limit);
}

function decile(i) {
  return i === 9 ? "90–100" : i * 10 + "–" + (i * 10 + 9);
}

function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 120) return seconds + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function when(text) {
  const at = new Date(text);
  return isNaN(at) ? text : at.toLocaleString();
}

function onCopy(event) {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const code = button.parentElement.querySelector("code");
  navigator.clipboard?.writeText(code.textContent).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("auth").addEventListener("submit", onKeySubmit);
  document.addEventListener("click", onCopy);
  drawGraticule();
  loadOutline();
  tick();
});
