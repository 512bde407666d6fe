// The edge-serve page: live camera with the current answer, a history, and an upload box.
// Plain JavaScript, no build step, no third-party code: served from the package.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY_MAX = 50;
let lastLive = null;      // {label, li, count} of the newest camera entry in the history
let streaming = false;

// --- token: from "#token=..." in the address (never sent to the server), else asked for
function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("edge-token", decodeURIComponent(m[1])); }
  return sessionStorage.getItem("edge-token") || "";
}
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }
function withToken(url) { return token() ? url + "?token=" + encodeURIComponent(token()) : url; }

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  let body = null;
  try { body = await res.json(); } catch (e) { body = { error: res.statusText }; }
  if (res.status === 401) { askToken(body.error); }
  if (!res.ok) { throw new Error(body.error || ("HTTP " + res.status)); }
  return body;
}

function askToken(why) {
  $("token-form").hidden = false;
  $("model").textContent = "locked: " + why;
}

// --- model and camera status
async function start() {
  let info;
  try { info = await api("/api/info"); } catch (e) { return; }
  $("model").textContent = `${info.model} · ${info.artifact.file} on ${info.runtime} · ` +
    `${info.classes.length} classes`;
  showCamera(info.camera);
  listen();
}

function showCamera(cam) {
  const text = {
    off: "no camera (start edge-serve with --camera): this page still classifies photos you upload",
    starting: "camera starting…", running: `camera: ${cam.source}`,
    ended: "camera ended", lost: "camera lost (retrying)", failed: "camera failed",
  }[cam.state] || cam.state;
  const why = cam.state !== "off" && cam.message ? ` — ${cam.message}` : "";
  $("camera-status").textContent = text + why;
  $("camera-status").dataset.state = cam.state;
  $("camera-status").classList.toggle("error", ["ended", "lost", "failed"].includes(cam.state));
  const noCam = $("no-camera");
  if (cam.state === "running") {
    noCam.hidden = true;
    if (!streaming) {
      streaming = true;
      $("live").src = withToken("/api/stream");
      $("live").hidden = false;
      $("overlay").hidden = false;
    }
    return;
  }
  streaming = false;
  // Keep the last frame on screen if there was one; otherwise say why there is none.
  noCam.textContent = cam.state === "off" ? "No camera" : text;
  noCam.hidden = !$("live").hidden;
}

function listen() {
  const events = new EventSource(withToken("/api/events"));
  events.addEventListener("status", (e) => showCamera(JSON.parse(e.data)));
  events.addEventListener("answer", (e) => showLive(JSON.parse(e.data)));
}

// --- live answers
// What to say for an answer: its "answer" field when the runner gives one (a class,
// "unsure" or "no garment found"), else the top class; and the top class's probability.
function headline(a) {
  const top = a.top_k[0];
  return { label: a.answer || (top ? top.class : "no garment found"), p: top ? top.probability : 0 };
}

function showLive(a) {
  const { label, p } = headline(a);
  $("answer").textContent = label;
  $("answer").dataset.frame = a.path;  // which frame this answer is for
  $("confidence").textContent = pct(p);
  $("confidence-bar").style.width = pct(p);
  if (lastLive && lastLive.label === label) {
    lastLive.count += 1;
    lastLive.li.querySelector(".src").textContent = `camera ×${lastLive.count}`;
  } else {
    const li = addHistory(label, p, "camera");
    lastLive = { label, li, count: 1 };
  }
}

function addHistory(label, p, source) {
  const li = document.createElement("li");
  li.dataset.source = source;
  const what = document.createElement("span");
  what.className = "label";
  what.textContent = `${label} (${pct(p)})`;
  const src = document.createElement("span");
  src.className = "src";
  src.textContent = `${source} · ${new Date().toLocaleTimeString()}`;
  li.append(what, src);
  const list = $("history");
  list.prepend(li);
  while (list.children.length > HISTORY_MAX) { list.lastChild.remove(); }
  if (source !== "camera") { lastLive = null; }
  return li;
}

// --- uploads
async function classify(file) {
  $("upload-error").hidden = true;
  const form = new FormData();
  form.append("image", file, file.name || "photo");
  try {
    const a = await api("/api/classify?top_k=3", { method: "POST", body: form });
    showUpload(a, file);
  } catch (e) {
    $("upload-result").hidden = true;
    $("upload-error").textContent = e.message;
    $("upload-error").hidden = false;
  }
}

function showUpload(a, file) {
  const preview = $("upload-preview");
  if (preview.src) { URL.revokeObjectURL(preview.src); }
  preview.src = URL.createObjectURL(file);
  const list = $("upload-top");
  list.replaceChildren(...a.top_k.map((t) => {
    const li = document.createElement("li");
    li.textContent = `${t.class} ${pct(t.probability)}`;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "p";
    fill.style.width = pct(t.probability);
    bar.append(fill);
    li.append(bar);
    return li;
  }));
  const t = a.timings_ms;
  $("upload-timings").textContent = `${a.path}: decode ${t.decode.toFixed(1)} ms, ` +
    `preprocess ${t.preprocess.toFixed(1)} ms, model ${t.inference.toFixed(2)} ms`;
  $("upload-result").hidden = false;
  const { label, p } = headline(a);
  addHistory(label, p, "upload");
}

function pct(p) { return (100 * p).toFixed(0) + "%"; }

function wire() {
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) classify(e.target.files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]);
  });
  $("live").addEventListener("error", () => { streaming = false; });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("edge-token", $("token").value);
    location.hash = "";
    location.reload();
  });
  start();
}

document.addEventListener("DOMContentLoaded", wire);
