// The tollgate console: a client of the admin API, signed in by a server-side session (an
// HttpOnly cookie the page never sees). State-changing calls carry the session's CSRF token.
// Every text that came from the server is set with textContent, never parsed as HTML.
'use strict';

const state = { csrf: null, who: null, tenant: null };
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];

// === building the page ===

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child) node.append(child);
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function field(label, attrs) {
  const id = attrs.id || `f-${Math.random().toString(36).slice(2)}`;
  return el('div', { class: 'field' }, el('label', { for: id, text: label }), el('input', { ...attrs, id }));
}

function selectField(label, name, options, value) {
  const id = `f-${name}`;
  const select = el('select', { id, name });
  for (const option of options) {
    select.append(el('option', { value: option, selected: option === value, text: option }));
  }
  return el('div', { class: 'field' }, el('label', { for: id, text: label }), select);
}

function table(headers, rows) {
  return el('div', { class: 'scroll' },
    el('table', {},
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows)));
}

function notice(message, kind = 'info') {
  const box = document.getElementById('notice');
  if (!box) return;
  box.textContent = message;
  box.className = `notice ${kind}`;
  box.hidden = false;
}

// === the admin API ===

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== '/console/session') {
    showLogin();
    throw new Error('Your session has ended; sign in again.');
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!response.ok) {
    throw new Error((data && data.error && data.error.message) || `The gateway answered ${response.status}.`);
  }
  return data;
}

const admin = (method, path, body) => api(method, `/admin/v1${path}`, body);
const enc = encodeURIComponent;

// Runs an action, showing what went wrong instead of failing silently.
async function attempt(action, done) {
  try {
    await action();
    if (done) notice(done, 'ok');
  } catch (error) {
    notice(error.message, 'error');
  }
}

// === signing in and out ===

function showLogin() {
  state.csrf = null;
  state.who = null;
  document.getElementById('login').hidden = false;
  document.getElementById('page').hidden = true;
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('login-error').hidden = location.hash !== '#login-failed';
  document.getElementById('login-token').focus();
}

function signedIn(session) {
  state.csrf = session.csrf;
  state.who = session.who;
  state.tenant = session.who.kind === 'platform' ? state.tenant : session.who.tenant;
  const platform = session.who.kind === 'platform';
  document.getElementById('who').textContent = platform
    ? 'Platform administrator'
    : `${session.who.subject} — admin of ${session.who.tenant}`;
  for (const button of document.querySelectorAll('#nav [data-platform]')) button.hidden = !platform;
  document.getElementById('login').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = false;
  document.getElementById('page').hidden = false;
  const page = location.hash.replace(/^#\/?/, '');
  show(pages[page] ? page : platform ? 'tenants' : 'users');
}

async function start() {
  document.getElementById('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = document.getElementById('login-token').value;
    try {
      const session = await api('POST', '/console/session', { token });
      document.getElementById('login-token').value = '';
      history.replaceState(null, '', '#/tenants');
      signedIn(session);
    } catch (_) {
      document.getElementById('login-error').hidden = false;
    }
  });
  document.getElementById('sso-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const tenant = document.getElementById('sso-tenant').value.trim();
    if (tenant) location.assign(`/console/sso/${enc(tenant)}`);
  });
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('DELETE', '/console/session'); } catch (_) { /* signed out either way */ }
    history.replaceState(null, '', '#');
    showLogin();
  });
  for (const button of document.querySelectorAll('#nav button')) {
    button.addEventListener('click', () => show(button.dataset.page));
  }
  try {
    signedIn(await api('GET', '/console/session'));
  } catch (_) {
    showLogin();
  }
}

// === pages ===

async function show(name) {
  history.replaceState(null, '', `#/${name}`);
  for (const button of document.querySelectorAll('#nav button')) {
    if (button.dataset.page === name) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  const page = document.getElementById('page');
  page.replaceChildren(el('div', { id: 'notice', class: 'notice', role: 'status', hidden: true }));
  try {
    await pages[name](page);
  } catch (error) {
    notice(error.message, 'error');
  }
  document.getElementById('main').focus();
}

// The tenant a page works on: fixed for a tenant admin, chosen by the platform administrator.
async function tenantPicker(page, rerender) {
  if (state.who.kind !== 'platform') return state.tenant;
  const tenants = await admin('GET', '/tenants');
  if (!state.tenant && tenants.length) state.tenant = tenants[0].id;
  const picker = selectField('Tenant', 'tenant', tenants.map((t) => t.id), state.tenant);
  picker.querySelector('select').addEventListener('change', (event) => {
    state.tenant = event.target.value;
    rerender();
  });
  page.append(picker);
  return state.tenant;
}

const pages = {
  async tenants(page) {
    page.append(el('h1', { text: 'Tenants' }));
    const id = field('Tenant id', { name: 'id', required: true, 'data-testid': 'tenant-create-id', pattern: '[A-Za-z0-9._-]{1,64}' });
    const name = field('Name', { name: 'name', required: true, 'data-testid': 'tenant-create-name' });
    const form = el('form', { class: 'card inline' }, el('h2', { text: 'New tenant' }), id, name,
      el('button', { type: 'submit', 'data-testid': 'tenant-create-submit', text: 'Create tenant' }));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const body = { id: form.elements.id.value.trim(), name: form.elements.name.value.trim() };
      attempt(async () => {
        await admin('POST', '/tenants', body);
        await show('tenants');
      }, `Tenant ${body.id} created.`);
    });
    page.append(form);
    const tenants = await admin('GET', '/tenants');
    page.append(table(['Id', 'Name', 'Status', 'Models', ''], tenants.map((tenant) => {
      const next = tenant.status === 'active' ? 'disabled' : 'active';
      const toggle = el('button', { type: 'button', text: next === 'disabled' ? 'Disable' : 'Enable' });
      toggle.addEventListener('click', () => attempt(async () => {
        await admin('PATCH', `/tenants/${enc(tenant.id)}`, { status: next });
        await show('tenants');
      }));
      const open = el('button', { type: 'button', class: 'link', text: 'Users' });
      open.addEventListener('click', () => { state.tenant = tenant.id; show('users'); });
      return el('tr', { 'data-testid': 'tenant-row', 'data-tenant-id': tenant.id },
        el('td', { text: tenant.id }), el('td', { text: tenant.name }), el('td', { text: tenant.status }),
        el('td', { text: tenant.allowed_models ? tenant.allowed_models.join(', ') : 'all' }),
        el('td', { class: 'actions' }, toggle, open));
    })));
  },

  async issuers(page) {
    page.append(el('h1', { text: 'Identity providers' }));
    const form = el('form', { class: 'card' }, el('h2', { text: 'Register an issuer' }),
      field('Issuer (iss)', { name: 'issuer', required: true, type: 'url' }),
      field('Tenant', { name: 'tenant', required: true }),
      field('JWKS URL', { name: 'jwks_url', type: 'url' }),
      field('Audiences (comma-separated)', { name: 'audiences', required: true }),
      field('Console client id (for SSO)', { name: 'console_client_id' }),
      el('button', { type: 'button', class: 'link', name: 'discover', text: 'Fill in from its discovery document' }),
      el('button', { type: 'submit', text: 'Register' }));
    form.elements.discover.addEventListener('click', () => attempt(async () => {
      const found = await admin('POST', '/issuers/discover', { issuer: form.elements.issuer.value.trim() });
      form.elements.issuer.value = found.issuer;
      if (found.jwks_uri) form.elements.jwks_url.value = found.jwks_uri;
    }, 'Filled in from the discovery document.'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = (name) => form.elements[name].value.trim();
      const body = {
        issuer: value('issuer'),
        tenant: value('tenant'),
        audiences: value('audiences').split(',').map((a) => a.trim()).filter(Boolean),
      };
      if (value('jwks_url')) body.jwks_url = value('jwks_url');
      if (value('console_client_id')) body.console_client_id = value('console_client_id');
      attempt(async () => {
        await admin('POST', '/issuers', body);
        await show('issuers');
      }, 'Issuer registered.');
    });
    page.append(form);
    const issuers = await admin('GET', '/issuers');
    page.append(table(['Issuer', 'Tenant', 'Keys', 'Audiences', 'Console client', ''], issuers.map((issuer) => {
      const remove = el('button', { type: 'button', text: 'Remove' });
      remove.addEventListener('click', () => attempt(async () => {
        await admin('DELETE', `/issuers/${enc(issuer.id)}`);
        await show('issuers');
      }));
      return el('tr', {},
        el('td', { text: issuer.issuer }), el('td', { text: issuer.tenant || issuer.tenant_claim || '' }),
        el('td', { text: issuer.jwks_url || (issuer.has_pem ? 'PEM' : 'HS256') }),
        el('td', { text: (issuer.audiences || []).join(', ') }),
        el('td', { text: issuer.console_client_id || '' }), el('td', {}, remove));
    })));
    page.append(explainBox());
  },

  async users(page) {
    page.append(el('h1', { text: 'Users' }));
    const tenant = await tenantPicker(page, () => show('users'));
    if (!tenant) return page.append(el('p', { text: 'Create a tenant first.' }));
    const form = el('form', { class: 'card inline' }, el('h2', { text: 'Add or update a user' }),
      field('Subject', { name: 'subject', required: true }),
      field('Email', { name: 'email', type: 'email' }),
      selectField('Role', 'role', ['member', 'admin'], 'member'),
      el('button', { type: 'submit', text: 'Save user' }));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const subject = form.elements.subject.value.trim();
      const body = { role: form.elements.role.value };
      if (form.elements.email.value.trim()) body.email = form.elements.email.value.trim();
      attempt(async () => {
        await admin('PUT', `/tenants/${enc(tenant)}/users/${enc(subject)}`, body);
        await show('users');
      }, `User ${subject} saved.`);
    });
    page.append(form);
    const search = field('Search by subject or email', { type: 'search', name: 'search' });
    page.append(search);
    const users = await admin('GET', `/tenants/${enc(tenant)}/users`);
    const body = el('tbody');
    const keysBox = el('div', { id: 'keys' });
    const render = () => {
      const needle = search.querySelector('input').value.trim().toLowerCase();
      body.replaceChildren(...users
        .filter((u) => !needle || u.subject.toLowerCase().includes(needle) || (u.email || '').toLowerCase().includes(needle))
        .map((user) => userRow(tenant, user, keysBox)));
    };
    search.querySelector('input').addEventListener('input', render);
    render();
    page.append(el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, ['Subject', 'Email', 'Role', 'Status', ''].map((h) => el('th', { scope: 'col', text: h })))),
      body)), keysBox);
  },

  async models(page) {
    page.append(el('h1', { text: 'Models' }));
    const tenant = await tenantPicker(page, () => show('models'));
    const catalogue = await admin('GET', '/models');
    const allowed = tenant ? await admin('GET', `/tenants/${enc(tenant)}/models`) : null;
    const platform = state.who.kind === 'platform';
    const price = (p, key) => (p && p[key] !== null && p[key] !== undefined ? `$${p[key]}` : '–');
    const boxes = [];
    page.append(el('p', { class: 'hint', text: allowed ? `Tenant ${tenant} may use: ${allowed.join(', ')}` : `Tenant ${tenant || '–'} may use every model.` }));
    page.append(table(['Model', 'Input / M tokens', 'Output / M tokens', 'Cached input / M', 'Cache write / M', 'Fallbacks', 'Allowed'], catalogue.map((model) => {
      const box = el('input', { type: 'checkbox', name: 'allowed', value: model.name, 'aria-label': `Allow ${model.name}`,
        checked: !allowed || allowed.includes(model.name), disabled: !platform });
      boxes.push(box);
      return el('tr', { 'data-testid': 'model-row', 'data-model': model.name },
        el('td', { text: model.name }), el('td', { text: price(model.price, 'input_per_mtok') }),
        el('td', { text: price(model.price, 'output_per_mtok') }), el('td', { text: price(model.price, 'cached_input_per_mtok') }),
        el('td', { text: price(model.price, 'cache_write_per_mtok') }), el('td', { text: model.fallbacks.join(', ') }),
        el('td', {}, box));
    })));
    if (platform && tenant) {
      const everything = el('button', { type: 'button', class: 'link', text: 'Allow every model' });
      everything.addEventListener('click', () => attempt(async () => {
        await admin('PUT', `/tenants/${enc(tenant)}/models`, null);
        await show('models');
      }, `${tenant} may use every model.`));
      const save = el('button', { type: 'button', text: 'Save the allow-list' });
      save.addEventListener('click', () => attempt(async () => {
        await admin('PUT', `/tenants/${enc(tenant)}/models`, boxes.filter((b) => b.checked).map((b) => b.value));
        await show('models');
      }, `Allow-list of ${tenant} saved.`));
      page.append(el('p', { class: 'inline' }, save, everything));
    }
  },

  async quotas(page) {
    page.append(el('h1', { text: 'Quotas' }));
    const tenant = await tenantPicker(page, () => show('quotas'));
    if (!tenant) return page.append(el('p', { text: 'Create a tenant first.' }));
    const platform = state.who.kind === 'platform';
    page.append(await quotaCard('Tenant', `/tenants/${enc(tenant)}/quota`, platform));
    page.append(await quotaCard('Default per user', `/tenants/${enc(tenant)}/default-user-quota`, true));
    const who = field('User subject', { name: 'quota-subject' });
    const look = el('button', { type: 'button', text: 'Show user quota' });
    const holder = el('div');
    look.addEventListener('click', () => attempt(async () => {
      const subject = who.querySelector('input').value.trim();
      holder.replaceChildren(await quotaCard(`User ${subject}`, `/tenants/${enc(tenant)}/users/${enc(subject)}/quota`, true));
    }));
    page.append(el('div', { class: 'card inline' }, who, look), holder);
  },

  async usage(page) {
    page.append(el('h1', { text: 'Usage' }));
    const tenant = await tenantPicker(page, () => show('usage'));
    if (!tenant) return page.append(el('p', { text: 'Create a tenant first.' }));
    const now = new Date();
    const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const from = field('From (UTC day)', { type: 'date', name: 'from', value: day(first) });
    const to = field('To (UTC day, exclusive)', { type: 'date', name: 'to', value: day(next) });
    const go = el('button', { type: 'button', text: 'Show' });
    const out = el('div');
    page.append(el('div', { class: 'card inline' }, from, to, go), out);
    const load = () => attempt(async () => {
      const period = `from=${enc(from.querySelector('input').value)}&to=${enc(to.querySelector('input').value)}`;
      const byDay = await admin('GET', `/tenants/${enc(tenant)}/usage?${period}&group_by=day,model`);
      const byUser = await admin('GET', `/tenants/${enc(tenant)}/usage?${period}&group_by=user`);
      out.replaceChildren(
        el('p', { class: 'totals', text: `Total: ${byDay.totals.requests} requests, ${byDay.totals.total_tokens} tokens, $${byDay.totals.cost_usd}` }),
        el('h2', { text: 'Tokens per day, by model' }),
        stackedChart(byDay.rows, (row) => row.period_start.slice(0, 10), (row) => row.model, (row) => row.total_tokens, 'usage-chart', 'Tokens per day by model'),
        el('h2', { text: 'Top users by cost' }),
        table(['User', 'Requests', 'Tokens', 'Cost (USD)'], [...byUser.rows]
          .sort((a, b) => b.cost_micro_usd - a.cost_micro_usd).slice(0, 10)
          .map((row) => el('tr', {}, el('td', { text: row.subject }), el('td', { text: row.requests }),
            el('td', { text: row.total_tokens }), el('td', { text: row.cost_usd })))),
        el('h2', { text: 'Exports' }),
        el('p', { class: 'exports' }, ['csv', 'jsonl', 'focus'].map((format) => el('a', {
          href: `/admin/v1/usage/export?${period}&tenant=${enc(tenant)}&format=${format}`,
          download: `usage-${tenant}.${format === 'focus' ? 'csv' : format}`,
          'data-testid': format === 'csv' ? 'export-download' : `export-${format}`,
          text: format === 'focus' ? 'FOCUS CSV' : format.toUpperCase(),
        }))));
    });
    go.addEventListener('click', load);
    await load();
  },

  async auth(page) {
    page.append(el('h1', { text: 'Authentication failures' }));
    page.append(el('p', { class: 'hint', text: 'Refusals this gateway replica made lately. A rise of unknown_user means the user store has drifted from the identity provider.' }));
    const platform = state.who.kind === 'platform';
    const tenant = platform ? null : state.tenant;
    const data = await admin('GET', tenant ? `/tenants/${enc(tenant)}/auth-failures` : '/auth/failures');
    page.append(el('h2', { text: 'Refusals per minute, by reason' }),
      stackedChart(data.per_minute, (row) => row.minute.slice(11, 16), (row) => row.reason, (row) => row.count, 'auth-chart', 'Refusals per minute by reason'));
    page.append(el('h2', { text: 'Latest refusals' }),
      table(['When (UTC)', 'Reason', 'Subject', 'Issuer', 'Tenant'], data.recent.map((r) => el('tr', {},
        el('td', { text: r.at }), el('td', { text: r.reason }), el('td', { text: r.subject || '' }),
        el('td', { text: r.issuer || '' }), el('td', { text: r.tenant || '' })))));
    if (platform) page.append(explainBox());
  },
};

function userRow(tenant, user, keysBox) {
  const path = `/tenants/${enc(tenant)}/users/${enc(user.subject)}`;
  const act = (label, method, suffix, body, done) => {
    const button = el('button', { type: 'button', text: label });
    button.addEventListener('click', () => attempt(async () => {
      await admin(method, path + suffix, body);
      await show('users');
    }, done));
    return button;
  };
  const keys = el('button', { type: 'button', text: 'Keys' });
  keys.addEventListener('click', () => attempt(() => renderKeys(keysBox, path, user.subject)));
  const actions = user.status === 'deleted' ? [] : [
    user.status === 'active'
      ? act('Suspend', 'PUT', '', { status: 'suspended' }, `${user.subject} suspended.`)
      : act('Reactivate', 'PUT', '', { status: 'active' }, `${user.subject} reactivated.`),
    act('Revoke tokens', 'POST', '/revoke-tokens', {}, `Tokens of ${user.subject} revoked.`),
    act('Delete', 'DELETE', '', undefined, `${user.subject} deleted.`),
    keys,
  ];
  return el('tr', { 'data-testid': 'user-row', 'data-subject': user.subject },
    el('td', { text: user.subject }), el('td', { text: user.email || '' }), el('td', { text: user.role }),
    el('td', { text: user.status }), el('td', { class: 'actions' }, actions));
}

async function renderKeys(box, path, subject) {
  const keys = await admin('GET', `${path}/keys`);
  const name = field('New key name', { name: 'key-name', value: 'console' });
  const create = el('button', { type: 'button', text: 'Create key' });
  const shown = el('output', { class: 'secret', 'aria-live': 'polite' });
  create.addEventListener('click', () => attempt(async () => {
    const created = await admin('POST', `${path}/keys`, { name: name.querySelector('input').value.trim() || 'console' });
    await renderKeys(box, path, subject);
    box.querySelector('output').textContent = `Copy it now, it is shown once: ${created.key}`;
  }));
  box.replaceChildren(el('section', { class: 'card', 'aria-label': `Keys of ${subject}` },
    el('h2', { text: `API keys of ${subject}` }), el('div', { class: 'inline' }, name, create), shown,
    table(['Name', 'Created', 'Expires', 'Revoked', ''], keys.map((key) => {
      const revoke = el('button', { type: 'button', text: 'Revoke', disabled: Boolean(key.revoked_at) });
      revoke.addEventListener('click', () => attempt(async () => {
        await admin('DELETE', `${path}/keys/${enc(key.id)}`);
        await renderKeys(box, path, subject);
      }));
      return el('tr', {}, el('td', { text: key.name }), el('td', { text: key.created_at }),
        el('td', { text: key.expires_at || '' }), el('td', { text: key.revoked_at || '' }), el('td', {}, revoke));
    }))));
}

const LIMITS = ['requests_per_minute', 'tokens_per_minute', 'tokens_per_day', 'tokens_per_month', 'cost_usd_per_month'];

async function quotaCard(title, path, editable) {
  const quota = await admin('GET', path);
  const card = el('section', { class: 'card', 'aria-label': `${title} quota` }, el('h2', { text: `${title} quota` }));
  for (const row of quota.usage || []) {
    if (row.max === null || row.max === undefined) continue;
    const used = Number(row.used);
    const reserved = Number(row.reserved);
    const max = Number(row.max) || 1;
    const bar = el('div', { class: 'bar', role: 'img', 'aria-label': `${row.limit}: ${used} used, ${reserved} reserved of ${row.max}` },
      el('span', { class: 'used' }), el('span', { class: 'reserved' }));
    bar.children[0].style.width = `${Math.min(100, (used / max) * 100)}%`;
    bar.children[1].style.width = `${Math.min(100, (reserved / max) * 100)}%`;
    card.append(el('div', { class: 'limit' },
      el('span', { class: 'name', text: row.limit }), bar,
      el('span', { class: 'figures', text: `${used} used + ${reserved} reserved / ${row.max}; resets ${row.resets_at}` })));
  }
  if (editable) {
    const form = el('form', { class: 'inline' }, LIMITS.map((limit) => field(limit, {
      name: limit, type: 'number', min: 0, step: limit === 'cost_usd_per_month' ? '0.01' : '1',
      value: quota.limits && quota.limits[limit] !== null ? quota.limits[limit] : '',
    })), el('button', { type: 'submit', text: 'Save limits' }));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const body = {};
      for (const limit of LIMITS) {
        const value = form.elements[limit].value;
        body[limit] = value === '' ? null : Number(value);
      }
      attempt(async () => {
        await admin('PUT', path, body);
        card.replaceWith(await quotaCard(title, path, editable));
      }, `${title} quota saved.`);
    });
    card.append(form);
  }
  return card;
}

function explainBox() {
  const text = el('textarea', { id: 'explain-token', rows: 3, required: true });
  const out = el('pre', { class: 'explain', 'aria-live': 'polite' });
  const form = el('form', { class: 'card' }, el('h2', { text: 'Why is this token refused?' }),
    el('label', { for: 'explain-token', text: 'Paste a token' }), text,
    el('button', { type: 'submit', text: 'Explain' }), out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const explained = await admin('POST', '/auth/explain', { token: text.value.trim() });
      out.textContent = JSON.stringify(explained, null, 2);
    });
  });
  return form;
}

// A stacked bar chart as SVG: one bar per x, one segment per series.
function stackedChart(rows, xOf, seriesOf, valueOf, testid, title) {
  const xs = [...new Set(rows.map(xOf))].sort();
  const series = [...new Set(rows.map(seriesOf))].sort();
  const totals = new Map(xs.map((x) => [x, 0]));
  for (const row of rows) totals.set(xOf(row), totals.get(xOf(row)) + Number(valueOf(row)));
  const max = Math.max(1, ...totals.values());
  const width = 640;
  const height = 220;
  const band = xs.length ? (width - 40) / xs.length : width;
  const barWidth = Math.max(1, Math.min(band - 4, 56));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height + 30}`, class: 'chart', role: 'img', 'aria-label': title, 'data-testid': testid },
    svg('title', {}, document.createTextNode(title)));
  xs.forEach((x, i) => {
    let top = height;
    for (const [s, name] of series.entries()) {
      const value = rows.filter((r) => xOf(r) === x && seriesOf(r) === name).reduce((sum, r) => sum + Number(valueOf(r)), 0);
      if (!value) continue;
      const h = (value / max) * (height - 10);
      top -= h;
      chart.append(svg('rect', { x: 30 + i * band + (band - barWidth) / 2, y: top, width: barWidth, height: h, class: COLORS[s % COLORS.length] },
        svg('title', {}, document.createTextNode(`${x} ${name}: ${value}`))));
    }
    const label = svg('text', { x: 30 + i * band + band / 2, y: height + 18, 'text-anchor': 'middle', class: 'axis' });
    label.textContent = x;
    chart.append(label);
  });
  const legend = el('ul', { class: 'legend' }, series.map((name, s) => el('li', {}, el('span', { class: `swatch ${COLORS[s % COLORS.length]}` }), name)));
  if (!xs.length) return el('figure', { 'data-testid': testid }, el('p', { text: 'Nothing in this period.' }));
  return el('figure', {}, chart, legend);
}

function day(date) {
  return date.toISOString().slice(0, 10);
}

document.addEventListener('DOMContentLoaded', start);
