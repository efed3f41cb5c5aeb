// The search page in a real browser (Debian's headless Chromium driven by
// playwright-core): generated colour videos are indexed with the tiny models,
// busca-serve serves the pre-initialised component, and the page must find
// "red", "un coche rojo" and a blue picture, play a result from its start,
// explain an oversized upload, speak Spanish and English (errors included),
// reopen a search from its URL and walk back through searches and timelines.
// A screenshot of the results (thumbnails loaded) is saved for people to look at.
//
// Needs (scripts/test.sh provides them): ffmpeg, CARGO_TARGET_DIR with the
// busca-index and busca-serve binaries, BUSCA_COMPONENT, ORT_DYLIB_PATH,
// chromium at /usr/bin/chromium. BUSCA_ARTIFACTS: where the screenshot goes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { chromium } from "playwright-core";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const target = process.env.CARGO_TARGET_DIR || join(repo, "target");
const profile = process.env.BUSCA_PROFILE || "debug";
const indexBin = process.env.BUSCA_INDEX_BIN || join(target, profile, "busca-index");
const serveBin = process.env.BUSCA_SERVE_BIN || join(target, profile, "busca-serve");
const component = process.env.BUSCA_COMPONENT;
const artifacts = process.env.BUSCA_ARTIFACTS || join(target, "artifacts");
// BUSCA_TEST_MODEL: the other tiny family (scripts/test.sh runs both).
const tiny = join(repo, process.env.BUSCA_TEST_MODEL || join("models", "tiny"));
const colours = JSON.parse(readFileSync(join(tiny, "manifest.json"), "utf8")).colours;
const hex = (name) => colours[name].map((v) => v.toString(16).padStart(2, "0")).join("");

// Ground truth by construction: 3 s each, hard cuts.
const SEGMENTS = ["red", "green", "blue"];
const SEGMENT_MS = 3000;

let work, server, browser, page, base;
const serverLog = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on("error", reject);
  });
}

async function waitForServer(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`busca-serve exited:\n${serverLog.join("")}`);
    try { if ((await fetch(url)).ok) return; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`busca-serve did not answer within ${ms} ms:\n${serverLog.join("")}`);
}

before(async () => {
  assert.ok(component, "BUSCA_COMPONENT must point at the built query component (scripts/test.sh sets it)");
  work = mkdtempSync(join(tmpdir(), "busca-ui-"));
  const videos = join(work, "videos");
  mkdirSync(videos);
  const inputs = SEGMENTS.flatMap((c) => ["-f", "lavfi", "-i", `color=c=0x${hex(c)}:s=320x240:r=25:d=${SEGMENT_MS / 1000}`]);
  execFileSync("ffmpeg", ["-v", "error", "-y", ...inputs, "-filter_complex",
    `${SEGMENTS.map((_, i) => `[${i}:v]`).join("")}concat=n=${SEGMENTS.length}:v=1:a=0`,
    "-c:v", "libx264", "-pix_fmt", "yuv420p", join(videos, "colours.mp4")]);
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", `color=c=0x${hex("blue")}:s=64x48`,
    "-frames:v", "1", join(work, "blue.png")]);
  // AVIF, which the component does not decode: the page sends it as PNG.
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", `color=c=0x${hex("blue")}:s=64x48`,
    "-frames:v", "1", "-c:v", "libaom-av1", "-still-picture", "1", "-pix_fmt", "yuv444p", join(work, "blue.avif")]);
  // Larger than the page's 8 MiB limit: refused before any upload.
  writeFileSync(join(work, "huge.png"), Buffer.alloc(9 * 1024 * 1024, 1));
  execFileSync(indexBin, ["--collection", "ui", "--out", join(work, "bundles"), "--model", tiny, videos],
    { stdio: ["ignore", "ignore", "inherit"] });

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(serveBin, ["--component", component, "--bundles", join(work, "bundles"), "--models", tiny,
    "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => serverLog.push(String(d)));
  server.stderr.on("data", (d) => serverLog.push(String(d)));
  await waitForServer(`${base}/api/collections`, 120_000);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
  });
  // A Spanish browser: the page starts in Spanish.
  page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: "es-ES" });
  page.on("pageerror", (e) => serverLog.push(`page error: ${e.message}\n`));
  await page.goto(base + "/");
  await page.waitForSelector("#collection option", { state: "attached" });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (work) rmSync(work, { recursive: true, force: true });
});

async function firstResult() {
  const card = page.locator("#results .card").first();
  await card.waitFor({ timeout: 20_000 });
  return {
    video: await card.locator(".meta strong").textContent(),
    timecodes: await card.locator(".tc").textContent(),
  };
}

// The shown results' eager thumbnails have all loaded (not black boxes).
async function thumbnailsLoaded() {
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll("#results img[loading=eager]")];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 20_000 });
}

// The number of results, past the form's own limit (the field sits in the
// closed "Filtros" box), so that the server refuses it.
async function setResults(k) {
  await page.evaluate((value) => {
    const field = document.getElementById("f-k");
    field.setAttribute("max", "100000");
    field.value = value;
  }, k);
}

test("the page starts in the browser's language and says what the model cannot do", async () => {
  assert.equal(await page.getAttribute("html", "lang"), "es");
  assert.equal(await page.textContent("#search-form button[type=submit]"), "Buscar");
  assert.ok(await page.locator("#model-about").isVisible(), "the model's description is shown beside the collection");
  assert.equal(await page.textContent("#model-id"), JSON.parse(readFileSync(join(tiny, "manifest.json"), "utf8")).model_id);
  assert.match(await page.textContent("#model-about-text"), /Solo ve el color medio.*No entiende objetos/);
});

test("typing red puts the red shot first, and the URL holds the search", async () => {
  await page.fill("#q", "red");
  await page.click("#search-form button[type=submit]");
  const hit = await firstResult();
  assert.equal(hit.video, "colours");
  // The red segment is [0, 3) s; shot timecodes are sampled-frame aligned.
  assert.match(hit.timecodes, /^00:00:00\.\d{3} – 00:00:0[23]\.\d{3}$/);
  const params = new URLSearchParams(new URL(page.url()).hash.split("?")[1]);
  assert.equal(params.get("q"), "red");
  assert.equal(params.get("c"), "ui");
  await thumbnailsLoaded();
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "ui-results.png"), fullPage: true });
});

test("un coche rojo, in Spanish, goes to the multilingual text model and finds the red shot", async () => {
  await page.fill("#q", "un coche rojo");
  const sent = page.waitForRequest((r) => r.url().endsWith("/api/search") && r.method() === "POST");
  const answered = page.waitForResponse((r) => r.url().endsWith("/api/search"));
  await page.click("#search-form button[type=submit]");
  assert.equal(JSON.parse((await sent).postData()).lang, "es", "the query language follows the page");
  const body = await (await answered).json();
  assert.equal(body.text_model, "multilingual");
  const hit = await firstResult();
  assert.match(hit.timecodes, /^00:00:00\.\d{3} – 00:00:0[23]\.\d{3}$/, `red segment is [0, 3) s, got ${hit.timecodes}`);
  assert.match(await page.textContent("#status"), /modelo de texto «multilingual»/);
});

test("uploading a blue picture puts the blue shot first", async () => {
  await page.fill("#q", "");
  await page.setInputFiles("#file", join(work, "blue.png"));
  await page.waitForSelector("#preview:not([hidden])");
  await page.locator("#results").evaluate((el) => el.replaceChildren());
  await page.click("#search-form button[type=submit]");
  const hit = await firstResult();
  assert.match(hit.timecodes, /^00:00:0[56]\.\d{3} – 00:00:0[89]\.\d{3}$/, `blue segment is [6, 9) s, got ${hit.timecodes}`);
  await page.click("#clear-image");
});

test("an AVIF picture, which the component does not decode, is sent as PNG and found", async () => {
  await page.fill("#q", "");
  const sent = page.waitForRequest((r) => r.url().endsWith("/api/search") && r.method() === "POST");
  await page.setInputFiles("#file", join(work, "blue.avif"));
  await page.waitForSelector("#preview:not([hidden])");
  await page.locator("#results").evaluate((el) => el.replaceChildren());
  await page.click("#search-form button[type=submit]");
  const image = JSON.parse((await sent).postData()).image;
  assert.equal(Buffer.from(image, "base64").subarray(1, 4).toString(), "PNG", "the upload is a PNG");
  const hit = await firstResult();
  assert.match(hit.timecodes, /^00:00:0[56]\.\d{3} – 00:00:0[89]\.\d{3}$/, `blue segment is [6, 9) s, got ${hit.timecodes}`);
  await page.click("#clear-image");
});

test("clicking a result plays the video from the shot's start", async () => {
  await page.fill("#q", "green");
  await page.locator("#results").evaluate((el) => el.replaceChildren());
  await page.click("#search-form button[type=submit]");
  const card = page.locator("#results .card").first();
  await card.waitFor();
  const tc = await card.locator(".tc").textContent();
  const startS = tc.split(" – ")[0].split(":").reduce((acc, v) => acc * 60 + Number(v), 0);
  await card.locator("button.play").click();
  await page.waitForFunction(() => {
    const v = document.getElementById("video");
    return v.readyState >= 1 && !v.seeking;
  }, null, { timeout: 20_000 });
  const current = await page.evaluate(() => document.getElementById("video").currentTime);
  // Never before the shot's first frame (the shot starts on its cut), and
  // no further than the playing since.
  assert.ok(current >= startS && current - startS <= 0.5, `currentTime ${current} vs shot start ${startS}`);
  assert.equal(await page.locator("#player-timeline .band.hl").count(), 1, "the shot is highlighted on the timeline");
});

test("an oversized upload is refused with a plain message", async () => {
  await page.setInputFiles("#file", join(work, "huge.png"));
  const status = page.locator("#status.error");
  await status.waitFor();
  assert.match(await status.textContent(), /huge\.png.*9\.0 MB.*máximo/);
  // An error the server gives, in Spanish words around its message.
  await page.fill("#q", "red");
  await setResults("5000");
  await page.click("#search-form button[type=submit]");
  await page.waitForFunction(() => /consulta no es válida/.test(document.getElementById("status").textContent));
  assert.match(await page.textContent("#status"), /^La consulta no es válida: k must be between 1 and 100/);
  await setResults("24");
  assert.ok(await page.locator("#preview").isHidden());
});

test("a search opens from its URL, and back walks through the timeline and the searches", async () => {
  await page.goto(`${base}/#/?q=green&lang=en&c=ui`);
  const hit = await firstResult();
  assert.match(hit.timecodes, /^00:00:0[23]\.\d{3} – 00:00:0[56]\.\d{3}$/, `green segment is [3, 6) s, got ${hit.timecodes}`);
  assert.equal(await page.inputValue("#q"), "green");
  assert.equal(await page.inputValue("#q-lang"), "en");
  // A second search, then a shot's timeline.
  await page.fill("#q", "blue");
  await page.click("#search-form button[type=submit]");
  await page.waitForFunction(() => /^00:00:0[56]/.test(document.querySelector("#results .card .tc")?.textContent || ""));
  await page.locator("#results .card").first().locator(".actions a").click();
  await page.waitForSelector("#view-video:not([hidden])");
  await page.waitForSelector("#band-shots .band");
  // Back: the blue search, as it was.
  await page.goBack();
  await page.waitForSelector("#view-search:not([hidden])");
  assert.equal(await page.inputValue("#q"), "blue");
  assert.match((await firstResult()).timecodes, /^00:00:0[56]/);
  // Back again: the green search, run again from the URL.
  await page.goBack();
  await page.waitForFunction(() => document.getElementById("q").value === "green");
  await page.waitForFunction(() => /^00:00:0[23]/.test(document.querySelector("#results .card .tc")?.textContent || ""));
});

test("English: switched, remembered, and its errors are in English too", async () => {
  await page.selectOption("#ui-lang", "en");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal(await page.textContent("#search-form button[type=submit]"), "Search");
  assert.match(await page.textContent("#model-about-text"), /only the mean colour.*does not understand objects/);
  await page.reload();
  await page.waitForSelector("#collection option", { state: "attached" });
  assert.equal(await page.textContent("#search-form button[type=submit]"), "Search", "the choice is remembered");
  await page.setInputFiles("#file", join(work, "huge.png"));
  const status = page.locator("#status.error");
  await status.waitFor();
  assert.match(await status.textContent(), /huge\.png.*9\.0 MB.*the limit is 8 MB/);
  // An error from the server, with the page's words around it.
  await setResults("5000");
  await page.fill("#q", "red");
  await page.click("#search-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("status").classList.contains("error")
    && /query is not valid/.test(document.getElementById("status").textContent));
  assert.match(await page.textContent("#status"), /^The query is not valid: k must be between 1 and 100/);
  await setResults("24");
  await page.selectOption("#ui-lang", "es");
});

test("the server still answers and explains a malformed request", async () => {
  const r = await fetch(`${base}/api/search`, { method: "POST", body: "{not json", headers: { "content-type": "application/json" } });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error.code, "malformed_json");
});
