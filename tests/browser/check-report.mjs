// check-report.mjs: opens llama-sweep's self-contained report.html in
// headless Chromium and checks that a person would see a working page.
//
//   node tests/browser/check-report.mjs <report.html> <screenshot.png>
//
// Uses Debian's /usr/bin/chromium (playwright-core only drives it; no browser
// is downloaded). Override with CHROMIUM=/path/to/chromium.
//
// The page's contract (what the report writer promises):
//   - one self-contained file: it loads nothing but itself (data: URLs are
//     fine), and it holds no JavaScript (no <script>, no on* attributes);
//   - every plot is <figure class="plot" data-plot="NAME"> holding one inline
//     <svg> and a <figcaption>; names: history, pareto, pp-vs-tg, heatmap,
//     effect-<parameter>;
//   - <body data-plots="N">: the number of plots the report meant to draw.
//
// Checks: no console errors or warnings, no page errors, no request other than
// the file itself (or a data: URL) and no failed one; as many figure.plot as
// data-plots and at least 5; history, pareto and pp-vs-tg present; each plot's
// svg is visible when the page opens, larger than 50x50 px and draws something
// (path, rect, circle, line, polyline, polygon, ellipse or text), and each
// plot has one top-level svg, a figcaption and a name of its own; an <h1>; no
// script, no on* attribute, no javascript: URL.
//
// Writes a full-page screenshot to <screenshot.png> and a 1280x900 view of the
// top of the page to <screenshot>-top.png, also when a check fails. Exits 0
// when every check passes, 1 with the list of failures when one does, and 2
// when the page could not be checked at all (bad arguments, no browser).

import { readFileSync, existsSync, mkdirSync } from "node:fs";
import { resolve, dirname } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const VIEWPORT = { width: 1280, height: 900 };
const MIN_PLOTS = 5;
const REQUIRED_PLOTS = ["history", "pareto", "pp-vs-tg"];
const MIN_SVG_PX = 50;
const DRAWN = "path, rect, circle, line, polyline, polygon, ellipse, text";
const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";

function usage(message) {
  if (message) console.error(`check-report: ${message}`);
  console.error("usage: node check-report.mjs <report.html> <screenshot.png>");
  process.exit(2);
}

const [reportArg, shotArg, ...extra] = process.argv.slice(2);
if (!reportArg || !shotArg || extra.length > 0) usage();
const reportPath = resolve(reportArg);
const shotPath = resolve(shotArg);
if (!/\.png$/i.test(shotPath)) usage(`the screenshot's name must end in .png: ${shotArg}`);
const topShotPath = shotPath.replace(/\.png$/i, "-top.png");
if (!existsSync(reportPath)) usage(`no such file: ${reportPath}`);
if (!existsSync(EXECUTABLE)) {
  usage(`no browser at ${EXECUTABLE}: install Debian's chromium (apt-get install chromium) or set CHROMIUM`);
}

const fileUrl = pathToFileURL(reportPath).href;
const failures = [];
const fail = (msg) => failures.push(msg);

// Static look at the file itself: a script tag anywhere, even one the parser
// would drop or that sits in an SVG, is a failure.
const source = readFileSync(reportPath, "utf8");
if (/<script\b/i.test(source)) fail("the file contains a <script element");

const sameDocument = (url) => url.split("#")[0] === fileUrl;

const args = ["--disable-dev-shm-usage"];
if (typeof process.getuid === "function" && process.getuid() === 0) args.push("--no-sandbox");

let browser;
try {
  browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args, timeout: 60_000 });
} catch (err) {
  console.error(`check-report: could not start ${EXECUTABLE}: ${err.message}`);
  process.exit(2);
}

let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, offline: true });
  const page = await context.newPage();

  page.on("console", (msg) => {
    const type = msg.type();
    if (type === "error" || type === "warning") {
      const loc = msg.location();
      const where = loc && loc.url ? ` (${loc.url}${loc.lineNumber ? `:${loc.lineNumber}` : ""})` : "";
      fail(`console ${type}: ${msg.text()}${where}`);
    }
  });
  page.on("pageerror", (err) => fail(`page error: ${err.message}`));
  page.on("crash", () => fail("the page crashed"));
  page.on("websocket", (ws) => fail(`websocket opened: ${ws.url()}`));
  // Every request but the file itself and data: URLs, in order, with why it
  // failed where it did (reported once each, after the page has loaded).
  const foreign = new Map();
  const isOwn = (url) => sameDocument(url) || url.startsWith("data:");
  page.on("request", (req) => {
    if (!isOwn(req.url())) foreign.set(req, { type: req.resourceType(), url: req.url(), why: null });
  });
  page.on("requestfailed", (req) => {
    const why = req.failure()?.errorText ?? "unknown error";
    if (foreign.has(req)) foreign.get(req).why = why;
    else fail(`request failed (${why}): ${req.url()}`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) fail(`HTTP ${res.status()} for ${res.url()}`);
  });
  // Never let a request leave the machine: answer anything not file:/data:
  // with an abort (the request event above has already recorded it).
  await context.route(/^(?!file:|data:)/, (route) => route.abort("blockedbyclient"));

  await page.goto(fileUrl, { waitUntil: "load", timeout: 30_000 });
  await page.evaluate(() => document.fonts.ready);

  const facts = await page.evaluate(
    ({ DRAWN }) => {
      const figures = [...document.querySelectorAll("figure.plot")];
      const plots = figures.map((fig, i) => {
        // Top-level svgs only: an svg nested in another is part of that plot.
        const svgs = [...fig.querySelectorAll("svg")].filter((s) => !s.parentElement.closest("svg"));
        const svg = svgs[0];
        const box = svg ? svg.getBoundingClientRect() : null;
        return {
          index: i + 1,
          name: fig.getAttribute("data-plot"),
          svgCount: svgs.length,
          // False under display:none, visibility:hidden, opacity:0 or a
          // closed <details> (whose box still has a size).
          visible: svg ? svg.checkVisibility({ opacityProperty: true, visibilityProperty: true }) : false,
          width: box ? box.width : 0,
          height: box ? box.height : 0,
          drawn: svg ? svg.querySelectorAll(DRAWN).length : 0,
          figcaption: !!fig.querySelector("figcaption"),
        };
      });
      const handlers = [];
      for (const el of document.querySelectorAll("*")) {
        for (const attr of el.attributes) {
          const name = attr.name.toLowerCase();
          if (name.startsWith("on")) handlers.push(`<${el.localName} ${attr.name}>`);
          else if (/^\s*javascript:/i.test(attr.value)) handlers.push(`<${el.localName} ${attr.name}="javascript:...">`);
        }
      }
      const h1 = document.querySelector("h1");
      return {
        dataPlots: document.body ? document.body.getAttribute("data-plots") : null,
        plots,
        h1: h1 ? h1.textContent.trim() : null,
        scripts: document.querySelectorAll("script").length,
        handlers,
        title: document.title,
        pageHeight: document.documentElement.scrollHeight,
      };
    },
    { DRAWN },
  );

  for (const r of foreign.values()) {
    const why = !r.why ? "" : r.why.includes("BLOCKED_BY_CLIENT") ? " (blocked by this check; a browser would fetch it)" : ` (${r.why})`;
    fail(`the page loads something besides itself: ${r.type} ${r.url}${why}`);
  }

  // data-plots against the figures on the page.
  const count = facts.plots.length;
  if (facts.dataPlots === null) {
    fail('<body> has no data-plots="N" attribute');
  } else if (!/^\d+$/.test(facts.dataPlots.trim())) {
    fail(`<body data-plots="${facts.dataPlots}"> is not a whole number`);
  } else if (Number(facts.dataPlots) !== count) {
    fail(`<body data-plots="${facts.dataPlots}"> but the page has ${count} figure.plot`);
  }
  if (count < MIN_PLOTS) fail(`only ${count} figure.plot on the page, expected at least ${MIN_PLOTS}`);

  const names = facts.plots.map((p) => p.name);
  for (const required of REQUIRED_PLOTS) {
    if (!names.includes(required)) fail(`no figure.plot with data-plot="${required}"`);
  }
  const seen = new Set();
  for (const p of facts.plots) {
    const label = p.name ? `plot "${p.name}"` : `figure.plot #${p.index} (no data-plot attribute)`;
    if (!p.name) fail(`${label}: missing data-plot name`);
    else if (seen.has(p.name)) fail(`${label}: the name is used twice`);
    seen.add(p.name);
    if (p.svgCount === 0) {
      fail(`${label}: no inline <svg>`);
      continue;
    }
    if (p.svgCount > 1) fail(`${label}: ${p.svgCount} <svg> elements, expected one`);
    if (!p.visible) fail(`${label}: svg is not visible when the page opens (display:none, visibility:hidden, opacity:0 or a closed <details>)`);
    if (!(p.width > MIN_SVG_PX && p.height > MIN_SVG_PX)) {
      fail(`${label}: svg is ${p.width.toFixed(0)}x${p.height.toFixed(0)} px on screen, expected more than ${MIN_SVG_PX}x${MIN_SVG_PX}`);
    }
    if (p.drawn === 0) fail(`${label}: svg draws nothing (no ${DRAWN})`);
    if (!p.figcaption) fail(`${label}: no <figcaption>`);
  }

  if (facts.h1 === null) fail("the page has no <h1>");
  else if (facts.h1 === "") fail("the page's <h1> is empty");
  if (facts.scripts > 0) fail(`the page has ${facts.scripts} <script> element(s)`);
  for (const h of facts.handlers) fail(`JavaScript in an attribute: ${h}`);

  // Screenshots, also on failure: they are what a person looks at first.
  mkdirSync(dirname(shotPath), { recursive: true });
  mkdirSync(dirname(topShotPath), { recursive: true });
  await page.screenshot({ path: shotPath, fullPage: true });
  await page.screenshot({ path: topShotPath, fullPage: false });

  console.log(`report:      ${reportPath}`);
  console.log(`title:       ${facts.title || "(none)"}`);
  console.log(`plots:       ${count} (data-plots=${facts.dataPlots}): ${names.join(", ")}`);
  console.log(`screenshots: ${shotPath} (full page, ${VIEWPORT.width}x${facts.pageHeight})`);
  console.log(`             ${topShotPath} (${VIEWPORT.width}x${VIEWPORT.height})`);
  console.log(`browser:     Chromium ${browser.version()}`);

  await context.close();
} catch (err) {
  fail(`could not check the page: ${err.message}`);
} finally {
  await browser.close();
}

if (failures.length > 0) {
  console.error(`\nFAILED: ${failures.length} problem(s) in ${reportPath}:`);
  for (const f of failures) console.error(`  - ${f}`);
  exitCode = 1;
} else {
  console.log("\nOK: every browser check passed");
}
process.exit(exitCode);
