// The dashboard against a jobwire that requires API keys: the login form,
// the session cookie, CSRF tokens on changes, roles, logout, rate limits,
// and the loopback-only refusal when no keys are configured. Like
// dashboard.test.mjs, it drives Debian's headless Chromium against a real
// jobwire, redis-server and the fake Replicate, all on loopback.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

import {chromium} from 'playwright-core';

import {fixture, json, sleep, startFake, startJobwire, startRedis, waitFor} from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const OPS_KEY = 'ops-key-4b8e1f07c29d5a36e1';
const VIEWER_KEY = 'viewer-key-90d3a7c5e2b14f68';
const SESSION_SECRET = 'browser-test-session-secret-6c1e9a04d7b25f83';

function sha256Key(key) {
  return 'sha256:' + crypto.createHash('sha256').update(key).digest('hex');
}

// ops has a hashed key, viewer a raw one, so both forms of the file are used.
function writeKeyFile(dir) {
  const file = path.join(dir, 'api-keys');
  fs.writeFileSync(file, [
    '# browser test keys',
    `ops read,operate ${sha256Key(OPS_KEY)}`,
    `viewer read ${VIEWER_KEY}`,
    '',
  ].join('\n'));
  return file;
}

const bearer = (key) => ({Authorization: `Bearer ${key}`});

// Starts Chromium with one fresh context (no cookies) and records what the
// page does: requests with their headers, and uncaught script errors.
async function openBrowser(contextOptions = {}) {
  const browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: ARGS});
  const context = await browser.newContext(Object.assign({viewport: {width: 1280, height: 900}}, contextOptions));
  const page = await context.newPage();
  const seen = {requests: [], pageErrors: []};
  page.on('request', (r) => seen.requests.push({url: r.url(), method: r.method(), headers: r.headers()}));
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  return {browser, context, page, seen};
}

// What the page may not see: the HttpOnly session cookie, read through
// the browser's own cookie store.
async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === 'jw_session');
}

// The CSRF token the server expects with the browser's current cookie.
async function expectedCsrf(origin, context) {
  const cookie = await sessionCookie(context);
  assert.ok(cookie, 'the browser has a jw_session cookie');
  const r = await json(origin + '/api/auth/session', {headers: {Cookie: `jw_session=${cookie.value}`}});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.match(r.body.csrf_token, /^[0-9a-f]{64}$/);
  return r.body.csrf_token;
}

async function logIn(page, key) {
  await page.locator('#login-key').fill(key);
  await page.locator('#login-key').press('Enter');
}

function training(id, status) {
  return Object.assign(fixture('training.processing.json'), {
    id, status, logs: '',
    urls: {get: `https://api.replicate.com/v1/trainings/${id}`, cancel: `https://api.replicate.com/v1/trainings/${id}/cancel`},
    created_at: new Date(Date.now() - 60000).toISOString(),
    started_at: null,
    completed_at: null,
  });
}

function stopAll(processes) {
  return Promise.all(processes.filter(Boolean).map((p) => p.stop()));
}

function checkSanitizer(jw) {
  if (jw && /AddressSanitizer|runtime error:/.test(jw.output)) {
    console.log(jw.output);
    throw new Error('jobwire reported a sanitizer error');
  }
}

/*
 * Starts Redis, the fake Replicate, jobwire (with the test key file when
 * keys is true) and Chromium, filling stack as each part comes up, so
 * stopStack() cleans up after a start that failed halfway.
 */
async function startStack(stack, {keys = true, env = {}, browserOptions} = {}) {
  if (keys) {
    stack.keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'jw-browser-keys-'));
    env = Object.assign({
      JOBWIRE_API_KEYS_FILE: writeKeyFile(stack.keyDir),
      JOBWIRE_SESSION_SECRET: SESSION_SECRET,
    }, env);
  }
  stack.redis = await startRedis();
  stack.fake = await startFake();
  stack.jw = await startJobwire(stack.redis, stack.fake, 0, env);
  Object.assign(stack, await openBrowser(browserOptions));
  return stack;
}

async function stopStack(stack) {
  if (stack.browser) await stack.browser.close();
  await stopAll([stack.jw, stack.fake, stack.redis]);
  checkSanitizer(stack.jw);
  if (stack.keyDir) fs.rmSync(stack.keyDir, {recursive: true, force: true});
  if (stack.redis) fs.rmSync(stack.redis.dir, {recursive: true, force: true});
}

describe('dashboard with API keys', () => {
  let redis, fake, jw, keyDir, browser, context, page, seen;
  const row = (id) => page.locator(`li.job[data-job-id="${id}"]`);
  const eventStreams = () => seen.requests.filter((r) => r.url.includes('/api/events')).length;

  const stack = {};

  before(async () => {
    await startStack(stack, {env: {JOBWIRE_LOGIN_RATE_LIMIT: '0'}});
    ({redis, fake, jw, keyDir, browser, context, page, seen} = stack);
  });

  after(() => stopStack(stack));

  test('login form replaces the dashboard', async () => {
    await page.goto(jw.origin + '/');
    await page.locator('#login').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    assert.equal(await page.locator('#sync').isVisible(), false);
    assert.equal(await page.locator('#login-key').getAttribute('type'), 'password');
    assert.equal(await page.locator('label[for="login-key"]').innerText(), 'API key');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-key');
    assert.equal(await page.locator('#login-error').isVisible(), false);
    // Nothing but the session check is requested before a login.
    await sleep(1000);
    const api = seen.requests.filter((r) => r.url.includes('/api/')).map((r) => new URL(r.url).pathname);
    assert.deepEqual(api, ['/api/auth/session']);
    assert.equal(eventStreams(), 0);
  });

  test('wrong key shows the server error', async () => {
    await logIn(page, 'not-a-key-0000');
    await page.locator('#login-error').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#login-error').innerText(), 'Login failed: the API key is not known.');
    assert.equal(await page.locator('#login-key').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-key');
    assert.equal(await sessionCookie(context), undefined);
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    assert.equal(eventStreams(), 0);
  });

  test('right key opens the list', async () => {
    await logIn(page, OPS_KEY);
    await page.locator('#dashboard').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#login').isVisible(), false);
    assert.equal(await page.locator('#account-name').innerText(), 'ops');
    assert.equal(await page.locator('#account-roles').innerText(), 'roles: read, operate');
    assert.equal(await page.locator('#logout').isVisible(), true);
    assert.equal(await page.locator('#sync').isVisible(), true);
    assert.equal(await page.locator('#login-key').inputValue(), '', 'the key is not kept in the field');
    await page.locator('#live[data-state="live"]').waitFor({timeout: 5000});
    await page.locator('#empty').waitFor({state: 'visible', timeout: 5000});
    assert.equal(eventStreams(), 1);
  });

  test('session cookie is HttpOnly and SameSite=Strict', async () => {
    const cookie = await sessionCookie(context);
    assert.ok(cookie, 'a jw_session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    assert.equal(await page.evaluate(() => document.cookie), '');
    const stored = await page.evaluate(() => JSON.stringify(Object.assign({}, localStorage, sessionStorage)));
    assert.equal(stored, '{}', 'nothing kept in web storage');
  });

  test('Sync sends the CSRF token', async () => {
    const gen = await json(fake.control + '/jobs', {
      method: 'POST',
      body: {count: 3, kind: 'training', status: ['starting', 'processing', 'succeeded'], spacing_seconds: 120},
    });
    assert.equal(gen.status, 201, JSON.stringify(gen.body));

    await page.locator('#sync').click();
    const toast = page.locator('.toast', {hasText: 'Discovered'});
    await toast.waitFor({timeout: 10000});
    assert.equal(await toast.innerText(), 'Discovered 3 jobs from Replicate');
    await waitFor('3 rows', async () => (await page.locator('li.job').count()) === 3, 5000);

    const sent = seen.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/api/cloud/jobs/sync'));
    assert.equal(sent.length, 1);
    assert.equal(sent[0].headers['x-csrf-token'], await expectedCsrf(jw.origin, context));
    const listed = await json(jw.origin + '/api/cloud/jobs', {headers: bearer(OPS_KEY)});
    assert.equal(listed.body.total, 3);
  });

  test('POST without CSRF header is rejected', async () => {
    // The page's own fetch sends the cookie but not the header: the server
    // must refuse, or the Sync above proves nothing about the header.
    const r = await page.evaluate(async () => {
      const res = await fetch('/api/cloud/jobs/sync', {method: 'POST'});
      return {status: res.status, body: await res.json()};
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.error, 'csrf_token_invalid');
  });

  test('webhook arrives over cookie stream', async () => {
    const before = seen.requests.filter((r) => r.url.includes('/api/cloud/jobs?')).length;
    const sent = await json(fake.control + '/webhooks/send', {
      method: 'POST',
      body: {url: jw.origin + '/api/webhooks/replicate', bodies: [training('brauthhook1', 'starting')]},
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.equal(sent.body.deliveries[0].status, 200, JSON.stringify(sent.body.deliveries[0]));
    await row('brauthhook1').waitFor({timeout: 3000});
    assert.equal(await row('brauthhook1').locator('.badge').textContent(), 'queued');
    assert.equal(await page.locator('li.job').first().getAttribute('data-job-id'), 'brauthhook1');
    assert.equal(seen.requests.filter((r) => r.url.includes('/api/cloud/jobs?')).length, before,
      'the row came from the event stream, not a list reload');
  });

  test('Cancel reaches Replicate with CSRF token', async () => {
    const listed = (await json(jw.origin + '/api/cloud/jobs', {headers: bearer(OPS_KEY)})).body.jobs;
    const job = listed.find((j) => j.status === 'queued' && j.job_id !== 'brauthhook1');
    assert.ok(job, JSON.stringify(listed));
    const cancelPath = `/v1/trainings/${job.job_id}/cancel`;
    const cancelsAtFake = async () =>
      (await json(`${fake.control}/requests?method=POST&path_prefix=${encodeURIComponent(cancelPath)}`)).body.total;
    assert.equal(await cancelsAtFake(), 0);

    const button = row(job.job_id).locator('.cancel');
    await button.click();
    assert.equal(await button.innerText(), 'Confirm cancel');
    await button.click();
    await waitFor('cancelled badge', async () =>
      (await row(job.job_id).locator('.badge').textContent()) === 'cancelled', 5000);

    const sent = seen.requests.filter((r) => r.method === 'POST' && r.url.endsWith(`/api/cloud/jobs/${job.job_id}/cancel`));
    assert.equal(sent.length, 1);
    assert.equal(sent[0].headers['x-csrf-token'], await expectedCsrf(jw.origin, context));
    assert.equal(await cancelsAtFake(), 1);
    const after = await json(`${jw.origin}/api/cloud/jobs/${job.job_id}`, {headers: bearer(OPS_KEY)});
    assert.equal(after.body.job.status, 'cancelled');
  });

  test('polling override sends CSRF token', async () => {
    await page.locator('#settings-toggle').click();
    await waitFor('polling status', async () =>
      /^(on|off) \(/.test(await page.locator('#polling-status').innerText()), 5000);
    assert.equal(await page.locator('#polling-mode').isEnabled(), true);
    assert.equal(await page.locator('#polling-mode').inputValue(), 'auto');

    await page.locator('#polling-mode').selectOption('off');
    await page.locator('.toast', {hasText: 'Job status polling is off'}).waitFor({timeout: 5000});
    const status = await json(jw.origin + '/api/cloud/polling/status', {headers: bearer(OPS_KEY)});
    assert.equal(status.body.override, false);
    assert.equal(status.body.is_active, false);
    assert.match(await page.locator('#polling-status').innerText(), /^off \(set through PUT/);

    await page.locator('#polling-mode').selectOption('auto');
    await waitFor('override cleared', async () =>
      (await json(jw.origin + '/api/cloud/polling/status', {headers: bearer(OPS_KEY)})).body.override === null, 5000);
    const puts = seen.requests.filter((r) => r.method === 'PUT' && r.url.endsWith('/api/cloud/polling/setting'));
    assert.equal(puts.length, 2);
    assert.equal(puts[1].headers['x-csrf-token'], await expectedCsrf(jw.origin, context));
    await page.locator('#settings-toggle').click();
  });

  test('logout ends session and stream', async () => {
    const streamsBefore = eventStreams();
    await page.locator('#logout').click();
    await page.locator('#login').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    assert.equal(await page.locator('#account').isVisible(), false);
    assert.equal(await page.locator('#login-status').innerText(), 'You have logged out.');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-key');
    assert.equal(await page.locator('li.job').count(), 0, 'no rows are left in the page');
    assert.equal(await sessionCookie(context), undefined);

    const r = await page.evaluate(async () => {
      const res = await fetch('/api/cloud/jobs');
      return {status: res.status, body: await res.json()};
    });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'unauthorized');

    // The event stream is closed and not reopened, and nothing polls.
    const requestsAfter = seen.requests.length;
    await sleep(4000);
    assert.equal(eventStreams(), streamsBefore);
    const later = seen.requests.slice(requestsAfter).map((x) => x.url);
    assert.deepEqual(later.filter((u) => u.includes('/api/')), []);
  });

  test('read-only key hides the operate controls', async () => {
    await logIn(page, VIEWER_KEY);
    await page.locator('#dashboard').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#account-name').innerText(), 'viewer');
    assert.equal(await page.locator('#account-roles').innerText(), 'roles: read');
    await waitFor('4 rows', async () => (await page.locator('li.job').count()) === 4, 5000);

    const badges = await page.locator('li.job .badge').allTextContents();
    assert.ok(badges.includes('queued'), badges.join(' '));
    assert.ok(badges.includes('cancelled'), badges.join(' '));
    assert.equal(await page.locator('#sync').isVisible(), false);
    assert.equal(await page.locator('li.job .cancel:visible').count(), 0);
    assert.equal(await page.locator('li.job .delete:visible').count(), 0);

    await page.locator('#settings-toggle').click();
    assert.equal(await page.locator('#polling-mode').isDisabled(), true);
    assert.equal(await page.locator('#polling-note').innerText(), 'Changing it needs the operate role.');
    await page.locator('#settings-toggle').click();
  });

  test('pages fit a phone screen', async () => {
    for (const signedIn of [false, true]) {
      const phoneContext = signedIn ? context : await browser.newContext();
      const phone = await phoneContext.newPage();
      phone.on('pageerror', (e) => seen.pageErrors.push('phone: ' + String(e)));
      await phone.setViewportSize({width: 375, height: 740});
      await phone.goto(jw.origin + '/');
      if (signedIn) {
        await phone.locator('li.job').first().waitFor({timeout: 5000});
        await phone.locator('#settings-toggle').click();
        await phone.locator('#settings').waitFor({state: 'visible'});
        assert.equal(await phone.locator('#logout').isVisible(), true);
      } else {
        await phone.locator('#login').waitFor({state: 'visible', timeout: 5000});
      }
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `page is ${width} px wide at 375 px (signed in: ${signedIn})`);
      await phone.close();
      if (!signedIn) await phoneContext.close();
    }
  });

  test('403 shows a toast with the server message', async () => {
    // A hidden button can still be clicked from a script, as from a page
    // whose roles changed: the server's refusal must reach the user.
    await page.evaluate(() => document.getElementById('sync').click());
    const toast = page.locator('.toast.error');
    await toast.waitFor({timeout: 5000});
    assert.equal(await toast.innerText(), 'Sync failed: the key viewer does not have the operate role');
    const listed = await json(jw.origin + '/api/cloud/jobs', {headers: bearer(OPS_KEY)});
    assert.equal(listed.body.total, 4, 'nothing was synced');
  });

  test('ended session shows login form', async () => {
    // The browser drops the cookie when its Max-Age runs out; the next call
    // (here, a filter change) then gets 401.
    await context.clearCookies();
    await page.locator('#status-filter').selectOption('completed');
    await page.locator('#login').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#login-error').innerText(), 'Your session has ended. Log in again to continue.');
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-key');
    assert.deepEqual(seen.pageErrors, []);
  });
});

describe('dashboard rate limits', () => {
  let redis, fake, jw, keyDir, browser, context, page, seen;

  const stack = {};

  before(async () => {
    await startStack(stack, {env: {JOBWIRE_RATE_LIMIT: '1', JOBWIRE_LOGIN_RATE_LIMIT: '2'}});
    ({redis, fake, jw, keyDir, browser, context, page, seen} = stack);
  });

  after(() => stopStack(stack));

  test('429 on Sync shows the server message', async () => {
    await page.goto(jw.origin + '/');
    await page.locator('#login').waitFor({state: 'visible', timeout: 5000});
    await logIn(page, OPS_KEY);                     // login attempt 1 of 2
    await page.locator('#dashboard').waitFor({state: 'visible', timeout: 5000});

    await page.locator('#sync').click();            // change 1 of 1
    await page.locator('.toast', {hasText: 'Discovered'}).waitFor({timeout: 10000});
    await page.locator('#sync:not([disabled])').waitFor({timeout: 5000});
    await page.locator('#sync').click();
    const toast = page.locator('.toast.error');
    await toast.waitFor({timeout: 5000});
    assert.match(await toast.innerText(),
      /^Sync failed: more than 1 changes a minute from this caller; retry in \d+ s$/);
  });

  test('429 on login shows the server message', async () => {
    await page.locator('#logout').click();
    await page.locator('#login').waitFor({state: 'visible', timeout: 5000});
    await logIn(page, 'not-a-key-0001');            // login attempt 2 of 2
    await waitFor('invalid key error', async () =>
      (await page.locator('#login-error').innerText()) === 'Login failed: the API key is not known.', 5000);

    await logIn(page, OPS_KEY);
    await waitFor('rate limit error', async () =>
      /^Too many login attempts/.test(await page.locator('#login-error').innerText()), 5000);
    assert.match(await page.locator('#login-error').innerText(),
      /^Too many login attempts: more than 2 login attempts a minute from this caller; retry in \d+ s\.$/);
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    assert.equal(await sessionCookie(context), undefined);
    assert.deepEqual(seen.pageErrors, []);
  });
});

describe('dashboard without API keys for a remote client', () => {
  let redis, fake, jw, browser, page, seen;

  const stack = {};

  before(async () => {
    // jobwire trusts X-Forwarded-For from loopback, so the browser's header
    // makes it look like a client on another host (a documentation address).
    await startStack(stack, {
      keys: false,
      env: {JOBWIRE_TRUSTED_PROXIES: '127.0.0.1/32'},
      browserOptions: {extraHTTPHeaders: {'X-Forwarded-For': '203.0.113.7'}},
    });
    ({redis, fake, jw, browser, page, seen} = stack);
  });

  after(() => stopStack(stack));

  test('loopback_only page explains the refusal', async () => {
    await page.goto(jw.origin + '/');
    await page.locator('#blocked').waitFor({state: 'visible', timeout: 5000});
    assert.equal(await page.locator('#blocked-title').innerText(), 'This jobwire serves only its own host');
    assert.match(await page.locator('#blocked-text').innerText(), /no API keys configured/);
    assert.match(await page.locator('#blocked-text').innerText(), /JOBWIRE_API_KEYS_FILE/);
    assert.match(await page.locator('#blocked-detail').innerText(), /^Server message: no API keys are configured, so only loopback clients are served/);
    assert.equal(await page.locator('#login').isVisible(), false);
    assert.equal(await page.locator('#dashboard').isVisible(), false);
    const api = seen.requests.filter((r) => r.url.includes('/api/')).map((r) => new URL(r.url).pathname);
    assert.deepEqual(api, ['/api/auth/session']);
    assert.deepEqual(seen.pageErrors, []);
  });
});
