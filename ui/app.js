// BuscaEscenas search page: search (text, image, both), results, playback,
// per-video timeline bands and the semantic map, in Spanish and English.
// Plain JavaScript talking to the component's JSON API; no framework, nothing
// fetched from elsewhere. The URL's hash holds the view and the search (text,
// collection, filters, query language), so a search can be bookmarked,
// shared and reopened, and the back button walks searches, shot pages and
// timelines.
"use strict";

// ---------- words, in both languages ----------
const STRINGS = {
  es: {
    "nav.sections": "Secciones", "nav.search": "Buscar", "nav.map": "Mapa semántico",
    "collection": "Colección", "ui.language": "Idioma de la página",
    "model.about": "Sobre el modelo",
    "q.label": "Describe la escena",
    "q.placeholder": "Describe la escena: «obreros cavando zanjas», «un coche rojo»…",
    "q.language": "Idioma de la consulta", "q.language.page": "Idioma: el de la página",
    "search": "Buscar",
    "drop.label": "Imagen de consulta: pulsa para elegir un archivo, arrástrala aquí o pégala",
    "drop.hint": "Arrastra, pega o <u>elige una imagen</u> (JPG, PNG, WEBP, AVIF)",
    "preview.alt": "Imagen de consulta", "preview.clear": "Quitar imagen",
    "weight.text": "Texto", "weight.image": "Imagen", "weight.label": "Peso de la imagen frente al texto",
    "filters": "Filtros", "filter.video": "Vídeo", "filter.all": "Todos", "filter.from": "Desde",
    "filter.to": "Hasta", "filter.min": "Puntuación mínima", "filter.k": "Resultados",
    "refine": "Refinar búsqueda", "refine.clear": "Borrar marcas",
    "refine.count": "{pos} relevantes, {neg} no relevantes",
    "player": "Reproductor", "player.close": "Cerrar ✕", "player.close.label": "Cerrar reproductor",
    "player.timeline": "Línea de tiempo del vídeo", "results": "Resultados",
    "video.legend": "Clases semánticas, escenas y planos: pasa el ratón para ver el fotograma, pulsa para reproducir desde ahí.",
    "band.classes": "Clases", "band.scenes": "Escenas", "band.shots": "Planos",
    "map.legend": "Cada punto es un plano; los colores son clases semánticas. Planos cercanos se parecen.",
    "map.label": "Mapa semántico de la colección",
    "err.network": "No se pudo contactar con el servidor. ¿Está en marcha?",
    "err.400": "La consulta no es válida", "err.404": "No encontrado", "err.413": "La imagen es demasiado grande",
    "err.415": "Formato de imagen no admitido", "err.422": "La imagen no se puede usar",
    "err.503": "El servicio no está disponible ahora", "err.other": "Error {status}",
    "collections.count": "{name} ({shots} planos)", "collections.none": "No hay ninguna colección indexada todavía.",
    "image.too_large": "«{name}» ocupa {mb} MB; el máximo es {max} MB.",
    "image.unusable": "«{name}» no es una imagen que podamos usar (JPG, PNG, WEBP, GIF, BMP, o AVIF y otras que este navegador sepa mostrar).",
    "image.ready": "Imagen «{name}» lista.", "image.unreadable": "No se pudo leer «{name}».",
    "search.empty": "Escribe una descripción o añade una imagen.", "search.running": "Buscando…",
    "search.done": "{n} planos en {ms} ms · colección {collection}, versión {version}",
    "search.text_model": " · modelo de texto «{model}»",
    "search.language_unknown": " · Aviso: el modelo de texto «{model}» no se entrenó en {language}; los resultados de un texto en {language} serán poco fiables.",
    "results.none": "Ningún plano coincide. Prueba otra descripción o quita filtros.",
    "play.label": "Reproducir {video} desde {tc}", "keyframe.alt": "Fotograma clave del plano {id}",
    "score": "puntuación {score}", "probability": "coincide al {pct} %", "probability.title": "Probabilidad de que el plano coincida con el texto, según el modelo (sigmoide con su escala y sesgo)", "more_like": "Más como este", "mark.pos": "Relevante", "mark.neg": "No relevante",
    "mark.pos.glyph": "✓ Sí", "mark.neg.glyph": "✗ No", "timeline": "Línea de tiempo",
    "transition.dissolve": "encadenado", "transition.fade": "fundido a negro",
    "transition.title": "{kind} de {seconds} s; el plano empieza en su mitad", "transition.enters": "entra por {kind}",
    "band.class": " · clase {id}",
    "video.summary": "{video}: {classes} tramos de clase, {scenes} escenas, {shots} planos.",
    "map.point": "Plano {id}, clase {class}", "map.tip": "Plano {id} · clase {class}", "map.count": "{n} planos en el mapa.",
    "language.es": "español", "language.en": "inglés",
  },
  en: {
    "nav.sections": "Sections", "nav.search": "Search", "nav.map": "Semantic map",
    "collection": "Collection", "ui.language": "Page language",
    "model.about": "About the model",
    "q.label": "Describe the scene",
    "q.placeholder": "Describe the scene: “workers digging trenches”, “a red car”…",
    "q.language": "Query language", "q.language.page": "Language: the page's",
    "search": "Search",
    "drop.label": "Query image: click to choose a file, drag it here or paste it",
    "drop.hint": "Drag, paste or <u>choose a picture</u> (JPG, PNG, WEBP, AVIF)",
    "preview.alt": "Query image", "preview.clear": "Remove image",
    "weight.text": "Text", "weight.image": "Image", "weight.label": "Weight of the image against the text",
    "filters": "Filters", "filter.video": "Video", "filter.all": "All", "filter.from": "From",
    "filter.to": "To", "filter.min": "Minimum score", "filter.k": "Results",
    "refine": "Refine search", "refine.clear": "Clear marks",
    "refine.count": "{pos} relevant, {neg} not relevant",
    "player": "Player", "player.close": "Close ✕", "player.close.label": "Close the player",
    "player.timeline": "Timeline of the video", "results": "Results",
    "video.legend": "Semantic classes, scenes and shots: hover to see the frame, click to play from there.",
    "band.classes": "Classes", "band.scenes": "Scenes", "band.shots": "Shots",
    "map.legend": "Each dot is a shot; colours are semantic classes. Nearby shots look alike.",
    "map.label": "Semantic map of the collection",
    "err.network": "The server could not be reached. Is it running?",
    "err.400": "The query is not valid", "err.404": "Not found", "err.413": "The picture is too large",
    "err.415": "Unsupported picture format", "err.422": "The picture cannot be used",
    "err.503": "The service is not available now", "err.other": "Error {status}",
    "collections.count": "{name} ({shots} shots)", "collections.none": "No collection has been indexed yet.",
    "image.too_large": "“{name}” is {mb} MB; the limit is {max} MB.",
    "image.unusable": "“{name}” is not a picture we can use (JPG, PNG, WEBP, GIF, BMP, or AVIF and others this browser can show).",
    "image.ready": "Picture “{name}” ready.", "image.unreadable": "“{name}” could not be read.",
    "search.empty": "Type a description or add a picture.", "search.running": "Searching…",
    "search.done": "{n} shots in {ms} ms · collection {collection}, version {version}",
    "search.text_model": " · text model “{model}”",
    "search.language_unknown": " · Warning: the text model “{model}” was not trained on {language}; results for text in {language} will be unreliable.",
    "results.none": "No shot matches. Try another description or remove filters.",
    "play.label": "Play {video} from {tc}", "keyframe.alt": "Key frame of shot {id}",
    "score": "score {score}", "probability": "{pct}% match", "probability.title": "The model's probability that this shot matches the text (a sigmoid with its own scale and bias)", "more_like": "More like this", "mark.pos": "Relevant", "mark.neg": "Not relevant",
    "mark.pos.glyph": "✓ Yes", "mark.neg.glyph": "✗ No", "timeline": "Timeline",
    "transition.dissolve": "dissolve", "transition.fade": "fade to black",
    "transition.title": "{kind} of {seconds} s; the shot starts at its middle", "transition.enters": "enters by {kind}",
    "band.class": " · class {id}",
    "video.summary": "{video}: {classes} class spans, {scenes} scenes, {shots} shots.",
    "map.point": "Shot {id}, class {class}", "map.tip": "Shot {id} · class {class}", "map.count": "{n} shots on the map.",
    "language.es": "Spanish", "language.en": "English",
  },
};
const LANGUAGES = Object.keys(STRINGS);
const LANG_KEY = "buscaescenas.lang";

// The page language: the one chosen before, else the browser's first that
// we have, else Spanish.
function initialLanguage() {
  let saved = null;
  try { saved = localStorage.getItem(LANG_KEY); } catch (_) { /* storage off */ }
  if (LANGUAGES.includes(saved)) return saved;
  for (const l of navigator.languages || [navigator.language || ""]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "es";
}
let lang = initialLanguage();
function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.es[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? ""));
}
// Static words of index.html, by their data-i18n* attributes.
function translatePage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-html]")) node.innerHTML = t(node.dataset.i18nHtml);
  for (const attr of ["placeholder", "aria-label", "title", "alt"]) {
    for (const node of document.querySelectorAll(`[data-i18n-${attr}]`)) node.setAttribute(attr, t(node.getAttribute(`data-i18n-${attr}`)));
  }
  $("ui-lang").value = lang;
}
function setLanguage(next) {
  if (!LANGUAGES.includes(next)) return;
  lang = next;
  try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* storage off */ }
  translatePage();
  showModelAbout();
  updateRefineBar();
  state.shownKey = null;  // re-render what is shown in the new language
  route();
}
// The language of the query text: the one picked beside the box, else the page's.
function queryLanguage() {
  return $("q-lang").value || lang;
}

// The component refuses bodies over 12 MiB; base64 adds a third.
const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
// What the component decodes; anything else this browser can show (AVIF,
// HEIC on Safari) is redrawn and sent as PNG.
const SERVER_IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];

const $ = (id) => document.getElementById(id);
const state = {
  collection: "",
  collections: [],        // /api/collections entries
  shownKey: null,         // the hash whose search the results show
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
    throw new Error(t("err.network"));
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : text || response.statusText;
    const known = [400, 404, 413, 415, 422, 503].includes(response.status);
    const plain = known ? t(`err.${response.status}`) : t("err.other", { status: response.status });
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
  state.collections = list;
  renderCollectionOptions();
  if (!list.length) {
    setStatus(t("collections.none"), true);
    return;
  }
  const wanted = hashParams().get("c") || new URLSearchParams(location.search).get("collection");
  await useCollection(list.some((c) => c.name === wanted) ? wanted : list[0].name);
}
function renderCollectionOptions() {
  $("collection").replaceChildren(...state.collections.map((c) =>
    el("option", { value: c.name }, c.counts ? t("collections.count", { name: c.name, shots: c.counts.shots }) : `${c.name} (${c.bundle_version})`)));
  $("collection").value = state.collection;
}
async function useCollection(name) {
  if (name === state.collection) return;
  state.collection = name;
  $("collection").value = name;
  showModelAbout();
  await loadVideosFilter();
}
// What the collection's model is and cannot do, from its manifest.
function showModelAbout() {
  const c = state.collections.find((x) => x.name === state.collection);
  const about = c && c.model_about ? (c.model_about[lang] || c.model_about.en || Object.values(c.model_about)[0]) : null;
  $("model-about").hidden = !about;
  $("model-id").textContent = c ? c.model_id : "";
  $("model-about-text").textContent = about || "";
  if (c) renderCollectionOptions();
}
async function loadVideosFilter() {
  const select = $("f-video");
  select.replaceChildren(el("option", { value: "", "data-i18n": "filter.all" }, t("filter.all")));
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
  setStatus(t("image.too_large", { name, mb, max: MAX_IMAGE_BYTES / 1048576 }), true);
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
      setStatus(t("image.unusable", { name: file.name }), true);
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
    setStatus(t("image.ready", { name: file.name }));
  };
  reader.onerror = () => setStatus(t("image.unreadable", { name: file.name }), true);
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
  if (text) { req.text = text; req.lang = queryLanguage(); }
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
    setStatus(t("search.empty"), true);
    $("q").focus();
    return;
  }
  state.lastRequest = request;
  setStatus(t("search.running"));
  $("results").setAttribute("aria-busy", "true");
  try {
    const body = await api("/api/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    renderResults(body.results || []);
    setStatus(searchSummary(body, request));
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}
function searchSummary(body, request) {
  let text = t("search.done", { n: body.results.length, ms: body.took_ms.toFixed(1), collection: body.collection, version: body.bundle_version });
  if (body.text_model) {
    text += t("search.text_model", { model: body.text_model });
    const langs = body.text_languages || [];
    const asked = String(request.lang || "").toLowerCase().split(/[-_]/)[0];
    if (asked && langs.length && !langs.includes("*") && !langs.includes(asked)) {
      text += t("search.language_unknown", { model: body.text_model, language: t(`language.${asked}`) });
    }
  }
  return text;
}
function renderResults(hits) {
  const list = $("results");
  if (!hits.length) {
    list.replaceChildren(el("li", { class: "empty" }, t("results.none")));
    return;
  }
  // Sigmoid-scored models (SigLIP) give text-only hits a match probability.
  const probabilityNote = (hit) => typeof hit.probability === "number"
    ? [el("span", { class: "probability", title: t("probability.title") },
        t("probability", { pct: (100 * hit.probability).toFixed(hit.probability < 0.1 ? 1 : 0) }))]
    : [];
  list.replaceChildren(...hits.map((hit, i) => {
    const card = el("li", { class: "card", "data-shot": hit.shot_id });
    const label = t("play.label", { video: hit.video_id, tc: hit.start_tc });
    card.append(
      el("button", { class: "play", type: "button", "aria-label": label, onclick: () => playShot(hit) },
        el("img", { src: keyframeUrl(hit), alt: t("keyframe.alt", { id: hit.shot_id }), loading: i < 8 ? "eager" : "lazy" })),
      el("div", { class: "meta" },
        el("strong", {}, hit.video_id),
        el("span", { class: "tc" }, `${hit.start_tc} – ${hit.end_tc}`),
        ...transitionNote(hit),
        el("span", { class: "score" }, t("score", { score: (Math.abs(hit.score) < 5e-4 ? 0 : hit.score).toFixed(3) })),
        ...probabilityNote(hit)),
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => navigate(searchHash({ like: hit.shot_id })) }, t("more_like")),
        markButton(hit.shot_id, "pos", t("mark.pos.glyph"), t("mark.pos")),
        markButton(hit.shot_id, "neg", t("mark.neg.glyph"), t("mark.neg")),
        el("a", { href: `#/video/${encodeURIComponent(hit.video_id)}?t=${hit.start_ms}&c=${encodeURIComponent(state.collection)}` }, t("timeline"))));
    paintMarks(card, hit.shot_id);
    return card;
  }));
}
// How a shot begins, when it does so gradually (its boundary is the middle).
function transitionNote(hit) {
  const tr = hit.transition;
  if (!tr || !["dissolve", "fade"].includes(tr.kind)) return [];
  const kind = t(`transition.${tr.kind}`);
  const seconds = ((tr.end_ms - tr.start_ms) / 1000).toFixed(1);
  return [el("span", { class: "transition", title: t("transition.title", { kind, seconds }) }, t("transition.enters", { kind }))];
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
  $("refine-count").textContent = t("refine.count", { pos: state.positive.size, neg: state.negative.size });
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
    const label = `${timecode(item.start_ms)} – ${timecode(item.end_ms)}` + (item.class_id !== undefined ? t("band.class", { id: item.class_id }) : "");
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
    setStatus(t("video.summary", { video: videoId, classes: classes.length, scenes: scenes.length, shots: shots.length }));
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
      c.setAttribute("aria-label", t("map.point", { id: p.shot_id, class: p.class_id }));
      c.dataset.shot = p.shot_id;
      const open = () => openShot(p.shot_id);
      c.addEventListener("click", open);
      c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
      attachTip(c, () => keyframeUrl(p), t("map.tip", { id: p.shot_id, class: p.class_id }));
      svg.append(c);
    }
    setStatus(t("map.count", { n: points.length }));
  } catch (e) {
    setStatus(e.message, true);
  }
}
async function openShot(shotId) {
  try {
    const body = await api(`/api/shots/${shotId}?collection=${encodeURIComponent(state.collection)}`);
    const shot = body.shot || body;
    navigate(`#/video/${encodeURIComponent(shot.video_id)}?t=${shot.start_ms}&c=${encodeURIComponent(state.collection)}`);
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

// ---------- the URL: views and searches ----------
// #/?q=…&lang=…&c=…&video=…&from=…&to=…&min=…&k=…&like=…  a search
// #/video/<id>?t=<ms>&c=…                                a video's timeline
// #/map?c=…                                              the semantic map
function hashParams() {
  return new URLSearchParams(location.hash.slice(1).split("?")[1] || "");
}
// The hash of a search: the form's text, query language, filters and
// collection, plus `extra` (like: a shot id).
function searchHash(extra = {}) {
  const p = new URLSearchParams();
  const text = $("q").value.trim();
  if (text && extra.like === undefined) p.set("q", text);
  if ($("q-lang").value) p.set("lang", $("q-lang").value);
  if (extra.like !== undefined) p.set("like", String(extra.like));
  if (state.collection) p.set("c", state.collection);
  for (const [key, id] of [["video", "f-video"], ["from", "f-from"], ["to", "f-to"], ["min", "f-min"]]) {
    if ($(id).value.trim()) p.set(key, $(id).value.trim());
  }
  if ($("f-k").value && $("f-k").value !== "24") p.set("k", $("f-k").value);
  return `#/?${p}`;
}
// Goes to `hash` as a new history entry (the route runs on hashchange).
function navigate(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}
// Puts a search's URL parameters back into the form.
function fillForm(params) {
  $("q").value = params.get("q") || "";
  $("q-lang").value = LANGUAGES.includes(params.get("lang")) ? params.get("lang") : "";
  $("f-video").value = params.get("video") || "";
  $("f-from").value = params.get("from") || "";
  $("f-to").value = params.get("to") || "";
  $("f-min").value = params.get("min") || "";
  $("f-k").value = params.get("k") || "24";
  updateWeightRow();
}
async function route() {
  const [path] = location.hash.slice(1).split("?");
  const params = hashParams();
  const parts = (path || "/").split("/").filter(Boolean);
  const view = parts[0] === "video" ? "video" : parts[0] === "map" ? "map" : "search";
  for (const v of ["search", "video", "map"]) $(`view-${v}`).hidden = v !== view;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  $("tip").hidden = true;
  const wanted = params.get("c");
  if (wanted && wanted !== state.collection && state.collections.some((c) => c.name === wanted)) await useCollection(wanted);
  if (view === "video") showVideo(decodeURIComponent(parts[1] || ""), params.has("t") ? Number(params.get("t")) : null);
  if (view === "map") showMap();
  if (view === "search") {
    fillForm(params);
    // Back from a video page: the results of this search are still shown.
    if (state.shownKey === location.hash) return;
    state.shownKey = location.hash;
    const like = params.get("like");
    if (params.get("q") || like) {
      await runSearch(buildRequest(like ? { like_shot: Number(like), text: undefined, lang: undefined, image: undefined } : {}));
    } else {
      $("results").replaceChildren();
    }
  }
}

// ---------- wiring ----------
function wire() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.positive.clear(); state.negative.clear(); updateRefineBar();
    // A picture is not part of the URL: such a search runs in place.
    if (state.image) runSearch(buildRequest());
    else { state.shownKey = null; navigate(searchHash()); }
  });
  $("ui-lang").addEventListener("change", (e) => setLanguage(e.target.value));
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
    state.positive.clear(); state.negative.clear(); updateRefineBar();
    $("results").replaceChildren();
    await useCollection(e.target.value);
    const [path] = location.hash.slice(1).split("?");
    navigate(path.startsWith("/video") ? "#/" : path === "/map" ? `#/map?c=${encodeURIComponent(state.collection)}` : searchHash());
  });
  window.addEventListener("hashchange", route);
}

translatePage();
wire();
loadCollections().then(route).catch((e) => setStatus(e.message, true));
