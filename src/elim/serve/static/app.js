// elim serve: the Live (webcam) and Upload panels. Plain JS, nothing fetched but this server.
// Every prediction is POST v1/predict: a webcam frame as raw JPEG bytes, uploads as multipart.
"use strict";

const COLOURS = ["#f59f00", "#1c7ed6", "#37b24d", "#ae3ec9", "#f03e3e", "#0ca678"];
const VALENCE = "#d9480f", AROUSAL = "#1971c2";
const TRAIL = 24;          // points of the disc's trail
const SERIES_SECONDS = 30; // span of the live time series
const SHOWN = ["source", "frame", "face", "valence", "arousal", "score", "status"];
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ shared drawing
function fmt(v) {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : (v >= 0 ? "+" : "") + v.toFixed(3);
}

function okRows(rows) {
  return rows.filter((r) => r.status === "ok" && r.valence !== null);
}

function largest(rows) {
  let best = null, area = -1;
  for (const r of okRows(rows)) {
    const a = (r.x1 - r.x0) * (r.y1 - r.y0);
    if (a > area) { best = r; area = a; }
  }
  return best;
}

function drawBoxes(ctx, rows, scale) {
  ctx.lineWidth = Math.max(2, 2 / scale);
  ctx.font = `${Math.round(15 / scale)}px system-ui, sans-serif`;
  for (const r of okRows(rows)) {
    const colour = COLOURS[(r.face ?? 0) % COLOURS.length];
    ctx.strokeStyle = colour;
    ctx.strokeRect(r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0);
    const text = `V ${fmt(r.valence)}  A ${fmt(r.arousal)}`;
    const h = 20 / scale, w = ctx.measureText(text).width + 10 / scale;
    const y = r.y0 > h ? r.y0 - h : r.y1;
    ctx.fillStyle = colour;
    ctx.fillRect(r.x0, y, w, h);
    ctx.fillStyle = "#000";
    ctx.fillText(text, r.x0 + 5 / scale, y + h - 5 / scale);
  }
}

// The valence-arousal disc (the circumplex): valence right, arousal up, both in [-1, 1].
function drawDisc(canvas, trail) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, c = w / 2, R = w / 2 - 26;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#f8f9fa";
  ctx.beginPath(); ctx.arc(c, c, R, 0, 2 * Math.PI); ctx.fill();
  ctx.strokeStyle = "#adb5bd"; ctx.lineWidth = 1;
  ctx.stroke();
  ctx.beginPath(); ctx.arc(c, c, R / 2, 0, 2 * Math.PI); ctx.setLineDash([3, 4]); ctx.stroke();
  ctx.setLineDash([]);
  ctx.beginPath(); ctx.moveTo(c - R, c); ctx.lineTo(c + R, c); ctx.moveTo(c, c - R); ctx.lineTo(c, c + R);
  ctx.stroke();
  ctx.fillStyle = "#667085"; ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center";
  ctx.fillText("arousal +", c, 14); ctx.fillText("arousal −", c, h - 4);
  ctx.textAlign = "left"; ctx.fillText("valence +", c + R - 40, c - 6);
  ctx.textAlign = "right"; ctx.fillText("valence −", c - R + 46, c - 6);
  ctx.textAlign = "left";
  const at = (p) => [c + R * Math.max(-1, Math.min(1, p.v)), c - R * Math.max(-1, Math.min(1, p.a))];
  trail.forEach((p, i) => {
    const [x, y] = at(p), last = i === trail.length - 1;
    ctx.globalAlpha = last ? 1 : 0.15 + 0.6 * (i / trail.length);
    ctx.fillStyle = last ? "#212529" : "#495057";
    ctx.beginPath(); ctx.arc(x, y, last ? 7 : 3, 0, 2 * Math.PI); ctx.fill();
    if (i > 0) {
      const [px, py] = at(trail[i - 1]);
      ctx.strokeStyle = "#868e96"; ctx.beginPath(); ctx.moveTo(px, py); ctx.lineTo(x, y); ctx.stroke();
    }
  });
  ctx.globalAlpha = 1;
  canvas.dataset.points = String(trail.length);
}

// A round step (1, 2 or 5 × 10^k) near `raw`.
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

// V and A over time: points [{t, v, a}] (t in seconds) between tMin and tMax.
function drawSeries(canvas, points, tMin, tMax, xLabel) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 44, right = 90, top = 10, bottom = 24;
  const X = (t) => left + ((t - tMin) / Math.max(tMax - tMin, 1e-9)) * (w - left - right);
  const Y = (v) => top + (1 - (Math.max(-1, Math.min(1, v)) + 1) / 2) * (h - top - bottom);
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#dee2e6"; ctx.fillStyle = "#667085"; ctx.font = "11px system-ui, sans-serif";
  for (const v of [-1, -0.5, 0, 0.5, 1]) {
    ctx.beginPath(); ctx.moveTo(left, Y(v)); ctx.lineTo(w - right, Y(v)); ctx.stroke();
    ctx.fillText(v.toFixed(1), 6, Y(v) + 4);
  }
  const step = niceStep((tMax - tMin) / 6);
  ctx.textAlign = "center";
  for (let t = Math.ceil(tMin / step) * step; t <= tMax + 1e-9; t += step) {
    ctx.fillText(String(Math.round(t * 100) / 100), X(t), h - 8);
  }
  ctx.textAlign = "left";
  ctx.fillText(xLabel, w - right + 12, h - 8);
  for (const [key, colour, label] of [["v", VALENCE, "valence"], ["a", AROUSAL, "arousal"]]) {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    for (const p of points) {
      if (p[key] === null || p[key] === undefined) { started = false; continue; }
      const x = X(p.t), y = Y(p[key]);
      if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      started = true;
    }
    ctx.stroke();
    ctx.fillStyle = colour;
    ctx.fillRect(w - right + 12, key === "v" ? 20 : 40, 12, 3);
    ctx.fillText(label, w - right + 30, key === "v" ? 25 : 45);
  }
  ctx.lineWidth = 1;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || response.statusText;
  } catch (e) {
    return response.statusText || String(response.status);
  }
}

// ------------------------------------------------------------------ the table as CSV
// The columns and values of the JSON rows, written like pandas' DataFrame.to_csv(index=False)
// (what `elim predict -o out.csv` writes): empty cells for nulls, quotes where needed.
function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function toCsv(rows) {
  if (!rows.length) return "";
  const columns = Object.keys(rows[0]);
  const lines = [columns.map(csvCell).join(",")];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(","));
  return lines.join("\n") + "\n";
}

// ------------------------------------------------------------------ Live
const live = { stream: null, timer: null, busy: false, frames: 0, start: 0, trail: [], series: [] };

async function liveStart() {
  const status = $("live-status");
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false,
    });
  } catch (err) {
    status.textContent = `no camera: ${err.message || err.name}`;
    status.classList.add("error");
    return;
  }
  const video = $("live-video");
  video.srcObject = live.stream;
  await video.play();
  $("live-placeholder").hidden = true;
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  status.classList.remove("error");
  status.textContent = "camera on";
  Object.assign(live, { frames: 0, start: performance.now(), trail: [], series: [] });
  liveSchedule();
}

function liveSchedule() {
  clearInterval(live.timer);
  if (live.stream) live.timer = setInterval(liveTick, 1000 / Number($("live-rate").value));
}

function liveStop() {
  clearInterval(live.timer);
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  live.stream = null;
  $("live-video").srcObject = null;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
  $("live-status").textContent = "camera off";
}

// One frame at a time: a tick while a request is in flight is skipped, so a slow server
// lowers the rate instead of building a backlog.
async function liveTick() {
  const video = $("live-video");
  if (live.busy || !video.videoWidth) return;
  live.busy = true;
  try {
    const scale = Math.min(1, 640 / video.videoWidth);
    const grab = document.createElement("canvas");
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const blob = await new Promise((ok) => grab.toBlob(ok, "image/jpeg", 0.85));
    const sent = performance.now();
    const response = await fetch("v1/predict?name=webcam", {
      method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" },
    });
    if (!response.ok) {
      $("live-status").textContent = `server: ${await errorText(response)}`;
      return;
    }
    const rows = await response.json();
    liveShow(rows, scale, (performance.now() - live.start) / 1000, performance.now() - sent);
  } catch (err) {
    $("live-status").textContent = `error: ${err.message || err}`;
  } finally {
    live.busy = false;
  }
}

function liveShow(rows, scale, t, ms) {
  const video = $("live-video"), overlay = $("live-overlay");
  overlay.width = video.videoWidth;
  overlay.height = video.videoHeight;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  ctx.save();
  ctx.scale(1 / scale, 1 / scale);
  drawBoxes(ctx, rows, 1 / scale);
  ctx.restore();
  const face = largest(rows);
  live.frames += 1;
  for (const [key, id] of [["valence", "live-valence"], ["arousal", "live-arousal"]]) {
    $(id).textContent = fmt(face ? face[key] : null);
    $(id).dataset.value = face ? String(face[key]) : "";  // full precision, for scripts
  }
  if (face) {
    live.trail.push({ v: face.valence, a: face.arousal });
    live.trail = live.trail.slice(-TRAIL);
  }
  live.series.push({ t, v: face ? face.valence : null, a: face ? face.arousal : null });
  live.series = live.series.filter((p) => p.t >= t - SERIES_SECONDS);
  drawDisc($("live-disc"), live.trail);
  drawSeries($("live-series"), live.series, Math.max(0, t - SERIES_SECONDS), Math.max(t, SERIES_SECONDS), "seconds");
  const status = $("live-status");
  status.dataset.frames = String(live.frames);
  status.textContent = `${live.frames} frames · ${okRows(rows).length} face(s) · ${Math.round(ms)} ms`;
}

// ------------------------------------------------------------------ Upload
function uniqueNames(files) {
  const seen = new Map();
  return files.map((f) => {
    const n = (seen.get(f.name) || 0) + 1;
    seen.set(f.name, n);
    return n === 1 ? f.name : f.name.replace(/(\.[^.]*)?$/, ` (${n})$1`);
  });
}

async function uploadSubmit(event) {
  event.preventDefault();
  const files = Array.from($("upload-files").files);
  const status = $("upload-status"), link = $("upload-csv");
  status.classList.remove("error");
  if (!files.length) { status.textContent = "choose photos or a video first"; return; }
  const names = uniqueNames(files);
  const form = new FormData();
  files.forEach((f, i) => form.append("file", f, names[i]));
  status.textContent = "predicting…";
  $("upload-submit").disabled = true;
  link.hidden = true;
  try {
    const every = Math.max(1, Number($("upload-every").value) || 1);
    const response = await fetch(`v1/predict?every=${every}`, { method: "POST", body: form });
    if (!response.ok) {
      status.textContent = `error ${response.status}: ${await errorText(response)}`;
      status.classList.add("error");
      return;
    }
    const rows = await response.json();
    await uploadShow(files, names, rows);
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([toCsv(rows)], { type: "text/csv" }));
    link.hidden = false;
    status.textContent = `${files.length} file(s): ${rows.length} row(s), ${okRows(rows).length} face(s)`;
  } catch (err) {
    status.textContent = `error: ${err.message || err}`;
    status.classList.add("error");
  } finally {
    $("upload-submit").disabled = false;
  }
}

async function uploadShow(files, names, rows) {
  const results = $("upload-results");
  results.replaceChildren();
  for (let i = 0; i < files.length; i++) {
    const mine = rows.filter((r) => r.source === names[i]);
    const box = document.createElement("div");
    box.className = "result";
    const title = document.createElement("h3");
    title.textContent = names[i];
    box.append(title);
    const canvas = document.createElement("canvas");
    box.append(canvas);
    results.append(box);
    if (mine.some((r) => r.frame !== null)) {
      canvas.className = "video-chart";
      canvas.width = 720; canvas.height = 220;
      const face = (r) => r.face ?? 0;
      const first = okRows(mine).map(face)[0] ?? 0;   // the first face track
      const points = mine.filter((r) => r.status !== "ok" || face(r) === first)
        .map((r) => ({ t: r.timestamp, v: r.valence, a: r.arousal }));
      const ts = points.map((p) => p.t);
      drawSeries(canvas, points, Math.min(...ts), Math.max(...ts), "seconds");
    } else {
      canvas.className = "annotated";
      const bitmap = await createImageBitmap(files[i]);
      canvas.width = bitmap.width; canvas.height = bitmap.height;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(bitmap, 0, 0);
      drawBoxes(ctx, mine, Math.min(1, 560 / bitmap.width));
    }
  }
  const table = $("upload-table");
  const head = document.createElement("tr");
  for (const c of SHOWN) { const th = document.createElement("th"); th.textContent = c; head.append(th); }
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    for (const c of SHOWN) {
      const td = document.createElement("td");
      const v = r[c];
      td.textContent = c === "valence" || c === "arousal" ? fmt(v)
        : typeof v === "number" && c === "score" ? v.toFixed(3) : v === null ? "–" : String(v);
      if (c === "status") td.className = "status-cell";
      tr.append(td);
    }
    return tr;
  }));
  table.hidden = false;
}

// ------------------------------------------------------------------ page
function showPanel(name) {
  for (const tab of document.querySelectorAll("button.tab")) {
    tab.classList.toggle("active", tab.dataset.panel === name);
    $(tab.dataset.panel).hidden = tab.dataset.panel !== name;
  }
}

async function loadModel() {
  try {
    const response = await fetch("v1/model");
    const m = await response.json();
    $("model-info").textContent =
      `${m.run || "model"} · ${m.backbone} · ${m.method || "?"} · ${m.preprocess.image_size} px · detector ${m.detector}`;
  } catch (err) {
    $("model-info").textContent = "model info unavailable";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll("button.tab")) {
    tab.addEventListener("click", () => showPanel(tab.dataset.panel));
  }
  $("live-start").addEventListener("click", liveStart);
  $("live-stop").addEventListener("click", liveStop);
  $("live-rate").addEventListener("change", liveSchedule);
  $("upload-form").addEventListener("submit", uploadSubmit);
  drawDisc($("live-disc"), []);
  drawSeries($("live-series"), [], 0, SERIES_SECONDS, "seconds");
  loadModel();
});
