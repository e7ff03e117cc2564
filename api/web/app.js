// The web inbox: one ES module of our own, no dependencies, no build step (see api/src/web.rs).
//
// It signs in with `POST /v1/users/login`, keeps the token in the tab's session storage and
// then uses `/v1` like every other client. Views are hash routes (#/login, #/inbox,
// #/mentions/<id>, #/admin/users, #/admin/brands, #/admin/tasks, #/admin/status); the DOM is built with
// createElement and textContent only, so nothing the provider sends is ever parsed as HTML.
// Live updates come from `GET /v1/events`, read as a fetch stream (EventSource cannot send a
// bearer token), resumed with `Last-Event-ID` after a drop.

const SESSION_KEY = 'sm.session';
const PLATFORMS = ['bluesky', 'facebook', 'instagram', 'linkedin', 'threads', 'tiktok', 'twitter', 'youtube'];
const STATES = ['new', 'assignment', 'reply_attempt', 'provider_error', 'replied'];
const DISPOSITIONS = [['reply', 'Reply'], ['ignore', 'Ignore'], ['escalate', 'Escalate']];
const PAGE_SIZE = 50;
const CONTENT_PREVIEW = 140;
const PRESENCE_EVERY_MS = 5000;
const PRESENCE_EXPIRES_MS = 15000;
const TYPING_COUNTS_MS = 6000;
const SEARCH_DEBOUNCE_MS = 300;
const LIVE_REFRESH_DEBOUNCE_MS = 250;
const REPLY_POLL_MS = 2000;
const HEALTH_POLL_MS = 30000;
const RECONNECT_MAX_MS = 10000;

const root = document.getElementById('app');

// ---- DOM ----------------------------------------------------------------------------------

/** An element: `attrs` become properties (or attributes for aria-*, data-*, role, for);
 *  children are nodes or strings (as text), falsy ones skipped. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key.startsWith('aria-') || key.startsWith('data-') || key === 'role' || key === 'for') {
      node.setAttribute(key, String(value));
    } else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return node;
}

/** A labelled control: `<label>text <control></label>`, so the control's name is the text. */
function labelled(text, control) {
  return h('label', { className: 'field' }, h('span', {}, text), control);
}

function select(options, value, attrs = {}) {
  const node = h('select', attrs, options.map(([v, text]) => h('option', { value: v }, text)));
  node.value = value;
  return node;
}

/** Where a view says what went wrong (hidden while nothing did). */
function alertBox() {
  return h('p', { role: 'alert', className: 'alert', hidden: true });
}

function show(box, message) {
  box.textContent = message || '';
  box.hidden = !message;
}

function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function truncate(text, max) {
  const flat = (text || '').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function authorName(author) {
  if (!author) return 'unknown';
  return author.name || (author.handle ? `@${author.handle}` : author.id || 'unknown');
}

// ---- Session and API ------------------------------------------------------------------------

let session = readSession();

function readSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return saved && saved.token && saved.user ? saved : null;
  } catch {
    return null;
  }
}

function saveSession(value) {
  session = value;
  if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION_KEY);
}

class ApiError extends Error {
  constructor(status, problem, headers) {
    super((problem && problem.detail) || `The server answered ${status}.`);
    this.status = status;
    this.code = problem && problem.code;
    this.problem = problem || {};
    this.retryAfter = Number(headers.get('retry-after')) || null;
  }
}

/** Calls `/v1…`: JSON in and out; a problem answer throws ApiError; 401 signs out. */
async function api(path, { method = 'GET', body, headers = {}, signal } = {}) {
  const sent = { ...headers };
  if (session) sent.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { detail: 'The server cannot be reached. Check the connection and try again.' }, new Headers());
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401 && session && path !== '/v1/users/login') {
      signedOut('Your session has ended. Sign in again.');
    }
    throw new ApiError(response.status, data, response.headers);
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// ---- Users (for names and the Assign to select) -----------------------------------------

let users = null;

async function loadUsers(force = false) {
  if (!users || force) {
    const list = await api('/v1/users');
    users = new Map(list.map((user) => [user.id, user]));
  }
  return users;
}

function userName(id) {
  if (!id) return 'Unassigned';
  const user = users && users.get(id);
  return user ? user.name : 'someone else';
}

// ---- Brands (for names on rows and the brand filter) ------------------------------------

/** The brands this user sees (an agent: their own; an admin: all), by id. */
let brands = null;

/** `GET /v1/brands`: a page (`{result, meta}`, followed through `meta.nextCursor`) or an array. */
async function loadBrands(force = false) {
  if (!brands || force) {
    const list = [];
    let cursor = null;
    do {
      const page = await api(`/v1/brands${query({ cursor })}`);
      if (Array.isArray(page)) {
        list.push(...page);
        cursor = null;
      } else {
        list.push(...page.result);
        cursor = (page.meta && page.meta.nextCursor) || null;
      }
    } while (cursor);
    brands = new Map(list.map((brand) => [brand.id, brand]));
  }
  return brands;
}

function brandName(id) {
  const brand = brands && brands.get(id);
  return brand ? brand.name : '—';
}

// ---- Live events --------------------------------------------------------------------------

/** The one event stream of a signed-in tab: views subscribe while they are shown. */
const live = {
  listeners: new Set(),
  lastId: null,
  state: 'connecting',
  controller: null,
  retryMs: 1000,

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  },

  emit(event) {
    for (const listener of [...this.listeners]) listener(event);
  },

  setState(state) {
    this.state = state;
    this.emit({ type: 'connection', state });
  },

  start() {
    if (this.controller) return;
    this.controller = new AbortController();
    this.run(this.controller.signal);
  },

  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.lastId = null;
  },

  async run(signal) {
    while (!signal.aborted && session) {
      try {
        await this.read(signal);
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status === 401) return;
      }
      if (signal.aborted) return;
      this.setState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    }
  },

  async read(signal) {
    const headers = { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' };
    if (this.lastId !== null) headers['Last-Event-ID'] = this.lastId;
    const response = await fetch('/v1/events', { headers, signal, cache: 'no-store' });
    if (!response.ok) {
      if (response.status === 401) signedOut('Your session has ended. Sign in again.');
      throw new ApiError(response.status, null, response.headers);
    }
    this.retryMs = 1000;
    this.setState('live');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  },

  dispatch(block) {
    let name = 'message';
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
    if (id !== null) this.lastId = id;
    let payload = null;
    try {
      payload = data.length ? JSON.parse(data.join('\n')) : null;
    } catch {
      return;
    }
    this.emit({ type: name, data: payload });
  },
};

// ---- Routing and layout -------------------------------------------------------------------

let leaveView = () => {};

function signedOut(message) {
  live.stop();
  saveSession(null);
  users = null;
  brands = null;
  loginMessage = message || '';
  if (location.hash !== '#/login') location.hash = '#/login';
  else render();
}

let loginMessage = '';

function route() {
  const hash = location.hash.replace(/^#/, '') || '/inbox';
  const mention = hash.match(/^\/mentions\/([0-9a-fA-F-]{36})$/);
  if (mention) return { view: 'mention', id: mention[1] };
  const admin = hash.match(/^\/admin\/(users|brands|tasks|status)$/);
  if (admin) return { view: admin[1] };
  if (hash === '/login') return { view: 'login' };
  return { view: 'inbox' };
}

function render() {
  leaveView();
  leaveView = () => {};
  const where = route();
  if (!session) {
    if (where.view !== 'login') {
      location.hash = '#/login';
      return;
    }
    root.replaceChildren(loginView());
    return;
  }
  if (where.view === 'login') {
    location.hash = '#/inbox';
    return;
  }
  live.start();
  const main = h('div', { className: 'view' });
  root.replaceChildren(header(where.view), main);
  const views = { inbox: inboxView, mention: mentionView, users: usersView, brands: brandsView, tasks: tasksView, status: statusView };
  leaveView = views[where.view](main, where) || (() => {});
}

function header(current) {
  const link = (view, href, text) =>
    h('a', { href, 'aria-current': current === view ? 'page' : undefined }, text);
  const admin = session.user.role === 'admin';
  return h(
    'header',
    { className: 'top' },
    h('strong', { className: 'brand' }, 'Social Messages'),
    h(
      'nav',
      { 'aria-label': 'Main' },
      link('inbox', '#/inbox', 'Inbox'),
      admin && link('users', '#/admin/users', 'Users'),
      admin && link('brands', '#/admin/brands', 'Brands'),
      admin && link('tasks', '#/admin/tasks', 'Tasks'),
      admin && link('status', '#/admin/status', 'Status'),
    ),
    h('span', { className: 'who' }, `${session.user.name} (${session.user.role})`),
    h('button', { type: 'button', onclick: signOut }, 'Sign out'),
  );
}

async function signOut() {
  try {
    await api('/v1/users/logout', { method: 'POST' });
  } catch {
    // Signed out here either way; the token expires by itself.
  }
  signedOut('');
}

// ---- Sign in ------------------------------------------------------------------------------

function loginView() {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const message = alertBox();
  const button = h('button', { type: 'submit' }, 'Sign in');
  show(message, loginMessage);
  loginMessage = '';
  const form = h(
    'form',
    { className: 'login', 'aria-label': 'Sign in', noValidate: true },
    h('h1', {}, 'Sign in to Social Messages'),
    labelled('Email', email),
    labelled('Password', password),
    message,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!email.value.trim() || !password.value) {
      show(message, 'Enter your email and password.');
      return;
    }
    button.disabled = true;
    show(message, '');
    try {
      const out = await api('/v1/users/login', {
        method: 'POST',
        body: { email: email.value.trim(), password: password.value },
      });
      saveSession({ token: out.token, user: out.user });
      location.hash = '#/inbox';
    } catch (e) {
      password.value = '';
      show(message, loginFailure(e));
      password.focus();
    } finally {
      button.disabled = false;
    }
  });
  setTimeout(() => email.focus());
  return form;
}

function loginFailure(e) {
  if (e.status === 401) return 'Wrong email or password.';
  if (e.status === 429) {
    const wait = e.retryAfter ? ` Try again in ${e.retryAfter} s.` : ' Try again later.';
    return `Too many failed sign-ins.${wait}`;
  }
  if (e.status === 403) return 'This account is disabled. Ask an admin to enable it.';
  return e.message;
}

// ---- Inbox --------------------------------------------------------------------------------

/** Filters survive going to a mention and back (not a reload). */
const filters = { brand: '', platform: '', state: '', mine: false, unassigned: false, q: '' };

function inboxView(main) {
  // Filled once the brands are read; shown only to someone who sees more than one.
  const brand = select([['', 'All brands']], '');
  const brandField = labelled('Brand', brand);
  brandField.hidden = true;
  const platform = select([['', 'All platforms'], ...PLATFORMS.map((p) => [p, p])], filters.platform);
  const state = select([['', 'All states'], ...STATES.map((s) => [s, s.replace('_', ' ')])], filters.state);
  const mine = h('input', { type: 'checkbox', checked: filters.mine });
  const unassigned = h('input', { type: 'checkbox', checked: filters.unassigned });
  const search = h('input', { type: 'search', value: filters.q, placeholder: 'words, "a phrase", -not' });
  const count = h('p', { className: 'count', 'aria-live': 'polite' });
  const sync = h('p', { className: 'sync', 'aria-label': 'Sync state' });
  const message = alertBox();
  const body = h('tbody');
  const table = h(
    'table',
    { className: 'mentions', 'aria-label': 'Mentions' },
    h('thead', {}, h('tr', {}, ['Brand', 'Platform', 'Type', 'Author', 'Content', 'State', 'Disposition', 'Assignee', 'Received'].map((c) => h('th', { scope: 'col' }, c)))),
    body,
  );
  const more = h('button', { type: 'button', hidden: true }, 'Load more');

  let rows = [];
  let cursor = null;
  let generation = 0;
  let lastIngest = null;

  const params = (after) =>
    query({
      brandId: filters.brand,
      platform: filters.platform,
      state: filters.state,
      userId: filters.mine ? session.user.id : '',
      unassigned: filters.unassigned ? 'true' : '',
      q: filters.q.trim(),
      limit: PAGE_SIZE,
      cursor: after,
    });

  const paintCount = () => {
    const n = rows.length;
    count.textContent = `${n} ${n === 1 ? 'mention' : 'mentions'} shown${cursor ? ', more to load' : ''}`;
  };

  const paintSync = () => {
    const connection = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' }[live.state];
    sync.textContent = `${connection} · last ingest ${ago(lastIngest)}`;
  };

  const rowFor = (mention) =>
    h(
      'tr',
      { 'data-id': mention.id, 'data-brand': mention.brandId },
      h('td', {}, brandName(mention.brandId)),
      h('td', {}, mention.platform),
      h('td', {}, mention.type),
      h('td', {}, authorName(mention.author)),
      h('td', {}, h('a', { href: `#/mentions/${mention.id}` }, truncate(mention.content, CONTENT_PREVIEW) || '(no text)')),
      h('td', {}, mention.state ? mention.state.replace('_', ' ') : 'new'),
      h('td', {}, mention.disposition || '—'),
      h('td', {}, userName(mention.userId)),
      h('td', {}, h('time', { dateTime: mention.createdAt }, when(mention.createdAt))),
    );

  const paintRows = () => {
    body.replaceChildren(...rows.map(rowFor));
    if (!rows.length) {
      body.append(h('tr', {}, h('td', { colSpan: 9, className: 'empty' }, 'No mentions match these filters.')));
    }
    more.hidden = !cursor;
    paintCount();
    knowBrands();
  };

  // A row of a brand added since the brands were read (by another admin or tab): read them
  // again, once per visit of the inbox.
  let brandsReread = false;
  const knowBrands = () => {
    if (brandsReread || !brands || rows.every((r) => brands.has(r.brandId))) return;
    brandsReread = true;
    loadBrands(true).then(
      () => {
        paintBrands();
        paintRows();
      },
      () => null,
    );
  };

  const load = async () => {
    const mine = ++generation;
    show(message, '');
    try {
      const page = await api(`/v1/mentions${params()}`);
      if (mine !== generation) return;
      rows = page.result;
      cursor = page.meta.nextCursor || null;
      paintRows();
    } catch (e) {
      if (mine === generation) show(message, e.message);
    }
  };

  more.addEventListener('click', async () => {
    const mine = generation;
    more.disabled = true;
    try {
      const page = await api(`/v1/mentions${params(cursor)}`);
      if (mine !== generation) return;
      const known = new Set(rows.map((r) => r.id));
      rows = rows.concat(page.result.filter((r) => !known.has(r.id)));
      cursor = page.meta.nextCursor || null;
      paintRows();
    } catch (e) {
      show(message, e.message);
    } finally {
      more.disabled = false;
    }
  });

  // New mentions: read the first page again and put the ones not shown yet on top.
  let refreshTimer = null;
  const refreshTop = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      const mine = generation;
      try {
        const page = await api(`/v1/mentions${params()}`);
        if (mine !== generation) return;
        const fresh = new Map(page.result.map((r) => [r.id, r]));
        const known = new Set(rows.map((r) => r.id));
        const added = page.result.filter((r) => !known.has(r.id));
        rows = added.concat(rows.map((r) => fresh.get(r.id) || r));
        if (!rows.length) cursor = page.meta.nextCursor || null;
        paintRows();
      } catch {
        // The next event or filter change tries again.
      }
    }, LIVE_REFRESH_DEBOUNCE_MS);
  };

  const refreshRow = async (id) => {
    try {
      const mention = await api(`/v1/mentions/${id}`);
      const at = rows.findIndex((r) => r.id === id);
      if (at < 0) return;
      rows[at] = mention;
      const old = body.querySelector(`tr[data-id="${id}"]`);
      if (old) old.replaceWith(rowFor(mention));
    } catch {
      // Gone or unreachable: the next full load settles it.
    }
  };

  const unsubscribe = live.subscribe((event) => {
    if (event.type === 'connection') paintSync();
    else if (event.type === 'reset') load();
    else if (event.type === 'mention' && event.data) {
      if (event.data.action === 'mention.ingested') lastIngest = event.data.at;
      if (rows.some((r) => r.id === event.data.mentionId)) refreshRow(event.data.mentionId);
      else refreshTop();
      paintSync();
    }
  });

  const readHealth = async () => {
    try {
      const health = await api('/v1/status/health');
      const times = Object.values(health.platforms || {})
        .map((p) => p.lastSuccessfulIngestAt)
        .filter(Boolean)
        .sort();
      lastIngest = times.length ? times[times.length - 1] : lastIngest;
    } catch {
      // Shown as it was.
    }
    paintSync();
  };
  const healthTimer = setInterval(readHealth, HEALTH_POLL_MS);
  const clockTimer = setInterval(paintSync, 1000);

  const paintBrands = () => {
    const seen = [...(brands || new Map()).values()];
    brand.replaceChildren(
      h('option', { value: '' }, 'All brands'),
      ...seen.map((b) => h('option', { value: b.id }, b.disabled ? `${b.name} (disabled)` : b.name)),
    );
    if (!brands || !brands.has(filters.brand)) filters.brand = '';
    brand.value = filters.brand;
    brandField.hidden = seen.length < 2;
  };

  const changed = () => {
    filters.brand = brand.value;
    filters.platform = platform.value;
    filters.state = state.value;
    filters.mine = mine.checked;
    filters.unassigned = unassigned.checked;
    filters.q = search.value;
    load();
  };
  brand.addEventListener('change', changed);
  platform.addEventListener('change', changed);
  state.addEventListener('change', changed);
  mine.addEventListener('change', changed);
  unassigned.addEventListener('change', changed);
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(changed, SEARCH_DEBOUNCE_MS);
  });

  // Keyboard: `/` searches, Escape leaves a filter, j/k (or ↓/↑ on a row's link) move
  // between rows.
  const keys = (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);
    if (event.key === 'Escape' && typing) {
      document.activeElement.blur();
      return;
    }
    if (event.key === '/' && !typing) {
      event.preventDefault();
      search.focus();
      return;
    }
    const links = [...body.querySelectorAll('a')];
    const at = links.indexOf(document.activeElement);
    const down = event.key === 'j' || (event.key === 'ArrowDown' && at >= 0);
    const up = event.key === 'k' || (event.key === 'ArrowUp' && at >= 0);
    if ((down || up) && !typing && links.length) {
      event.preventDefault();
      const next = at < 0 ? 0 : Math.min(links.length - 1, Math.max(0, at + (down ? 1 : -1)));
      links[next].focus();
    }
  };
  document.addEventListener('keydown', keys);

  main.append(
    h('h1', {}, 'Inbox'),
    h(
      'form',
      { className: 'filters', role: 'search', 'aria-label': 'Filters', onsubmit: (e) => { e.preventDefault(); changed(); } },
      brandField,
      labelled('Platform', platform),
      labelled('State', state),
      h('label', { className: 'check' }, mine, 'Mine'),
      h('label', { className: 'check' }, unassigned, 'Unassigned'),
      labelled('Search', search),
    ),
    h('div', { className: 'summary' }, count, sync),
    message,
    table,
    more,
  );
  paintSync();
  Promise.all([loadUsers().catch(() => null), loadBrands().catch(() => null)])
    .then(paintBrands)
    .then(load);
  readHealth();

  return () => {
    unsubscribe();
    clearInterval(healthTimer);
    clearInterval(clockTimer);
    clearTimeout(refreshTimer);
    clearTimeout(searchTimer);
    document.removeEventListener('keydown', keys);
    generation += 1;
  };
}

// ---- Mention ------------------------------------------------------------------------------

/** Drafts survive a re-render of the same mention (a reload after a refused send). */
const drafts = new Map();

function mentionView(main, { id }) {
  const message = alertBox();
  const others = h('p', { role: 'status', 'aria-label': 'Others here', className: 'others' });
  const replyStatus = h('p', { role: 'status', 'aria-label': 'Reply status', className: 'reply-status' });
  const assign = h('select', { disabled: true });
  const buttons = new Map(
    DISPOSITIONS.map(([value, text]) => [value, h('button', { type: 'button', 'aria-pressed': 'false', disabled: true }, text)]),
  );
  const draft = drafts.get(id) || { text: '', key: crypto.randomUUID() };
  drafts.set(id, draft);
  const text = h('textarea', { rows: 4, value: draft.text, maxLength: 10000 });
  const send = h('button', { type: 'submit' }, 'Send reply');
  const details = h('section', { className: 'mention', 'aria-label': 'Mention' }, h('p', {}, 'Loading…'));
  const thread = h('ol', { className: 'thread', 'aria-label': 'Thread' });
  const audit = h('ol', { className: 'audit', 'aria-label': 'Audit trail' });

  let mention = null;
  // Who a mention of its brand can be assigned to (`GET /v1/users?brandId=`), read once.
  let assignable = null;
  let watchedReply = null;
  let typedAt = 0;
  let closed = false;
  const hints = new Map();

  const paintOthers = () => {
    const now = Date.now();
    for (const [user, hint] of hints) if (hint.until < now) hints.delete(user);
    others.textContent = [...hints.values()].map((hint) => `${hint.name} is ${hint.activity}`).join(' · ');
    others.hidden = hints.size === 0;
  };

  const paintReply = (reply) => {
    if (!reply) {
      replyStatus.textContent = '';
      return;
    }
    const word = reply.status;
    const why = word === 'failed' && reply.lastError ? `: ${reply.lastError}` : '';
    const unknown = word === 'unknown' ? ': the provider did not answer; it is being checked' : '';
    replyStatus.textContent = `${word}${why}${unknown}`;
  };

  const paintMention = () => {
    const m = mention;
    details.replaceChildren(
      h('h1', {}, `${m.type} on ${m.platform} by ${authorName(m.author)}`),
      h(
        'dl',
        { className: 'facts' },
        h('dt', {}, 'Brand'), h('dd', {}, brandName(m.brandId)),
        h('dt', {}, 'State'), h('dd', {}, m.state ? m.state.replace('_', ' ') : 'new'),
        h('dt', {}, 'Disposition'), h('dd', {}, m.disposition || '—'),
        h('dt', {}, 'Assignee'), h('dd', {}, userName(m.userId)),
        h('dt', {}, 'Received'), h('dd', {}, when(m.createdAt)),
      ),
    );
    const entry = (item, who, cls) =>
      h('li', { className: cls }, h('p', { className: 'who' }, `${who} · ${when(item.postedAt || item.createdAt)}`), h('p', { className: 'text' }, item.content || '(no text)'));
    thread.replaceChildren(
      ...m.thread.map((earlier) => entry(earlier, authorName(earlier.author), 'earlier')),
      entry(m, authorName(m.author), 'this'),
      ...m.replies.map((reply) => entry(reply, `Our reply (${reply.status})`, 'ours')),
    );
    const offered = (assignable || []).filter((user) => !user.disabled || user.id === m.userId);
    // The current assignee stays shown even if they no longer work for the brand.
    const current = m.userId && !offered.some((user) => user.id === m.userId) ? [{ id: m.userId, name: userName(m.userId) }] : [];
    assign.replaceChildren(
      h('option', { value: '' }, 'Unassigned'),
      ...[...offered, ...current].map((user) => h('option', { value: user.id }, user.id === session.user.id ? `${user.name} (me)` : user.name)),
    );
    assign.value = m.userId || '';
    assign.disabled = !assignable;
    for (const [value, button] of buttons) {
      button.setAttribute('aria-pressed', String(m.disposition === value));
      button.disabled = false;
    }
    const latest = m.replies.length ? m.replies[m.replies.length - 1] : null;
    paintReply(latest);
    if (latest && !['sent', 'failed'].includes(latest.status)) watchReply(latest.id);
  };

  const loadAudit = async () => {
    try {
      const page = await api(`/v1/mentions/${id}/audit${query({ limit: 100 })}`);
      audit.replaceChildren(
        ...page.result.map((row) =>
          h('li', {}, h('time', { dateTime: row.occurredAt }, when(row.occurredAt)), ` ${row.action} by ${actorName(row.actor)}`),
        ),
      );
    } catch {
      // The trail is shown as last read.
    }
  };

  const load = async () => {
    try {
      const [detail] = await Promise.all([
        api(`/v1/mentions/${id}`),
        loadUsers().catch(() => null),
        loadBrands().catch(() => null),
      ]);
      if (closed) return;
      if (!assignable) {
        try {
          assignable = await api(`/v1/users${query({ brandId: detail.brandId })}`);
        } catch (e) {
          show(message, `Assign to is unavailable: ${e.message}`);
        }
        if (closed) return;
      }
      mention = detail;
      paintMention();
      loadAudit();
    } catch (e) {
      if (closed) return;
      if (e.status === 404) details.replaceChildren(h('h1', {}, 'No such mention'), h('p', {}, 'It does not exist or you cannot see it.'));
      else show(message, e.message);
    }
  };

  const update = async (change) => {
    show(message, '');
    try {
      mention = {
        ...mention,
        ...(await api(`/v1/mentions/${id}`, { method: 'PATCH', body: change, headers: { 'If-Match': String(mention.version) } })),
      };
      paintMention();
      loadAudit();
    } catch (e) {
      show(message, e.status === 412 ? `Someone changed this mention meanwhile; it has been reloaded. ${e.message}` : e.message);
      load();
    }
  };

  assign.addEventListener('change', () => update({ userId: assign.value || null }));
  for (const [value, button] of buttons) {
    button.addEventListener('click', () => update({ disposition: mention.disposition === value ? null : value }));
  }

  // The reply's status until it settles: on each event for this mention, and on a timer.
  let replyTimer = null;
  const watchReply = (replyId) => {
    watchedReply = replyId;
    clearTimeout(replyTimer);
    const check = async () => {
      if (closed || watchedReply !== replyId) return;
      try {
        const reply = await api(`/v1/replies/${replyId}`);
        paintReply(reply);
        if (['sent', 'failed'].includes(reply.status)) {
          watchedReply = null;
          load();
          return;
        }
      } catch {
        // Tried again below.
      }
      replyTimer = setTimeout(check, REPLY_POLL_MS);
    };
    check();
  };

  const form = h(
    'form',
    { className: 'reply', 'aria-label': 'Reply' },
    labelled('Reply text', text),
    send,
    replyStatus,
  );
  text.addEventListener('input', () => {
    draft.text = text.value;
    const first = Date.now() - typedAt > TYPING_COUNTS_MS;
    typedAt = Date.now();
    if (first) presence('replying');
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const content = text.value.trim();
    if (!content) {
      show(message, 'Write the reply first.');
      text.focus();
      return;
    }
    if (!mention) return;
    send.disabled = true;
    show(message, '');
    try {
      const reply = await api(`/v1/mentions/${id}/reply`, {
        method: 'POST',
        body: { content },
        headers: { 'Idempotency-Key': draft.key, 'If-Match': String(mention.version) },
      });
      drafts.delete(id);
      text.value = '';
      paintReply(reply);
      watchReply(reply.id);
    } catch (e) {
      if (e.code === 'stale_view') {
        show(message, `Not sent: ${e.message} Read the mention again, then send.`);
        draft.key = crypto.randomUUID();
        load();
      } else if (e.code === 'idempotency_key_reused') {
        draft.key = crypto.randomUUID();
        show(message, 'The reply changed since the last attempt; send it again.');
      } else show(message, `Not sent: ${e.message}`);
    } finally {
      send.disabled = false;
    }
  });

  const presence = (activity) => {
    api(`/v1/mentions/${id}/presence`, { method: 'POST', body: { activity } }).catch(() => null);
  };
  const beat = setInterval(() => {
    presence(Date.now() - typedAt < TYPING_COUNTS_MS ? 'replying' : 'viewing');
    paintOthers();
  }, PRESENCE_EVERY_MS);
  presence('viewing');

  const unsubscribe = live.subscribe((event) => {
    if (event.type === 'presence' && event.data && event.data.mentionId === id && event.data.userId !== session.user.id) {
      if (event.data.activity === 'left') hints.delete(event.data.userId);
      else hints.set(event.data.userId, { name: event.data.name, activity: event.data.activity, until: Date.now() + PRESENCE_EXPIRES_MS });
      paintOthers();
    } else if (event.type === 'mention' && event.data && event.data.mentionId === id) {
      if (watchedReply) watchReply(watchedReply);
      else load();
    } else if (event.type === 'reset') load();
  });

  main.append(
    h('p', {}, h('a', { href: '#/inbox' }, 'Back to inbox')),
    others,
    message,
    details,
    h('section', { 'aria-label': 'Conversation' }, h('h2', {}, 'Conversation'), thread),
    h(
      'section',
      { className: 'triage', 'aria-label': 'Triage' },
      h('h2', {}, 'Triage'),
      labelled('Assign to', assign),
      h('div', { role: 'group', 'aria-label': 'Disposition', className: 'dispositions' }, [...buttons.values()]),
    ),
    form,
    h('section', { 'aria-label': 'History' }, h('h2', {}, 'Audit trail'), audit),
  );
  paintOthers();
  load();

  const keys = (event) => {
    if (event.key === 'Escape' && document.activeElement !== text) location.hash = '#/inbox';
  };
  document.addEventListener('keydown', keys);

  return () => {
    closed = true;
    presence('left');
    unsubscribe();
    clearInterval(beat);
    clearTimeout(replyTimer);
    document.removeEventListener('keydown', keys);
  };
}

function actorName(actor) {
  const [kind, rest] = (actor || '').split(':');
  if (kind === 'user') return userName(rest);
  if (kind === 'system') return `the ${rest || 'system'}`;
  return actor || 'unknown';
}

// ---- Admin: users -------------------------------------------------------------------------

function usersView(main) {
  const message = alertBox();
  const body = h('tbody');
  const roles = [['agent', 'agent'], ['admin', 'admin']];

  const paint = () => {
    body.replaceChildren(
      ...[...users.values()].map((user) => {
        const role = select(roles, user.role, { 'aria-label': `Role for ${user.email}` });
        role.addEventListener('change', () => change(user, { role: role.value }));
        const toggle = h('button', { type: 'button' }, user.disabled ? 'Enable' : 'Disable');
        toggle.addEventListener('click', () => change(user, { disabled: !user.disabled }));
        return h('tr', { 'data-email': user.email }, h('td', {}, user.name), h('td', {}, user.email), h('td', {}, role), h('td', {}, user.disabled ? 'disabled' : 'active'), h('td', {}, toggle));
      }),
    );
  };

  const change = async (user, patch) => {
    show(message, '');
    try {
      const out = await api(`/v1/users/${user.id}`, { method: 'PATCH', body: patch });
      users.set(out.id, out);
    } catch (e) {
      show(message, e.message);
    }
    paint();
  };

  const name = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { type: 'password', required: true, autocomplete: 'new-password' });
  const role = select(roles, 'agent');
  const created = h('p', { role: 'status' });
  const form = h(
    'form',
    { className: 'create', 'aria-label': 'New user', noValidate: true },
    h('h2', {}, 'New user'),
    labelled('Name', name),
    labelled('Email', email),
    labelled('Password', password),
    labelled('Role', role),
    h('button', { type: 'submit' }, 'Create user'),
    created,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show(message, '');
    created.textContent = '';
    try {
      const out = await api('/v1/users', {
        method: 'POST',
        body: { name: name.value.trim(), email: email.value.trim(), password: password.value, role: role.value },
      });
      users.set(out.id, out);
      created.textContent = `Created ${out.email}.`;
      form.reset();
      paint();
    } catch (e) {
      show(message, e.message);
    }
  });

  main.append(
    h('h1', {}, 'Users'),
    message,
    h('table', { 'aria-label': 'Users' }, h('thead', {}, h('tr', {}, ['Name', 'Email', 'Role', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))), body),
    form,
  );
  loadUsers(true).then(paint, (e) => show(message, e.message));
}

// ---- Admin: brands ------------------------------------------------------------------------

/** Checkboxes for the platforms a brand watches: `Every platform` (`null`: every configured
 *  one, the API's default) or the ones ticked. */
function platformPicker(current) {
  const every = h('input', { type: 'checkbox' });
  const boxes = PLATFORMS.map((p) => [p, h('input', { type: 'checkbox' })]);
  const set = (value) => {
    every.checked = value === null || value === undefined;
    for (const [p, box] of boxes) {
      box.checked = !every.checked && value.includes(p);
      box.disabled = every.checked;
    }
  };
  every.addEventListener('change', () => {
    for (const [, box] of boxes) box.disabled = every.checked;
  });
  set(current);
  const node = h(
    'fieldset',
    { className: 'platforms' },
    h('legend', {}, 'Platforms'),
    h('label', { className: 'check' }, every, 'Every platform'),
    boxes.map(([p, box]) => h('label', { className: 'check' }, box, p)),
  );
  return { node, set, value: () => (every.checked ? null : boxes.filter(([, box]) => box.checked).map(([p]) => p)) };
}

function platformsText(platforms) {
  if (platforms === null || platforms === undefined) return 'every platform';
  return platforms.length ? platforms.join(', ') : 'none';
}

function brandsView(main) {
  const message = alertBox();
  const note = h('p', { role: 'status' });
  const body = h('tbody');
  let list = [];

  const load = async () => {
    try {
      list = [...(await loadBrands(true)).values()];
      paint();
    } catch (e) {
      show(message, e.message);
    }
  };

  const paint = () => {
    body.replaceChildren(
      ...list.map((brand) => {
        const edit = h('button', { type: 'button', 'aria-label': `Edit ${brand.name}` }, 'Edit');
        edit.addEventListener('click', () => openEdit(brand));
        const toggle = h('button', { type: 'button' }, brand.disabled ? 'Enable' : 'Disable');
        toggle.addEventListener('click', () =>
          change(brand, { disabled: !brand.disabled }, `${brand.name} is ${brand.disabled ? 'enabled' : 'disabled'}.`),
        );
        return h(
          'tr',
          { 'data-id': brand.id },
          h('td', {}, brand.name),
          h('td', {}, platformsText(brand.platforms)),
          h('td', {}, brand.hasProfileKey ? 'yes' : 'no'),
          h('td', {}, brand.disabled ? 'disabled' : 'active'),
          h('td', { className: 'actions' }, edit, toggle),
        );
      }),
    );
    if (!list.length) body.append(h('tr', {}, h('td', { colSpan: 5, className: 'empty' }, 'No brands.')));
  };

  /** PATCH `patch` onto `brand`; true if it was taken. */
  const change = async (brand, patch, done) => {
    show(message, '');
    note.textContent = '';
    try {
      const out = await api(`/v1/brands/${brand.id}`, { method: 'PATCH', body: patch });
      list = list.map((b) => (b.id === out.id ? out : b));
      if (brands) brands.set(out.id, out);
      note.textContent = done;
      paint();
      return true;
    } catch (e) {
      show(message, e.message);
      return false;
    }
  };

  // Editing one brand: its name and platforms as they are; a Profile-Key is never shown,
  // only replaced by a new one typed here.
  let editing = null;
  const editName = h('input', { type: 'text', required: true, autocomplete: 'off', maxLength: 100 });
  const editKey = h('input', { type: 'password', autocomplete: 'new-password' });
  const editPlatforms = platformPicker(null);
  const editTitle = h('h2', {}, 'Edit brand');
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const editForm = h(
    'form',
    { className: 'create', 'aria-label': 'Edit brand', noValidate: true, hidden: true },
    editTitle,
    labelled('Name', editName),
    labelled('New Profile-Key (empty: keep the current one)', editKey),
    editPlatforms.node,
    h('button', { type: 'submit' }, 'Save brand'),
    cancel,
  );
  const openEdit = (brand) => {
    editing = brand;
    editTitle.textContent = `Edit ${brand.name}`;
    editName.value = brand.name;
    editKey.value = '';
    editPlatforms.set(brand.platforms);
    editForm.hidden = false;
    editName.focus();
  };
  const closeEdit = () => {
    editing = null;
    editKey.value = '';
    editForm.hidden = true;
  };
  cancel.addEventListener('click', closeEdit);
  editForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!editing) return;
    const patch = {};
    const name = editName.value.trim();
    if (name !== editing.name) patch.name = name;
    const platforms = editPlatforms.value();
    if (JSON.stringify(platforms) !== JSON.stringify(editing.platforms ?? null)) patch.platforms = platforms;
    if (editKey.value) patch.profileKey = editKey.value;
    if (!Object.keys(patch).length) {
      show(message, '');
      note.textContent = 'Nothing to change.';
      return;
    }
    if (await change(editing, patch, `Saved ${name}.`)) closeEdit();
  });

  const name = h('input', { type: 'text', required: true, autocomplete: 'off', maxLength: 100 });
  const key = h('input', { type: 'password', autocomplete: 'new-password' });
  const platforms = platformPicker(null);
  const form = h(
    'form',
    { className: 'create', 'aria-label': 'New brand', noValidate: true },
    h('h2', {}, 'New brand'),
    labelled('Name', name),
    labelled('Profile-Key (optional)', key),
    platforms.node,
    h('button', { type: 'submit' }, 'Create brand'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show(message, '');
    note.textContent = '';
    const body = { name: name.value.trim() };
    if (key.value) body.profileKey = key.value;
    const chosen = platforms.value();
    if (chosen !== null) body.platforms = chosen;
    try {
      const out = await api('/v1/brands', { method: 'POST', body });
      form.reset();
      platforms.set(null);
      note.textContent = `Created ${out.name}.`;
      await load();
    } catch (e) {
      show(message, e.message);
    } finally {
      key.value = '';
    }
  });

  main.append(
    h('h1', {}, 'Brands'),
    message,
    note,
    h(
      'table',
      { 'aria-label': 'Brands' },
      h('thead', {}, h('tr', {}, ['Name', 'Platforms', 'Profile-Key', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
      body,
    ),
    editForm,
    form,
  );
  load();
}

// ---- Admin: tasks -------------------------------------------------------------------------

function tasksView(main) {
  const message = alertBox();
  const list = h('ul', { className: 'tasks', 'aria-label': 'Dead tasks' });
  const note = h('p', { role: 'status' });

  const load = async () => {
    try {
      const page = await api(`/v1/tasks${query({ status: 'dead', limit: 100 })}`);
      list.replaceChildren(...page.result.map(item));
      if (!page.result.length) list.append(h('li', {}, 'No dead tasks.'));
    } catch (e) {
      show(message, e.message);
    }
  };

  const item = (task) => {
    const retry = h('button', { type: 'button' }, 'Retry');
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      show(message, '');
      try {
        await api(`/v1/tasks/${task.id}/retry`, { method: 'POST' });
        note.textContent = `Task ${task.id} is queued again.`;
        load();
      } catch (e) {
        show(message, e.message);
        retry.disabled = false;
      }
    });
    return h(
      'li',
      { 'data-id': task.id },
      h('p', {}, h('strong', {}, `${task.kind} · ${task.platform}`), ` · ${task.attempts}/${task.maxAttempts} attempts · ${when(task.finishedAt || task.createdAt)}`),
      task.lastError && h('p', { className: 'error' }, task.lastError),
      retry,
    );
  };

  main.append(h('h1', {}, 'Dead tasks'), message, note, list);
  load();
}

// ---- Admin: status ------------------------------------------------------------------------

function statusView(main) {
  const message = alertBox();
  const health = h('tbody');
  const hooks = h('tbody');
  const hookNote = h('p');
  const budget = h('div', { className: 'budget' });
  const seconds = (value) => (value === null || value === undefined ? '—' : `${value.toFixed(1)} s`);

  const load = async () => {
    try {
      const [state, money] = await Promise.all([api('/v1/status/health').catch((e) => e.problem), api('/v1/status/budget')]);
      health.replaceChildren(
        ...Object.entries(state.platforms || {}).map(([platform, p]) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, platform),
            h('td', {}, p.breaker.replace('_', ' '), p.openUntil ? ` until ${when(p.openUntil)}` : ''),
            h('td', {}, ago(p.lastSuccessfulIngestAt)),
            h('td', {}, p.messaging, p.messagingError ? ` (${p.messagingError})` : ''),
          ),
        ),
      );
      const pushed = state.webhooks || { enabled: false, signatureFailures: 0, profiles: {} };
      hookNote.textContent = pushed.enabled
        ? `Deliveries refused for their signature by this api process: ${pushed.signatureFailures}.`
        : 'Webhooks are off (no WEBHOOK_SECRET): every platform is polled.';
      hooks.replaceChildren(
        ...Object.entries(pushed.profiles).flatMap(([profile, platforms]) =>
          Object.entries(platforms).map(([platform, w]) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, `${profile} · ${platform}`),
              h('td', {}, w.registered ? 'registered' : w.missingSince ? `missing since ${when(w.missingSince)}` : 'not registered'),
              h('td', {}, ago(w.lastDeliveryAt)),
              h('td', {}, String(w.deliveriesToday)),
              h('td', {}, w.safetyNetPolling ? 'safety net only' : 'normal'),
            ),
          ),
        ),
      );
      budget.replaceChildren(
        ...money.profiles.map((profile) =>
          h(
            'section',
            { 'aria-label': `Budget of ${profile.profile}` },
            h('h3', {}, `Profile ${profile.profile}`),
            h('p', {}, `${profile.left} of ${profile.limit} requests left in this ${profile.windowSeconds / 60}-minute window; ${profile.reserved} kept for replies.`),
            h('ul', {}, Object.entries(profile.used || {}).map(([kind, n]) => h('li', {}, `${kind}: ${n} used`))),
            h('p', {}, `Time to inbox p50 ${seconds(profile.timeToInbox.p50)}, p95 ${seconds(profile.timeToInbox.p95)}; reply latency p50 ${seconds(profile.replyLatency.p50)}, p95 ${seconds(profile.replyLatency.p95)}.`),
          ),
        ),
      );
    } catch (e) {
      show(message, e.message);
    }
  };

  main.append(
    h('h1', {}, 'Status'),
    message,
    h('h2', {}, 'Platforms'),
    h('table', { 'aria-label': 'Platforms' }, h('thead', {}, h('tr', {}, ['Platform', 'Breaker', 'Last ingest', 'Direct messages'].map((c) => h('th', { scope: 'col' }, c)))), health),
    h('h2', {}, 'Webhooks'),
    hookNote,
    h('table', { 'aria-label': 'Webhooks' }, h('thead', {}, h('tr', {}, ['Profile · platform', 'Registration', 'Last delivery', 'Deliveries today', 'Polling'].map((c) => h('th', { scope: 'col' }, c)))), hooks),
    h('h2', {}, 'Provider budget'),
    budget,
  );
  load();
  const timer = setInterval(load, 10000);
  return () => clearInterval(timer);
}

// ---- Start --------------------------------------------------------------------------------

window.addEventListener('hashchange', render);
render();
