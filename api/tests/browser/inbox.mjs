// Real-browser scenarios of the web inbox, run by the api crate's `web` test target
// (api/tests/web/main.rs), which starts the simulator, api, ingestor and replier and creates
// the users. One scenario per run: `node inbox.mjs <scenario>`.
//
//   reply           sign in, see the ingested mentions (Load more until all are shown), search,
//                   filter by platform, open one with the keyboard, assign it, reply, see
//                   `sent`, then find it under `Mine`
//   reply-failed    a reply the provider refuses shows `failed` with the provider's message
//   live            a comment posted to the simulator shows up in the open inbox within 5 s,
//                   without a reload
//   presence        two agents on the same mention each see `<other> is viewing`, then
//                   `<other> is replying` while the other types
//   admin           create a user, change its role, disable it; retry a dead task; read the
//                   breakers, the budget by class and the ingest freshness
//   wrong-password  a wrong password is a visible message and signs nobody in
//
// Prints one JSON line: {"ok":true,…} (facts the Rust side checks further) or {"error":"…",
// "screenshots":[…]}, and exits 1 on an error. Every page open when a scenario fails is saved
// as a PNG in SCREENSHOT_DIR.
// Env: BASE_URL, SIM_URL, AGENT_EMAIL, AGENT_NAME, AGENT2_EMAIL, AGENT2_NAME, PASSWORD,
// ADMIN_EMAIL, PLATFORM (the one to filter by), TOTAL (mentions ingested), SCREENSHOT_DIR, CHROMIUM (/usr/bin/chromium).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`inbox.mjs needs ${name}`);
  return value;
};
const base = env('BASE_URL').replace(/\/$/, '');
const STEP_MS = 15_000;
const LIVE_MS = 5_000;
const SENT_MS = 60_000;

const scenarios = { reply, 'reply-failed': replyFailed, live, presence, admin, 'wrong-password': wrongPassword };

/** Pages of the running scenario, for the screenshots of a failure. */
const pages = [];

async function newPage(browser, label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e.message || e)));
  pages.push({ page, label, errors });
  return page;
}

async function signIn(page, email) {
  await page.goto(`${base}/`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(env('PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Inbox' }).waitFor();
}

const mentionRows = (page) => page.getByRole('table', { name: 'Mentions' }).locator('tbody tr[data-id]');

async function waitForRows(page, min) {
  await page.waitForFunction(
    (n) => document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]').length >= n,
    min,
    { timeout: 60_000 },
  );
  return mentionRows(page).count();
}

const rowCount = (page) =>
  page.evaluate(() => document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]').length);

async function reply(browser) {
  const page = await newPage(browser, 'agent');
  await signIn(page, env('AGENT_EMAIL'));
  const total = Number(env('TOTAL'));
  const firstPage = await waitForRows(page, Math.min(total, 50));
  await countSays(page, firstPage, total > firstPage);

  // The rest through the keyset cursor, without duplicates.
  const more = page.getByRole('button', { name: 'Load more' });
  while (await more.isVisible()) {
    const before = await rowCount(page);
    await more.click();
    await page.waitForFunction((n) => document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]').length > n, before);
  }
  const seen = await rowCount(page);
  const ids = await mentionRows(page).evaluateAll((rows) => rows.map((row) => row.dataset.id));
  if (new Set(ids).size !== ids.length) throw new Error('Load more repeated rows');
  await countSays(page, seen, false);

  // Search for a word some rows hold: every row shown then holds it (or a form of it:
  // the search stems words, so its first four letters are checked).
  const word = await mentionRows(page).evaluateAll((rows) => {
    const texts = rows.map((row) => row.cells[3].textContent.toLowerCase());
    const words = texts.flatMap((text) => text.split(/[^a-z]+/)).filter((w) => w.length > 5);
    return words.find((w) => texts.filter((text) => text.includes(w)).length < texts.length);
  });
  if (!word) throw new Error('no word to search for');
  await page.getByRole('searchbox', { name: 'Search' }).fill(word);
  await page.waitForFunction(
    (stem) => {
      const rows = [...document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]')];
      return rows.length > 0 && rows.every((row) => row.textContent.toLowerCase().includes(stem));
    },
    word.slice(0, 4),
  );
  const found = await rowCount(page);
  if (found >= seen) throw new Error(`searching "${word}" kept all ${seen} rows`);
  await page.getByRole('searchbox', { name: 'Search' }).fill('');

  const platform = env('PLATFORM');
  await page.getByLabel('Platform').selectOption(platform);
  await page.waitForFunction(
    (p) => {
      const rows = [...document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]')];
      return rows.length > 0 && rows.every((row) => row.cells[0].textContent === p);
    },
    platform,
  );
  const filtered = await mentionRows(page).count();
  if (await more.isVisible()) throw new Error('a filtered page of fewer than 50 offers Load more');

  // Keyboard only: Escape leaves the filters, `j` focuses the first row's link, Enter opens it.
  await page.getByLabel('Platform').focus();
  await page.keyboard.press('Escape');
  await page.keyboard.press('j');
  const link = mentionRows(page).first().getByRole('link');
  const content = await link.textContent();
  await page.keyboard.press('Enter');
  await page.getByRole('link', { name: 'Back to inbox' }).waitFor();
  const mentionId = page.url().split('/').pop();

  const assign = page.getByLabel('Assign to');
  await page.waitForFunction(() => !document.querySelector('select:disabled'));
  await assign.selectOption({ label: `${env('AGENT_NAME')} (me)` });
  await page.getByRole('list', { name: 'Audit trail' }).getByText('mention.assigned').waitFor();

  await page.getByRole('button', { name: 'Reply', exact: true }).click();
  await page.waitForSelector('button[aria-pressed="true"]');
  const pressed = await page.getByRole('button', { name: 'Reply', exact: true }).getAttribute('aria-pressed');
  if (pressed !== 'true') throw new Error('the Reply disposition is not shown as chosen');

  const text = `Thanks for writing, we are on it (${Date.now()})`;
  await page.getByLabel('Reply text').fill(text);
  await page.getByRole('button', { name: 'Send reply' }).click();
  const status = page.getByRole('status', { name: 'Reply status' });
  const statuses = new Set();
  const deadline = Date.now() + SENT_MS;
  for (;;) {
    const now = (await status.textContent()).trim();
    if (now) statuses.add(now.split(':')[0]);
    if (now === 'sent') break;
    if (now.startsWith('failed')) throw new Error(`the reply failed: ${now}`);
    if (Date.now() > deadline) throw new Error(`the reply status is "${now}" after ${SENT_MS / 1000} s`);
    await page.waitForTimeout(100);
  }
  await page.getByRole('list', { name: 'Thread' }).getByText(text).waitFor();

  // Back in the inbox (the platform filter kept), `Mine` shows just this one, replied.
  await page.getByRole('link', { name: 'Back to inbox' }).click();
  await page.getByLabel('Mine').check();
  await page.waitForFunction(
    (id) => {
      const rows = [...document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]')];
      return rows.length === 1 && rows[0].dataset.id === id && rows[0].textContent.includes('replied');
    },
    mentionId,
  );
  const mineRow = (await mentionRows(page).first().textContent()).replace(/\s+/g, ' ');
  if (!mineRow.includes(env('AGENT_NAME'))) throw new Error(`the row does not name the assignee: ${mineRow}`);
  await page.getByLabel('Unassigned').check();
  await page.waitForFunction((n) => document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]').length === n, filtered);
  return { ok: true, seen, found, word, filtered, mentionId, content, reply: text, statuses: [...statuses] };
}

/** The row count above the table says `n` mentions are shown (and whether more can load). */
async function countSays(page, n, more) {
  const text = await page.locator('.count').textContent();
  const expected = `${n} mentions shown${more ? ', more to load' : ''}`;
  if (text !== expected) throw new Error(`the row count says "${text}", expected "${expected}"`);
}

async function replyFailed(browser) {
  const page = await newPage(browser, 'agent');
  await signIn(page, env('AGENT_EMAIL'));
  await waitForRows(page, 1);
  const comment = mentionRows(page).filter({ has: page.locator('td:nth-child(2)', { hasText: /^(comment|reply)$/ }) });
  await comment.first().getByRole('link').click();
  await page.getByRole('link', { name: 'Back to inbox' }).waitFor();
  const mentionId = page.url().split('/').pop();
  await page.getByLabel('Reply text').fill('This one the network refuses');
  await page.getByRole('button', { name: 'Send reply' }).click();
  const status = page.getByRole('status', { name: 'Reply status' });
  await status.getByText(/^failed/).waitFor({ timeout: SENT_MS });
  return { ok: true, mentionId, status: (await status.textContent()).trim() };
}

async function live(browser) {
  const page = await newPage(browser, 'agent');
  await signIn(page, env('AGENT_EMAIL'));
  await waitForRows(page, Math.min(Number(env('TOTAL')), 50));
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  await page.locator('.sync').getByText('Live').waitFor();

  const sim = env('SIM_URL').replace(/\/$/, '');
  const world = await (await fetch(`${sim}/_sim/comments`)).json();
  const platform = env('PLATFORM');
  const post = world.comments.find((c) => c.platform === platform).postId;
  const content = `Is the blue one back in stock? (${Date.now()})`;
  const posted = Date.now();
  const answer = await fetch(`${sim}/_sim/comments`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ platform, postId: post, content, author: 'Live Customer' }),
  });
  if (!answer.ok) throw new Error(`the simulator refused the comment: ${answer.status} ${await answer.text()}`);
  await page.getByRole('link', { name: content }).waitFor({ timeout: LIVE_MS });
  const elapsedMs = Date.now() - posted;
  const reloaded = !(await page.evaluate(() => window.__sameDocument === true));
  if (reloaded) throw new Error('the page reloaded to show the new comment');
  return { ok: true, content, elapsedMs };
}

async function presence(browser) {
  const first = await newPage(browser, 'agent-1');
  const second = await newPage(browser, 'agent-2');
  await signIn(first, env('AGENT_EMAIL'));
  await waitForRows(first, 1);
  await mentionRows(first).first().getByRole('link').click();
  await first.getByRole('link', { name: 'Back to inbox' }).waitFor();
  const url = first.url();

  await signIn(second, env('AGENT2_EMAIL'));
  await second.goto(url);
  await second.getByRole('link', { name: 'Back to inbox' }).waitFor();

  const others = (page) => page.getByRole('status', { name: 'Others here' });
  await others(first).getByText(`${env('AGENT2_NAME')} is viewing`).waitFor();
  await others(second).getByText(`${env('AGENT_NAME')} is viewing`).waitFor();
  await second.getByLabel('Reply text').pressSequentially('Looking into', { delay: 20 });
  await others(first).getByText(`${env('AGENT2_NAME')} is replying`).waitFor();
  return { ok: true, mentionUrl: url };
}

async function admin(browser) {
  const page = await newPage(browser, 'admin');
  await signIn(page, env('ADMIN_EMAIL'));
  const nav = page.getByRole('navigation', { name: 'Main' });

  await nav.getByRole('link', { name: 'Users' }).click();
  const email = `cy-${Date.now()}@example.com`;
  const form = page.getByRole('form', { name: 'New user' });
  await form.getByLabel('Name').fill('Cy Agent');
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(env('PASSWORD'));
  await form.getByLabel('Role').selectOption('agent');
  await form.getByRole('button', { name: 'Create user' }).click();
  const row = page.locator(`tr[data-email="${email}"]`);
  await row.waitFor();
  await page.getByLabel(`Role for ${email}`).selectOption('admin');
  await row.getByRole('button', { name: 'Disable', exact: true }).click();
  await row.getByRole('button', { name: 'Enable', exact: true }).waitFor();
  if (!(await row.textContent()).includes('disabled')) throw new Error('the disabled user is not shown as disabled');
  if ((await page.getByLabel(`Role for ${email}`).inputValue()) !== 'admin') throw new Error('the role change is not shown');

  await nav.getByRole('link', { name: 'Tasks' }).click();
  const dead = page.getByRole('list', { name: 'Dead tasks' }).locator('li[data-id]');
  await dead.first().waitFor();
  const retried = await dead.first().getAttribute('data-id');
  const error = await dead.first().textContent();
  if (!error.includes('provider kept failing')) throw new Error(`the dead task does not show its error: ${error}`);
  await dead.first().getByRole('button', { name: 'Retry', exact: true }).click();
  await page.getByRole('status').getByText('queued again').waitFor();
  await page.waitForFunction((id) => !document.querySelector(`li[data-id="${id}"]`), retried);

  await nav.getByRole('link', { name: 'Status' }).click();
  const platforms = page.getByRole('table', { name: 'Platforms' });
  await platforms.getByRole('row', { name: /twitter/ }).getByText('closed').waitFor();
  await platforms.getByRole('row', { name: /facebook/ }).getByText('closed').waitFor();
  const budget = page.getByRole('region', { name: 'Budget of default' });
  await budget.getByText(/discover: \d+ used/).waitFor();
  await budget.getByText(/reply: \d+ used/).waitFor();
  await page.getByText('Webhooks are off (no WEBHOOK_SECRET): every platform is polled.').waitFor();
  const freshness = await platforms.getByRole('row', { name: /twitter/ }).textContent();
  if (freshness.includes('never')) throw new Error(`no ingest time for twitter: ${freshness}`);
  return { ok: true, created: email, retried };
}

async function wrongPassword(browser) {
  const page = await newPage(browser, 'visitor');
  await page.goto(`${base}/`);
  await page.getByLabel('Email', { exact: true }).fill(env('AGENT_EMAIL'));
  await page.getByLabel('Password', { exact: true }).fill('not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.getByText('Wrong email or password').waitFor();
  if (!(await alert.isVisible())) throw new Error('the wrong-password message is not visible');
  const stored = await page.evaluate(() => sessionStorage.length);
  if (stored) throw new Error('a failed sign-in stored a session');
  if (await page.getByRole('heading', { name: 'Inbox' }).count()) throw new Error('the inbox opened');
  return { ok: true, message: (await alert.textContent()).trim() };
}

async function screenshots(name) {
  const dir = env('SCREENSHOT_DIR');
  mkdirSync(dir, { recursive: true });
  const saved = [];
  for (const { page, label } of pages) {
    const path = join(dir, `${name}-${label}.png`);
    try {
      await page.screenshot({ path, fullPage: true });
      saved.push(path);
    } catch {
      // A crashed page has nothing to show.
    }
  }
  return saved;
}

async function main() {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) return { error: `unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}` };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    return await scenario(browser);
  } catch (e) {
    const errors = pages.flatMap((p) => p.errors.map((error) => `${p.label}: ${error}`));
    return {
      error: String(e.message || e).split('\n').slice(0, 4).join(' | '),
      pageErrors: errors,
      screenshots: await screenshots(name),
    };
  } finally {
    await browser.close();
  }
}

const result = await main();
console.log(JSON.stringify(result));
process.exitCode = result.ok ? 0 : 1;
