// BuscaEscenas search page: search (text, image, both), results, playback,
// per-video timeline bands and the semantic map. Plain JavaScript talking to
// the component's JSON API; no framework, nothing fetched from elsewhere.
"use strict";

// The component refuses bodies over 12 MiB; base64 adds a third.
const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
// What the component decodes; anything else this browser can show (AVIF,
// HEIC on Safari) is redrawn and sent as PNG.
const SERVER_IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];

const $ = (id) => document.getElementById(id);
const state = {
  collection: "",
  image: null,            // {base64, name}
  positive: new Set(),
  negative: new Set(),
  lastRequest: null,
  timelines: new Map(),   // video_id → timeline JSON, per collection
};

// ---------- helpers ----------
function timecode(ms) {
  const t = Math.max(0, Math.round(ms));
  const h = Math.floor(t / 3600000), m = Math.floor(t / 60000) % 60, s = Math.floor(t / 1000) % 60;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(t % 1000, 3)}`;
}
function parseTimecode(text) {
  const parts = text.trim().split(":");
  if (!text.trim() || parts.length > 3) return null;
  let total = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!Number.isFinite(v) || v < 0) return null;
    total = total * 60 + v;
  }
  return Math.round(total * 1000);
}
function classColour(id) {
  return `hsl(${(id * 137.508) % 360}, 62%, 52%)`;
}
function keyframeUrl(shot) {
  return `/api/keyframes/${encodeURIComponent(state.collection)}/${shot.shot_id}.jpg`;
}
function mediaUrl(videoId) {
  return `/media/${encodeURIComponent(state.collection)}/${encodeURIComponent(videoId)}`;
}
function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Error("No se pudo contactar con el servidor. ¿Está en marcha?");
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : text || response.statusText;
    const plain = {
      400: "La consulta no es válida",
      404: "No encontrado",
      413: "La imagen es demasiado grande",
      422: "La imagen no se puede usar",
      503: "El servicio no está disponible ahora",
    }[response.status] || `Error ${response.status}`;
    throw new Error(`${plain}: ${message}`);
  }
  return body;
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// ---------- collections ----------
async function loadCollections() {
  const body = await api("/api/collections");
  const list = Array.isArray(body) ? body : body.collections || [];
  const select = $("collection");
  select.replaceChildren(...list.map((c) => el("option", { value: c.name }, `${c.name} (${c.counts ? c.counts.shots + " planos" : c.bundle_version})`)));
  if (!list.length) {
    setStatus("No hay ninguna colección indexada todavía.", true);
    return;
  }
  const wanted = new URLSearchParams(location.search).get("collection");
  state.collection = list.some((c) => c.name === wanted) ? wanted : list[0].name;
  select.value = state.collection;
  await loadVideosFilter();
}
async function loadVideosFilter() {
  const select = $("f-video");
  select.replaceChildren(el("option", { value: "" }, "Todos"));
  try {
    const body = await api(`/api/videos?collection=${encodeURIComponent(state.collection)}`);
    const videos = Array.isArray(body) ? body : body.videos || [];
    for (const v of videos) select.append(el("option", { value: v.video_id }, v.video_id));
  } catch (_) { /* the filter stays at "all" */ }
}

// ---------- image input ----------
async function asPng(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("toBlob"))), "image/png"));
}
function tooLarge(name, size) {
  if (size <= MAX_IMAGE_BYTES) return false;
  const mb = (size / 1048576).toFixed(1);
  setStatus(`«${name}» ocupa ${mb} MB; el máximo es ${MAX_IMAGE_BYTES / 1048576} MB.`, true);
  return true;
}
async function acceptImage(file) {
  if (!file) return;
  if (tooLarge(file.name, file.size)) return;
  let image = file;
  if (!SERVER_IMAGE_TYPES.includes(file.type)) {
    try {
      image = await asPng(file);
    } catch (_) {
      setStatus(`«${file.name}» no es una imagen que podamos usar (JPG, PNG, WEBP, GIF, BMP, o AVIF y otras que este navegador sepa mostrar).`, true);
      return;
    }
    if (tooLarge(file.name, image.size)) return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    const dataUrl = String(reader.result);
    state.image = { base64: dataUrl.slice(dataUrl.indexOf(",") + 1), name: file.name };
    $("preview-img").src = dataUrl;
    $("preview").hidden = false;
    $("drop-hint").hidden = true;
    updateWeightRow();
    setStatus(`Imagen «${file.name}» lista.`);
  };
  reader.onerror = () => setStatus(`No se pudo leer «${file.name}».`, true);
  reader.readAsDataURL(image);
}
function clearImage() {
  state.image = null;
  $("preview").hidden = true;
  $("drop-hint").hidden = false;
  $("file").value = "";
  updateWeightRow();
}
function updateWeightRow() {
  $("weight-row").hidden = !(state.image && $("q").value.trim());
}

// ---------- search ----------
function buildRequest(extra = {}) {
  const req = { collection: state.collection, k: Number($("f-k").value) || 24, filter: {} };
  const text = $("q").value.trim();
  if (text) req.text = text;
  if (state.image) req.image = state.image.base64;
  if (text && state.image) req.image_weight = Number($("weight").value);
  const video = $("f-video").value;
  if (video) req.filter.video_ids = [video];
  const from = parseTimecode($("f-from").value), to = parseTimecode($("f-to").value);
  if (from !== null) req.filter.start_ms = from;
  if (to !== null) req.filter.end_ms = to;
  const min = $("f-min").value;
  if (min !== "") req.filter.min_score = Number(min);
  return Object.assign(req, extra);
}
async function runSearch(request) {
  if (!request.text && !request.image && request.like_shot === undefined && !(request.positive || []).length) {
    setStatus("Escribe una descripción o añade una imagen.", true);
    $("q").focus();
    return;
  }
  state.lastRequest = request;
  setStatus("Buscando…");
  $("results").setAttribute("aria-busy", "true");
  try {
    const body = await api("/api/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    renderResults(body.results || []);
    setStatus(`${body.results.length} planos en ${body.took_ms.toFixed(1)} ms · colección ${body.collection}, versión ${body.bundle_version}`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}
function renderResults(hits) {
  const list = $("results");
  if (!hits.length) {
    list.replaceChildren(el("li", { class: "empty" }, "Ningún plano coincide. Prueba otra descripción o quita filtros."));
    return;
  }
  list.replaceChildren(...hits.map((hit, i) => {
    const card = el("li", { class: "card", "data-shot": hit.shot_id });
    const label = `Reproducir ${hit.video_id} desde ${hit.start_tc}`;
    card.append(
      el("button", { class: "play", type: "button", "aria-label": label, onclick: () => playShot(hit) },
        el("img", { src: keyframeUrl(hit), alt: `Fotograma clave del plano ${hit.shot_id}`, loading: i < 8 ? "eager" : "lazy" })),
      el("div", { class: "meta" },
        el("strong", {}, hit.video_id),
        el("span", { class: "tc" }, `${hit.start_tc} – ${hit.end_tc}`),
        ...transitionNote(hit),
        el("span", { class: "score" }, `puntuación ${(Math.abs(hit.score) < 5e-4 ? 0 : hit.score).toFixed(3)}`)),
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => runSearch(buildRequest({ like_shot: hit.shot_id, text: undefined, image: undefined })) }, "Más como este"),
        markButton(hit.shot_id, "pos", "✓ Sí", "Relevante"),
        markButton(hit.shot_id, "neg", "✗ No", "No relevante"),
        el("a", { href: `#/video/${encodeURIComponent(hit.video_id)}?t=${hit.start_ms}` }, "Línea de tiempo")));
    paintMarks(card, hit.shot_id);
    return card;
  }));
}
// How a shot begins, when it does so gradually (its boundary is the middle).
function transitionNote(hit) {
  const t = hit.transition;
  const kind = t && { dissolve: "encadenado", fade: "fundido a negro" }[t.kind];
  if (!kind) return [];
  const seconds = ((t.end_ms - t.start_ms) / 1000).toFixed(1);
  return [el("span", { class: "transition", title: `${kind} de ${seconds} s; el plano empieza en su mitad` }, `entra por ${kind}`)];
}
function markButton(shotId, kind, glyph, label) {
  return el("button", {
    type: "button", class: `mark-${kind}`, "aria-pressed": "false", "aria-label": label, title: label,
    onclick: (e) => {
      const [mine, other] = kind === "pos" ? [state.positive, state.negative] : [state.negative, state.positive];
      if (mine.has(shotId)) mine.delete(shotId); else { mine.add(shotId); other.delete(shotId); }
      paintMarks(e.target.closest(".card"), shotId);
      updateRefineBar();
    },
  }, glyph);
}
function paintMarks(card, shotId) {
  const pos = state.positive.has(shotId), neg = state.negative.has(shotId);
  card.classList.toggle("pos", pos);
  card.classList.toggle("neg", neg);
  card.querySelector(".mark-pos").setAttribute("aria-pressed", String(pos));
  card.querySelector(".mark-neg").setAttribute("aria-pressed", String(neg));
}
function updateRefineBar() {
  const n = state.positive.size + state.negative.size;
  $("refine-bar").hidden = n === 0;
  $("refine-count").textContent = `${state.positive.size} relevantes, ${state.negative.size} no relevantes`;
}

// ---------- playback and timelines ----------
async function timeline(videoId) {
  const key = `${state.collection}/${videoId}`;
  if (!state.timelines.has(key)) {
    state.timelines.set(key, api(`/api/videos/${encodeURIComponent(videoId)}/timeline?collection=${encodeURIComponent(state.collection)}`));
  }
  return state.timelines.get(key);
}
// Where to seek to show a shot's first frame: its start plus half a frame
// when the bundle knows its frames (a start rounded to the millisecond can
// fall a hair before the frame, and browsers then show the one before it).
function firstFrame(shot) {
  const f = shot.frames;
  if (!f || !(f.end > f.start)) return shot.start_ms / 1000;
  const frameMs = (shot.end_ms - shot.start_ms) / (f.end - f.start);
  return (shot.start_ms + frameMs / 2) / 1000;
}
function seekAndPlay(video, seconds) {
  const go = () => { video.currentTime = seconds; video.play().catch(() => {}); };
  if (video.readyState >= 1) go(); else video.addEventListener("loadedmetadata", go, { once: true });
}
async function playShot(hit) {
  const video = $("video");
  $("player").hidden = false;
  $("player-title").textContent = `${hit.video_id} · ${hit.start_tc} – ${hit.end_tc}`;
  const src = mediaUrl(hit.video_id);
  if (video.dataset.src !== src) {
    video.dataset.src = src;
    video.src = `${src}#t=${firstFrame(hit)}`;
  }
  seekAndPlay(video, firstFrame(hit));
  $("player").scrollIntoView({ behavior: "smooth", block: "nearest" });
  try {
    const tl = await timeline(hit.video_id);
    drawBands($("player-timeline"), tl.shots || [], durationOf(tl), (s) => classColour(s.class_id), hit.shot_id,
      (s) => seekAndPlay(video, firstFrame(s)));
  } catch (e) {
    $("player-timeline").replaceChildren();
  }
}
function durationOf(tl) {
  if (tl.video && tl.video.duration_ms) return tl.video.duration_ms;
  const ends = (tl.shots || []).map((s) => s.end_ms);
  return Math.max(1, ...ends);
}
function drawBands(container, items, duration, colour, highlightShot, onPick) {
  container.replaceChildren(...items.map((item) => {
    const left = (item.start_ms / duration) * 100, width = Math.max(0.3, ((item.end_ms - item.start_ms) / duration) * 100);
    const label = `${timecode(item.start_ms)} – ${timecode(item.end_ms)}` + (item.class_id !== undefined ? ` · clase ${item.class_id}` : "");
    const band = el("button", {
      type: "button", class: "band" + (item.shot_id !== undefined && item.shot_id === highlightShot ? " hl" : ""),
      style: `left:${left}%;width:${width}%;background:${colour(item)}`, "aria-label": label,
      onclick: () => onPick(item),
    });
    if (item.shot_id !== undefined) band.dataset.shot = item.shot_id;
    attachTip(band, () => item.shot_id !== undefined ? keyframeUrl(item) : item.keyframe_shot !== undefined ? keyframeUrl({ shot_id: item.keyframe_shot }) : null, label);
    return band;
  }));
}

// ---------- per-video page ----------
async function showVideo(videoId, startMs) {
  $("video-title").textContent = videoId;
  const video = $("video-page-player");
  video.src = mediaUrl(videoId);
  try {
    const tl = await timeline(videoId);
    const duration = durationOf(tl);
    const scenes = tl.scenes || [];
    const shots = tl.shots || [];
    // Class bands: consecutive scenes of one class merged.
    const classes = [];
    for (const s of scenes) {
      const last = classes[classes.length - 1];
      if (last && last.class_id === s.class_id && last.end_ms >= s.start_ms) last.end_ms = s.end_ms;
      else classes.push({ start_ms: s.start_ms, end_ms: s.end_ms, class_id: s.class_id });
    }
    const firstShotIn = (span) => shots.find((sh) => sh.start_ms >= span.start_ms && sh.start_ms < span.end_ms);
    for (const span of [...classes, ...scenes]) { const sh = firstShotIn(span); if (sh) span.keyframe_shot = sh.shot_id; }
    const play = (item) => seekAndPlay(video, item.frames ? firstFrame(item) : item.start_ms / 1000);
    const current = shots.find((s) => startMs !== null && s.start_ms <= startMs && startMs < s.end_ms);
    drawBands($("band-classes"), classes, duration, (c) => classColour(c.class_id), null, play);
    drawBands($("band-scenes"), scenes, duration, (s) => classColour(s.class_id), null, play);
    drawBands($("band-shots"), shots, duration, (s) => classColour(s.class_id), current ? current.shot_id : null, play);
    $("band-ruler").replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => el("span", {}, timecode(duration * f))));
    setStatus(`${videoId}: ${classes.length} tramos de clase, ${scenes.length} escenas, ${shots.length} planos.`);
    if (startMs !== null) seekAndPlay(video, startMs / 1000);
  } catch (e) {
    setStatus(e.message, true);
  }
}

// ---------- semantic map ----------
async function showMap() {
  const svg = $("map");
  svg.replaceChildren();
  try {
    const body = await api(`/api/map?collection=${encodeURIComponent(state.collection)}`);
    const points = Array.isArray(body) ? body : body.points || [];
    const NS = "http://www.w3.org/2000/svg";
    svg.setAttribute("viewBox", "-0.03 -0.03 1.06 1.06");
    for (const p of points) {
      const c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", p.x); c.setAttribute("cy", 1 - p.y); c.setAttribute("r", 0.009);
      c.setAttribute("fill", classColour(p.class_id));
      c.setAttribute("tabindex", "0");
      c.setAttribute("aria-label", `Plano ${p.shot_id}, clase ${p.class_id}`);
      c.dataset.shot = p.shot_id;
      const open = () => openShot(p.shot_id);
      c.addEventListener("click", open);
      c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
      attachTip(c, () => keyframeUrl(p), `Plano ${p.shot_id} · clase ${p.class_id}`);
      svg.append(c);
    }
    setStatus(`${points.length} planos en el mapa.`);
  } catch (e) {
    setStatus(e.message, true);
  }
}
async function openShot(shotId) {
  try {
    const body = await api(`/api/shots/${shotId}?collection=${encodeURIComponent(state.collection)}`);
    const shot = body.shot || body;
    location.hash = `#/video/${encodeURIComponent(shot.video_id)}?t=${shot.start_ms}`;
  } catch (e) {
    setStatus(e.message, true);
  }
}

// ---------- tooltips with keyframes ----------
function attachTip(target, urlFn, text) {
  const tip = $("tip");
  const show = (x, y) => {
    const url = urlFn();
    tip.querySelector("img").hidden = !url;
    if (url) tip.querySelector("img").src = url;
    tip.querySelector("span").textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.min(x + 14, innerWidth - 180)}px`;
    tip.style.top = `${Math.min(y + 14, innerHeight - 140)}px`;
  };
  target.addEventListener("mousemove", (e) => show(e.clientX, e.clientY));
  target.addEventListener("focus", () => { const r = target.getBoundingClientRect(); show(r.left, r.bottom); });
  for (const ev of ["mouseleave", "blur"]) target.addEventListener(ev, () => { tip.hidden = true; });
}

// ---------- routing ----------
function route() {
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean);
  const view = parts[0] === "video" ? "video" : parts[0] === "map" ? "map" : "search";
  for (const v of ["search", "video", "map"]) $(`view-${v}`).hidden = v !== view;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  $("tip").hidden = true;
  if (view === "video") showVideo(decodeURIComponent(parts[1] || ""), params.has("t") ? Number(params.get("t")) : null);
  if (view === "map") showMap();
}

// ---------- wiring ----------
function wire() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.positive.clear(); state.negative.clear(); updateRefineBar();
    runSearch(buildRequest());
  });
  $("q").addEventListener("input", updateWeightRow);
  $("weight").addEventListener("input", () => { $("weight-out").value = `${Math.round($("weight").value * 100)}%`; });
  const drop = $("drop");
  drop.addEventListener("click", (e) => { if (e.target.id !== "clear-image") $("file").click(); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); acceptImage(e.dataTransfer.files[0]); });
  $("file").addEventListener("change", (e) => acceptImage(e.target.files[0]));
  $("clear-image").addEventListener("click", (e) => { e.stopPropagation(); clearImage(); });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData || {}).items || []].find((i) => i.kind === "file");
    if (item) acceptImage(item.getAsFile());
  });
  $("refine").addEventListener("click", () => {
    const base = state.lastRequest || buildRequest();
    runSearch(Object.assign({}, base, { positive: [...state.positive], negative: [...state.negative] }));
  });
  $("refine-clear").addEventListener("click", () => {
    state.positive.clear(); state.negative.clear(); updateRefineBar();
    document.querySelectorAll(".card").forEach((c) => paintMarks(c, Number(c.dataset.shot)));
  });
  $("player-close").addEventListener("click", () => { $("video").pause(); $("player").hidden = true; });
  $("collection").addEventListener("change", async (e) => {
    state.collection = e.target.value;
    state.positive.clear(); state.negative.clear(); updateRefineBar();
    $("results").replaceChildren();
    await loadVideosFilter();
    route();
  });
  window.addEventListener("hashchange", route);
}

wire();
loadCollections().then(route).catch((e) => setStatus(e.message, true));
