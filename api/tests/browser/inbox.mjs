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
//   brand-inbox     an agent of one brand sees only its mentions, named on each row, no brand
//                   filter, and Assign to offers only that brand's users (and admins); an admin
//                   narrows the inbox to that brand with the brand filter, and on its mention
//                   is offered only that brand's users (and admins) too
//   brand-admin     an admin adds a brand (Profile-Key, platforms), edits its name and
//                   platforms, disables it, and sees the API's message for a duplicate name;
//                   the Profile-Key is never on the page
//
// Prints one JSON line: {"ok":true,…} (facts the Rust side checks further) or {"error":"…",
// "screenshots":[…]}, and exits 1 on an error. Every page open when a scenario fails is saved
// as a PNG in SCREENSHOT_DIR.
// Env: BASE_URL, SIM_URL, AGENT_EMAIL, AGENT_NAME, AGENT2_EMAIL, AGENT2_NAME, PASSWORD,
// ADMIN_EMAIL, PLATFORM (the one to filter by), TOTAL (mentions ingested), SCREENSHOT_DIR, CHROMIUM (/usr/bin/chromium);
// brand-inbox also BRAND_NAME, BRAND_TOTAL (its mentions), BRAND_AGENT_EMAIL, BRAND_AGENT2_NAME.

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

const scenarios = {
  reply,
  'reply-failed': replyFailed,
  live,
  presence,
  admin,
  'wrong-password': wrongPassword,
  'brand-inbox': brandInbox,
  'brand-admin': brandAdmin,
};

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
    const texts = rows.map((row) => row.cells[4].textContent.toLowerCase());
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
  // The unsearched first page is back before the next filter, so that the rows the next wait
  // sees are not the search's (a single row of the platform would pass it).
  await waitForRows(page, Math.min(seen, 50));

  const platform = env('PLATFORM');
  await page.getByLabel('Platform').selectOption(platform);
  await page.waitForFunction(
    (p) => {
      const rows = [...document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]')];
      return rows.length > 0 && rows.every((row) => row.cells[1].textContent === p);
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
  const comment = mentionRows(page).filter({ has: page.locator('td:nth-child(3)', { hasText: /^(comment|reply)$/ }) });
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

async function brandInbox(browser) {
  const brand = env('BRAND_NAME');
  const total = Number(env('BRAND_TOTAL'));
  const page = await newPage(browser, 'brand-agent');
  await signIn(page, env('BRAND_AGENT_EMAIL'));
  await waitForRows(page, total);
  await countSays(page, total, false);
  const rows = await mentionRows(page).evaluateAll((all) => all.map((row) => ({ id: row.dataset.id, brand: row.cells[0].textContent })));
  const others = rows.filter((row) => row.brand !== brand);
  if (others.length) throw new Error(`rows of another brand (or unnamed): ${JSON.stringify(others)}`);
  // (A labelled select's name includes its chosen option: "Brand All brands".)
  const own = page.getByLabel('Brand');
  if ((await own.count()) !== 1) throw new Error('the inbox has no brand filter to hide');
  if (await own.isVisible()) throw new Error(`an agent of one brand is offered a brand filter: ${await own.locator('option').allTextContents()}`);

  await mentionRows(page).first().getByRole('link').click();
  await page.getByRole('link', { name: 'Back to inbox' }).waitFor();
  const mentionId = page.url().split('/').pop();
  await page.getByRole('region', { name: 'Mention' }).getByText(brand, { exact: true }).waitFor();
  await page.waitForFunction(() => !document.querySelector('select:disabled'));
  const assign = page.getByLabel('Assign to');
  const offered = await assign.locator('option').allTextContents();
  await assign.selectOption({ label: env('BRAND_AGENT2_NAME') });
  await page.getByRole('list', { name: 'Audit trail' }).getByText('mention.assigned').waitFor();

  // An admin sees every brand: the filter offers them, and narrows the inbox to one.
  const admin = await newPage(browser, 'admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await waitForRows(admin, total + 1);
  const filter = admin.getByLabel('Brand');
  const adminBrands = await filter.locator('option').allTextContents();
  await filter.selectOption({ label: brand });
  await admin.waitForFunction(
    ([b, n]) => {
      const shown = [...document.querySelectorAll('table[aria-label="Mentions"] tbody tr[data-id]')];
      return shown.length === n && shown.every((row) => row.cells[0].textContent === b);
    },
    [brand, total],
  );
  const adminIds = await mentionRows(admin).evaluateAll((all) => all.map((row) => row.dataset.id));
  // The admin sees every user, yet Assign to offers only the mention's brand's (and admins).
  await mentionRows(admin).first().getByRole('link').click();
  await admin.getByRole('link', { name: 'Back to inbox' }).waitFor();
  await admin.waitForFunction(() => !document.querySelector('select:disabled'));
  const adminOffered = await admin.getByLabel('Assign to').locator('option').allTextContents();
  return {
    ok: true,
    ids: rows.map((row) => row.id),
    rowBrands: [...new Set(rows.map((row) => row.brand))],
    mentionId,
    offered,
    adminBrands,
    adminIds,
    adminOffered,
  };
}

async function brandAdmin(browser) {
  const page = await newPage(browser, 'admin');
  await signIn(page, env('ADMIN_EMAIL'));
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Brands' }).click();
  const table = page.getByRole('table', { name: 'Brands' });
  await table.getByRole('cell', { name: 'Default', exact: true }).waitFor();
  const cellsOf = (row) => row.locator('td').allTextContents();

  const key = `pk-${Date.now()}-never-shown`;
  const form = page.getByRole('form', { name: 'New brand' });
  await form.getByLabel('Name', { exact: true }).fill('Globex');
  await form.getByLabel('Profile-Key (optional)').fill(key);
  await form.getByLabel('Every platform').uncheck();
  await form.getByLabel('twitter', { exact: true }).check();
  await form.getByRole('button', { name: 'Create brand' }).click();
  await page.getByRole('status').getByText('Created Globex.').waitFor();
  const created = table.locator('tr[data-id]', { has: page.getByRole('cell', { name: 'Globex', exact: true }) });
  const id = await created.getAttribute('data-id');
  const row = table.locator(`tr[data-id="${id}"]`);
  const [, platforms, hasKey, status] = await cellsOf(row);
  if (platforms !== 'twitter' || hasKey !== 'yes' || status !== 'active') {
    throw new Error(`the new brand shows ${JSON.stringify({ platforms, hasKey, status })}`);
  }
  if (await form.getByLabel('Profile-Key (optional)').inputValue()) throw new Error('the Profile-Key stays in the form');

  await row.getByRole('button', { name: /^Edit/ }).click();
  const edit = page.getByRole('form', { name: 'Edit brand' });
  await edit.waitFor();
  if (await edit.getByLabel(/^New Profile-Key/).inputValue()) throw new Error('the Profile-Key is prefilled');
  if (!(await edit.getByLabel('twitter', { exact: true }).isChecked())) throw new Error('the brand\'s platforms are not shown');
  await edit.getByLabel('Name', { exact: true }).fill('Globex Retail');
  await edit.getByLabel('facebook', { exact: true }).check();
  await edit.getByRole('button', { name: 'Save brand' }).click();
  await page.getByRole('status').getByText('Saved Globex Retail.').waitFor();
  await row.getByRole('cell', { name: 'Globex Retail', exact: true }).waitFor();
  const renamed = await cellsOf(row);
  if (renamed[1] !== 'facebook, twitter' && renamed[1] !== 'twitter, facebook') throw new Error(`platforms shown: ${renamed[1]}`);

  await row.getByRole('button', { name: 'Disable', exact: true }).click();
  await row.getByRole('button', { name: 'Enable', exact: true }).waitFor();
  const disabled = (await cellsOf(row))[3];
  if (disabled !== 'disabled') throw new Error(`the disabled brand shows "${disabled}"`);

  // The same name again (names are unique whatever their case): the API's message.
  // (With a Profile-Key of its own, so that the name is all it shares.)
  const duplicate = 'globex retail';
  await form.getByLabel('Name', { exact: true }).fill(duplicate);
  await form.getByLabel('Profile-Key (optional)').fill(`other-${Date.now()}`);
  await form.getByRole('button', { name: 'Create brand' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  const message = (await alert.textContent()).trim();
  const named = await table.locator('tr[data-id]').evaluateAll((all) => all.filter((r) => /globex/i.test(r.cells[0].textContent)).length);
  if (named !== 1) throw new Error(`${named} rows named Globex after the duplicate`);

  const keyShown = await page.evaluate(
    (k) => document.documentElement.outerHTML.includes(k) || [...document.querySelectorAll('input')].some((input) => input.value.includes(k)),
    key,
  );
  if (keyShown) throw new Error('the Profile-Key is on the page');
  return { ok: true, id, name: 'Globex Retail', duplicate, message, key };
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
