// The glyphgate demo page: talks to the same server's JSON/PNG APIs, nothing from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
let calibration = null;
let token = sessionStorage.getItem("glyphgate-token") || "";

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function banner(message) {
  const b = $("banner");
  b.textContent = message;
  b.hidden = !message;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (Array.isArray(body)) return body.map((x) => x.error || JSON.stringify(x)).join("; ");
    return body.error || body.detail || JSON.stringify(body);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function api(path, options) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (response.status === 401) {
    $("token-box").hidden = false;
    throw new Error("This server needs an API token: enter it above, then try again.");
  }
  if (response.status === 413) throw new Error(`Too large: ${await errorText(response)}`);
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

async function loadCalibration() {
  const r = await fetch("calibration");
  calibration = await r.json();
  $("model-line").textContent =
    `Model: ${calibration.classes.length} classes, ` +
    (calibration.accuracy === null ? "calibrated on unlabelled glyphs; "
                                   : `accuracy ${(100 * calibration.accuracy).toFixed(1)}% on held-out glyphs; `) +
    `a scan is flagged when its energy is above ${calibration.threshold.toFixed(3)} ` +
    `(keeps ${(100 * calibration.measured_tpr).toFixed(1)}% of the ${calibration.population} glyphs it was fitted on).`;
  const select = $("gen-label");
  for (const c of calibration.classes) {
    const o = document.createElement("option");
    o.value = c;
    o.textContent = c;
    select.appendChild(o);
  }
}

// Energy histogram of ID glyphs vs OOD kinds from calibration, the threshold, and this scan.
function drawHistogram(canvas, energy) {
  const h = calibration.histogram;
  const dpr = window.devicePixelRatio || 1;
  const W = 320, H = 124;  // CSS pixels; the canvas is scaled for the screen's density
  canvas.width = W * dpr;
  canvas.height = H * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const lo = h.edges[0], hi = h.edges[h.edges.length - 1];
  const x = (e) => 4 + ((Math.min(Math.max(e, lo), hi) - lo) / (hi - lo)) * (W - 8);
  const series = [["id", "rgba(46,107,58,0.55)"], ["near", "rgba(214,137,16,0.5)"], ["far", "rgba(179,38,30,0.45)"]];
  const top = Math.max(...series.flatMap(([k]) => h[k] || [0]));
  for (const [k, colour] of series) {
    if (!h[k]) continue;
    g.fillStyle = colour;
    h[k].forEach((v, i) => {
      const x0 = x(h.edges[i]), x1 = x(h.edges[i + 1]);
      const bh = (v / top) * (H - 44);
      g.fillRect(x0, H - 32 - bh, Math.max(1, x1 - x0 - 0.5), bh);
    });
  }
  g.strokeStyle = "#000"; g.setLineDash([4, 3]); g.beginPath();
  g.moveTo(x(calibration.threshold), 8); g.lineTo(x(calibration.threshold), H - 32); g.stroke();
  g.setLineDash([]); g.strokeStyle = "#1d4f91"; g.lineWidth = 3; g.beginPath();
  g.moveTo(x(energy), 4); g.lineTo(x(energy), H - 32); g.stroke();
  g.fillStyle = "#231a12"; g.font = "11px sans-serif";
  // two lines: the canvas is 320 px wide, and one line was cut off after "red far-OOD"
  g.fillText("energy →   green glyphs · orange near-OOD · red far-OOD", 4, H - 18);
  g.fillText("dashed line: threshold · blue line: this scan", 4, H - 4);
}

function card(file) {
  const el = document.createElement("div");
  el.className = "card";
  el.innerHTML = `<img class="seen" alt="as the model sees it"><div class="info"><div class="verdict">checking ${escapeHtml(file.name)}…</div></div><canvas class="hist"></canvas>`;
  $("results").prepend(el);
  return el;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function check(file) {
  const el = card(file);
  const form = () => { const f = new FormData(); f.append("image", file, file.name); return f; };
  try {
    const [res, seen] = await Promise.all([
      api("/classify", { method: "POST", body: form() }).then((r) => r.json()),
      api("/preview", { method: "POST", body: form() }).then((r) => r.blob()),
    ]);
    el.querySelector("img.seen").src = URL.createObjectURL(seen);
    el.classList.toggle("flagged", res.is_ood);
    el.dataset.verdict = res.is_ood ? "flagged" : "glyph";
    const top = res.top_k.map((t) => `<li>${escapeHtml(t.label)} ${(100 * t.p).toFixed(1).padStart(5)}%<span class="bar" style="width:${Math.round(100 * t.p)}px"></span></li>`).join("");
    el.querySelector(".info").innerHTML =
      `<div class="verdict">${res.is_ood ? "Not a glyph — flagged" : `Glyph: “${escapeHtml(res.label)}”`}</div>` +
      `<div class="muted">${escapeHtml(file.name)} · energy ${res.energy.toFixed(3)} (threshold ${res.threshold.toFixed(3)})</div>` +
      `<ul class="topk">${top}</ul>`;
    drawHistogram(el.querySelector("canvas"), res.energy);
  } catch (e) {
    el.className = "card error";
    el.dataset.verdict = "error";
    // server messages already start with the file name
    const message = e.message.startsWith(`${file.name}:`) ? e.message : `${file.name}: ${e.message}`;
    el.innerHTML = `<div class="verdict">Could not check ${escapeHtml(message)}</div>`;
  }
}

async function checkAll(files) {
  banner("");
  for (const f of files) await check(f);
}

async function generate(event) {
  event.preventDefault();
  const body = { n: Number($("gen-n").value), steps: Number($("gen-steps").value), seed: Number($("gen-seed").value) };
  if ($("gen-label").value) body.label = $("gen-label").value;
  const status = $("gen-status");
  $("gen-go").disabled = true;
  status.className = "busy";
  status.textContent = `running ${body.steps} SGLD steps on ${body.n} chains…`;
  const started = performance.now();
  try {
    const json = { method: "POST", headers: { "Content-Type": "application/json" } };
    const grid = await api("/generate", { ...json, body: JSON.stringify(body) }).then((r) => r.blob());
    $("gen-grid").src = URL.createObjectURL(grid);
    $("gen-grid").hidden = false;
    $("gen-grid-cap").textContent = `${body.n} samples of ${body.label || "any class"}, ${body.steps} steps, seed ${body.seed}`;
    status.textContent = "drawing one chain…";
    const chain = await api("/generate_chain", { ...json, body: JSON.stringify({ ...body, n: 1 }) }).then((r) => r.blob());
    $("gen-chain").src = URL.createObjectURL(chain);
    $("gen-chain").hidden = false;
    $("gen-chain-cap").textContent = `One chain at 9 evenly spaced steps from 0 to ${body.steps}: the start point turning into a glyph.`;
    status.className = "muted";
    status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (e) {
    status.className = "muted";
    status.textContent = "";
    banner(`Generation failed: ${e.message}`);
  } finally {
    $("gen-go").disabled = false;
  }
}

function wire() {
  const drop = $("drop");
  $("files").addEventListener("change", (e) => {
    const files = [...e.target.files];
    e.target.value = ""; // so choosing the same file again checks it again
    checkAll(files);
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); checkAll([...e.dataTransfer.files]); });
  $("gen-form").addEventListener("submit", generate);
  $("token-save").addEventListener("click", () => {
    token = $("token").value.trim();
    sessionStorage.setItem("glyphgate-token", token);
    $("token-box").hidden = true;
    banner("");
  });
}

wire();
loadCalibration().catch((e) => banner(`Could not load the model's calibration: ${e.message}`));
