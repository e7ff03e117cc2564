// First useful paint of the web inbox, for api/benches/list_mentions.rs (its only user).
//
// Signs in once through the page's form (Email, Password, Sign in) and waits for the inbox,
// to learn what the page keeps in sessionStorage; then opens `/#/inbox` PAINT_RUNS times
// (after one unmeasured navigation), each in a fresh browser context (empty cache) with that
// sessionStorage already set, and measures in the page the time from navigation start
// (performance.timeOrigin) to the animation frame in which the first mention row of the inbox
// table is visible (a table row with cells and a link, whose text contains EXPECT_TEXT: the
// newest mention). Also when the page's GET /v1/mentions had been answered (resource timing).
//
// Prints one JSON line: {"paintMs":[…],"listMs":[…],"firstRow":"…"} or {"error":"…"}.
// Env: BASE_URL (http://127.0.0.1:<port>), BENCH_EMAIL, BENCH_PASSWORD, PAINT_RUNS (5),
// EXPECT_TEXT (optional), CHROMIUM (/usr/bin/chromium). Each navigation has a deadline.

import { chromium } from 'playwright-core';

const base = (process.env.BASE_URL || '').replace(/\/$/, '');
const email = process.env.BENCH_EMAIL || '';
const password = process.env.BENCH_PASSWORD || '';
const runs = Number(process.env.PAINT_RUNS || 5);
const expectText = process.env.EXPECT_TEXT || '';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const NAVIGATION_DEADLINE_MS = 20_000;
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Runs in the page before its own scripts: records the first visible mention row.
function watchFirstRow(expected) {
  const rows = 'table tr, [role="table"] [role="row"], [role="grid"] [role="row"]';
  let done = false;
  const listed = () => {
    const entry = performance
      .getEntriesByType('resource')
      .find((e) => new URL(e.name).pathname === '/v1/mentions');
    return entry ? entry.responseEnd : null;
  };
  const check = () => {
    if (done) return;
    for (const row of document.querySelectorAll(rows)) {
      if (!row.querySelector('td, [role="cell"], [role="gridcell"]')) continue;
      if (!row.querySelector('a[href], [role="link"]')) continue;
      const text = row.textContent.replace(/\s+/g, ' ').trim();
      if (!text || (expected && !text.includes(expected))) continue;
      const box = row.getBoundingClientRect();
      const shown = row.checkVisibility
        ? row.checkVisibility({ opacityProperty: true, visibilityProperty: true })
        : row.getClientRects().length > 0;
      if (!shown || box.height === 0 || box.top >= innerHeight) continue;
      done = true;
      observer.disconnect();
      requestAnimationFrame(() => {
        window.__benchPaint = { paint: performance.now(), listed: listed(), text };
      });
      return;
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { childList: true, subtree: true, attributes: true, characterData: true });
  // Visibility can also change without a mutation (a stylesheet arriving): check every frame.
  const everyFrame = () => {
    check();
    if (!done) requestAnimationFrame(everyFrame);
  };
  requestAnimationFrame(everyFrame);
}

function setSession({ origin, storage }) {
  if (location.origin !== origin) return;
  for (const [key, value] of Object.entries(storage)) sessionStorage.setItem(key, value);
}

async function firstRow(page) {
  const handle = await page.waitForFunction(() => window.__benchPaint, null, {
    timeout: NAVIGATION_DEADLINE_MS,
    polling: 100,
  });
  return handle.jsonValue();
}

/// Why the page did not get there: its errors and what it shows.
async function diagnose(page, errors, what) {
  const shown = await page
    .evaluate(() => (document.body ? document.body.innerText : ''))
    .catch(() => '');
  const text = shown.replace(/\s+/g, ' ').trim().slice(0, 160);
  const problems = errors.length ? `; page errors: ${errors.slice(0, 2).join(' | ')}` : '';
  return `${what} within ${NAVIGATION_DEADLINE_MS / 1000} s (page shows: "${text}")${problems}`;
}

async function signIn(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e.message || e)));
  try {
    await context.addInitScript(watchFirstRow, expectText);
    await page.goto(`${base}/#/login`, { timeout: NAVIGATION_DEADLINE_MS });
    try {
      await page.getByLabel('Email', { exact: true }).fill(email, { timeout: NAVIGATION_DEADLINE_MS });
      await page.getByLabel('Password', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    } catch {
      throw new Error(await diagnose(page, errors, 'no sign-in form (Email, Password, Sign in)'));
    }
    try {
      await firstRow(page);
    } catch {
      throw new Error(await diagnose(page, errors, 'no mention row in the inbox after signing in'));
    }
    const storage = await page.evaluate(() => Object.fromEntries(Object.entries(sessionStorage)));
    if (Object.keys(storage).length === 0) {
      throw new Error('the page keeps nothing in sessionStorage once signed in');
    }
    return storage;
  } finally {
    await context.close();
  }
}

async function navigate(browser, storage) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e.message || e)));
  try {
    await context.addInitScript(setSession, { origin: new URL(base).origin, storage });
    await context.addInitScript(watchFirstRow, expectText);
    await page.goto(`${base}/#/inbox`, { waitUntil: 'commit', timeout: NAVIGATION_DEADLINE_MS });
    try {
      return await firstRow(page);
    } catch {
      throw new Error(await diagnose(page, errors, 'no mention row at /#/inbox'));
    }
  } finally {
    await context.close();
  }
}

async function main() {
  if (!base || !email || !password || !(runs >= 1)) {
    return { error: 'bench-paint.mjs needs BASE_URL, BENCH_EMAIL, BENCH_PASSWORD and PAINT_RUNS >= 1' };
  }
  let browser;
  try {
    browser = await chromium.launch({ executablePath, args: ARGS, headless: true });
  } catch (e) {
    return { error: `cannot start Chromium (${executablePath}): ${String(e.message || e).split('\n')[0]}` };
  }
  try {
    const storage = await signIn(browser);
    await navigate(browser, storage);
    const paintMs = [];
    const listMs = [];
    let firstRowText = '';
    for (let i = 0; i < runs; i += 1) {
      const seen = await navigate(browser, storage);
      paintMs.push(Math.round(seen.paint * 10) / 10);
      if (seen.listed !== null) listMs.push(Math.round(seen.listed * 10) / 10);
      firstRowText = seen.text;
    }
    return { paintMs, listMs, firstRow: firstRowText.slice(0, 120) };
  } catch (e) {
    return { error: String(e.message || e).split('\n')[0] };
  } finally {
    await browser.close();
  }
}

console.log(JSON.stringify(await main()));
