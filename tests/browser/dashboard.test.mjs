// The Cloud dashboard in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core, so no browser is downloaded). It runs against
// a real jobwire, a real redis-server and the fake Replicate, all on
// loopback. The tests run in order and share one page, as a user would.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';
import zlib from 'node:zlib';

import {chromium} from 'playwright-core';

import {ROOT, fixture, json, sleep, startFake, startJobwire, startRedis, waitFor} from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// DASHBOARD_SCREENSHOT=docs/dashboard.png refreshes the README's picture;
// by default the screenshot goes to a temporary file.
const SCREENSHOT = process.env.DASHBOARD_SCREENSHOT ?
  path.resolve(process.env.DASHBOARD_SCREENSHOT) : path.join(os.tmpdir(), 'jobwire-dashboard.png');

let redis, fake, jw, context, page, profile;
const consoleErrors = [];
const requests = [];   // every URL the page requested, in order

// The Replicate object of a training in a given state, from the fixtures.
function training(id, status, logs, extra = {}) {
  const base = fixture(status === 'succeeded' ? 'training.succeeded.json' : 'training.processing.json');
  return Object.assign(base, {
    id, status, logs,
    urls: {get: `https://api.replicate.com/v1/trainings/${id}`, cancel: `https://api.replicate.com/v1/trainings/${id}/cancel`},
    created_at: new Date(Date.now() - 60000).toISOString(),
    started_at: status === 'starting' ? null : new Date(Date.now() - 50000).toISOString(),
    completed_at: status === 'succeeded' ? new Date().toISOString() : null,
  }, extra);
}

async function sendWebhook(body) {
  const r = await json(fake.control + '/webhooks/send', {
    method: 'POST',
    body: {url: jw.origin + '/api/webhooks/replicate', bodies: [body]},
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.deliveries[0].status, 200, JSON.stringify(r.body.deliveries[0]));
}

const row = (id) => page.locator(`li.job[data-job-id="${id}"]`);

function rawGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {headers}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks)}));
    });
    req.on('error', reject);
  });
}

describe('dashboard', () => {
  before(async () => {
    redis = await startRedis();
    fake = await startFake();
    jw = await startJobwire(redis, fake);
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'jw-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS,
      viewport: {width: 1280, height: 900},
    });
    page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => requests.push(r.url()));
  });

  after(async () => {
    if (context) await context.close();
    for (const p of [jw, fake, redis]) if (p) await p.stop();
    if (jw && /AddressSanitizer|runtime error:/.test(jw.output)) {
      console.log(jw.output);
      throw new Error('jobwire reported a sanitizer error');
    }
    if (profile) fs.rmSync(profile, {recursive: true, force: true});
    if (redis) fs.rmSync(redis.dir, {recursive: true, force: true});
  });

  test('GET / serves the page with types, cache headers and gzip', async () => {
    const page1 = await rawGet(jw.origin + '/', {'accept-encoding': 'gzip'});
    assert.equal(page1.status, 200);
    assert.equal(page1.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page1.headers['cache-control'], 'no-cache');
    assert.equal(page1.headers['content-encoding'], 'gzip');
    assert.match(zlib.gunzipSync(page1.body).toString(), /<title>Cloud jobs/);
    assert.ok(page1.headers.etag, 'an ETag');

    const again = await rawGet(jw.origin + '/', {'if-none-match': page1.headers.etag});
    assert.equal(again.status, 304);

    const js = await rawGet(jw.origin + '/app.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=300');
    assert.equal(js.headers['content-encoding'], undefined, 'no gzip unless asked');
    assert.equal(js.body.toString(), fs.readFileSync(path.join(ROOT, 'web/app.js'), 'utf8'));

    const css = await rawGet(jw.origin + '/app.css', {'accept-encoding': 'gzip'});
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(css.headers['content-encoding'], 'gzip');

    const missing = await rawGet(jw.origin + '/no-such-file.js');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).error, 'not_found');

    const api = await rawGet(jw.origin + '/api/no-such-route', {'accept-encoding': 'gzip'});
    assert.equal(api.status, 404);
    assert.equal(api.headers['content-encoding'], undefined, 'API answers are not gzipped');
    assert.match(JSON.parse(api.body).message, /no route for GET \/api\/no-such-route/);

    const jobs = await rawGet(jw.origin + '/api/cloud/jobs', {'accept-encoding': 'gzip'});
    assert.equal(jobs.status, 200);
    assert.equal(jobs.headers['content-encoding'], undefined);
    assert.equal(JSON.parse(jobs.body).total, 0);
  });

  test('first load lists without syncing and shows the empty state', async () => {
    await page.goto(jw.origin + '/');
    await page.locator('#live[data-state="live"]').waitFor({timeout: 5000});
    await page.locator('#empty').waitFor({state: 'visible'});
    assert.match(await page.locator('#empty').innerText(), /scripts\/send-test-webhook/);
    assert.match(await page.locator('#empty').innerText(), /Sync/);
    const lists = requests.filter((u) => u.includes('/api/cloud/jobs?'));
    assert.ok(lists.length >= 1);
    assert.ok(!lists[0].includes('sync_active'), `first list request synced: ${lists[0]}`);
    assert.equal(requests.filter((u) => u.includes('/api/events')).length, 1, 'one EventSource');
  });

  test('Sync shows a spinner, then a toast with N, then reloads list and metrics', async () => {
    const gen = await json(fake.control + '/jobs', {
      method: 'POST',
      body: {count: 5, kind: 'training', status: ['succeeded', 'failed', 'processing', 'starting', 'canceled'],
        spacing_seconds: 120},
    });
    assert.equal(gen.status, 201, JSON.stringify(gen.body));
    // Slow the provider's list down so the spinner is there to see.
    await json(fake.control + '/faults', {method: 'POST',
      body: {delay: 1.0, path_prefix: '/v1/trainings', method: 'GET'}});

    const before = requests.length;
    await page.locator('#sync').click();
    await page.locator('#sync.busy').waitFor({timeout: 1000});
    assert.equal(await page.locator('#sync').isDisabled(), true);
    assert.equal(await page.locator('#sync .spinner').isVisible(), true);

    const t = page.locator('.toast', {hasText: 'Discovered'});
    await t.waitFor({timeout: 10000});
    assert.equal(await t.innerText(), 'Discovered 5 jobs from Replicate');
    await page.locator('#sync:not(.busy):not([disabled])').waitFor({timeout: 2000});

    await waitFor('5 rows', async () => (await page.locator('li.job').count()) === 5, 5000);
    const after = requests.slice(before);
    assert.ok(after.some((u) => u.includes('/api/cloud/jobs?')), 'list reloaded');
    assert.ok(after.some((u) => u.includes('/api/cloud/metrics') || u.includes('limit=1&status=')), 'metrics reloaded');

    const listed = (await json(jw.origin + '/api/cloud/jobs?limit=500')).body;
    assert.equal(listed.total, 5);
    for (const s of ['completed', 'failed', 'running', 'queued', 'cancelled']) {
      await waitFor(`metric ${s} = 1`, async () =>
        (await page.locator(`.metric-status[data-status="${s}"] .n`).innerText()) === '1', 3000);
    }
    assert.equal(await page.locator('.metric-status[data-status="pending"] .n').innerText(), '0');
    assert.equal(await page.locator('#metric-count').innerText(), '5');
    const cost = listed.jobs.reduce((s, j) => s + (j.cost_usd || 0), 0);
    const costText = await page.locator('#metric-cost').innerText();
    assert.equal(costText, '$' + (cost !== 0 && cost < 1 ? cost.toFixed(4) : cost.toFixed(2)));

    // Each row shows what the API says about its job.
    for (const job of listed.jobs) {
      const r = row(job.job_id);
      assert.equal(await r.locator('.badge').textContent(), job.status);
      assert.equal(await r.locator('.error-message').isVisible(), job.status === 'failed');
      if (job.status === 'failed') assert.equal(await r.locator('.error-message').innerText(), job.error_message);
      assert.equal(await r.locator('.cancel').isVisible(), job.is_active);
      assert.equal(await r.locator('.delete').isVisible(), job.is_terminal);
    }
    assert.equal(await page.locator('#empty').isVisible(), false);
    await json(fake.control + '/faults', {method: 'DELETE'});
  });

  test('a webhook appears in the list within a second, without a reload', async () => {
    await page.evaluate(() => { window.__sameDocument = true; });
    const listsBefore = requests.filter((u) => u.includes('/api/cloud/jobs?')).length;
    await sendWebhook(training('brwebhook1', 'starting', ''));
    const sent = Date.now();
    await row('brwebhook1').waitFor({timeout: 1000});
    assert.ok(Date.now() - sent < 1000);
    assert.equal(await row('brwebhook1').locator('.badge').textContent(), 'queued');
    assert.equal(await page.locator('li.job').first().getAttribute('data-job-id'), 'brwebhook1');
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    assert.equal(requests.filter((u) => u.includes('/api/cloud/jobs?')).length, listsBefore, 'no list reload');
    assert.match(await page.locator('#page-info').innerText(), /of 6$/);
  });

  test('a running job\'s progress bar moves and polling stops once it completes', async () => {
    const id = 'brwebhook1';
    const logs1 = 'Loading weights\nstep 100/1000 loss 0.5120\n';
    await sendWebhook(training(id, 'processing', logs1));
    const bar = row(id).locator('.bar');
    await waitFor('progress 10', async () => (await bar.getAttribute('aria-valuenow')) === '10', 2000);
    assert.equal(await row(id).locator('.badge').textContent(), 'running');
    assert.equal(await row(id).locator('.stage').innerText(), 'Training');
    assert.equal(await row(id).locator('.last-log').innerText(), 'step 100/1000 loss 0.5120');
    const w1 = await row(id).locator('.fill').evaluate((e) => e.style.width);
    assert.equal(w1, '10%');

    await sendWebhook(training(id, 'processing', logs1 + 'step 450/1000 loss 0.3100\n'));
    await waitFor('progress 45', async () => (await bar.getAttribute('aria-valuenow')) === '45', 2000);
    assert.equal(await row(id).locator('.fill').evaluate((e) => e.style.width), '45%');
    assert.equal(await row(id).locator('.percent').innerText(), '45.0%');

    // The row polls its inline progress every 5 s while running.
    const polls = () => requests.filter((u) => u.endsWith(`/api/cloud/jobs/${id}/inline-progress`)).length;
    await waitFor('an inline-progress request', () => polls() >= 1, 7000, 100);

    await sendWebhook(training(id, 'succeeded', logs1 + 'step 1000/1000 loss 0.2000\nSaving checkpoint\n'));
    await waitFor('completed badge', async () => (await row(id).locator('.badge').textContent()) === 'completed', 2000);
    assert.equal(await row(id).locator('.job-progress').isVisible(), false);
    const n = polls();
    await sleep(11000);
    assert.equal(polls(), n, 'inline-progress requests went on after the job completed');
  });

  test('only running jobs poll inline progress', async () => {
    const listed = (await json(jw.origin + '/api/cloud/jobs?limit=500')).body.jobs;
    const polled = new Set(requests.filter((u) => u.includes('/inline-progress'))
      .map((u) => u.split('/api/cloud/jobs/')[1].split('/')[0]));
    for (const id of polled) {
      assert.ok(id === 'brwebhook1' || listed.find((j) => j.job_id === id).status === 'running',
        `${id} was polled`);
    }
  });

  test('settings panel shows provider validation', async () => {
    await page.locator('#settings-toggle').click();
    await waitFor('validated', async () => (await page.locator('#provider-status').getAttribute('data-state')) === 'valid', 5000);
    assert.match(await page.locator('#provider-status').innerText(), /^connected/);
    assert.equal(await page.locator('#provider-url').innerText(), fake.apiUrl);
    await page.locator('#settings-toggle').click();
    assert.equal(await page.locator('#settings').isVisible(), false);
  });

  test('cancel and delete from the row', async () => {
    const listed = (await json(jw.origin + '/api/cloud/jobs?limit=500')).body.jobs;
    const queued = listed.find((j) => j.status === 'queued' && j.job_id !== 'brwebhook1');
    const done = listed.find((j) => j.status === 'cancelled');

    await row(queued.job_id).locator('.cancel').click();
    assert.equal(await row(queued.job_id).locator('.cancel').innerText(), 'Confirm cancel');
    await row(queued.job_id).locator('.cancel').click();
    await waitFor('cancelled', async () => (await row(queued.job_id).locator('.badge').textContent()) === 'cancelled', 5000);
    assert.equal((await json(`${jw.origin}/api/cloud/jobs/${queued.job_id}`)).body.job.status, 'cancelled');

    await row(done.job_id).locator('.delete').click();
    await row(done.job_id).locator('.delete').click();
    await row(done.job_id).waitFor({state: 'detached', timeout: 5000});
    assert.equal((await json(`${jw.origin}/api/cloud/jobs/${done.job_id}`)).status, 404);
    // The list reloads; the metrics count jobs created in the period, deleted or not.
    await waitFor('5 jobs listed', async () => /of 5$/.test(await page.locator('#page-info').innerText()), 3000);
    assert.equal(await page.locator('li.job').count(), 5);
  });

  test('status filter and paging', async () => {
    await page.locator('#status-filter').selectOption('completed');
    await waitFor('only completed rows', async () => {
      const badges = await page.locator('li.job .badge').allTextContents();
      return badges.length === 2 && badges.every((b) => b === 'completed');
    }, 3000);
    assert.ok(requests.some((u) => u.includes('status=completed')));
    await page.locator('#status-filter').selectOption('');
    await waitFor('all rows', async () => (await page.locator('li.job').count()) === 5, 3000);
    assert.equal(await page.locator('#next').isDisabled(), true);
    assert.equal(await page.locator('#prev').isDisabled(), true);
  });

  test('keyboard reaches the toolbar and the row actions', async () => {
    await page.locator('body').focus();
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const seen = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      seen.push(await page.evaluate(() => {
        const e = document.activeElement;
        return e.id || e.className || e.tagName;
      }));
    }
    assert.ok(seen.includes('sync'), seen.join(' '));
    assert.ok(seen.includes('settings-toggle'));
    assert.ok(seen.includes('status-filter'));
    assert.ok(seen.some((s) => /cancel|delete/.test(s)), seen.join(' '));
  });

  test('the page fits a phone screen', async () => {
    const phone = await context.newPage();
    phone.on('console', (m) => { if (m.type() === 'error') consoleErrors.push('phone: ' + m.text()); });
    phone.on('pageerror', (e) => consoleErrors.push('phone: ' + String(e)));
    await phone.setViewportSize({width: 375, height: 740});
    await phone.goto(jw.origin + '/');
    await phone.locator('li.job').first().waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, `page is ${overflow} px wide at 375 px`);
    assert.equal(await phone.locator('#sync').isVisible(), true);
    await phone.close();
  });

  test('screenshot with jobs in each status, and no console errors', async () => {
    // A fresh running job with progress, and one queued, beside the others.
    await sendWebhook(training('brshotrun1', 'processing',
      'Loading weights\nepoch 6/10 step 620/1000 loss 0.2871 lr=4.0e-04\n', {model: 'acme-labs/flux-lora-trainer'}));
    await sendWebhook(training('brshotqueue', 'starting', ''));
    await row('brshotrun1').waitFor({timeout: 2000});
    await row('brshotqueue').waitFor({timeout: 2000});
    await waitFor('progress shown', async () =>
      (await row('brshotrun1').locator('.bar').getAttribute('aria-valuenow')) === '62', 2000);
    await sleep(1500); // let the flash highlight and the toasts fade
    await page.evaluate(() => {
      document.querySelectorAll('.toast').forEach((t) => t.remove());
      if (document.activeElement) document.activeElement.blur();
    });
    await page.mouse.move(0, 0);
    fs.mkdirSync(path.dirname(SCREENSHOT), {recursive: true});
    await page.screenshot({path: SCREENSHOT, fullPage: true});
    const statuses = new Set(await page.locator('li.job .badge').allTextContents());
    for (const s of ['queued', 'running', 'completed', 'failed', 'cancelled']) assert.ok(statuses.has(s), s);
    assert.deepEqual(consoleErrors, []);
  });

  test('sync_active reloads every 30 s while a job is active, and never while none is', async () => {
    const p2 = await context.newPage();
    const seen = [];
    p2.on('request', (r) => seen.push(r.url()));
    p2.on('pageerror', (e) => consoleErrors.push('clock page: ' + String(e)));
    await p2.clock.install();
    await p2.goto(jw.origin + '/');
    await p2.locator('li.job').first().waitFor();
    const synced = () => seen.filter((u) => u.includes('sync_active=true')).length;
    assert.equal(synced(), 0, 'the first load does not sync');
    const active = (await json(jw.origin + '/api/cloud/jobs?status=pending,uploading,queued,running')).body.jobs;
    assert.ok(active.length > 0);

    await p2.clock.runFor(29000);
    await sleep(300);
    assert.equal(synced(), 0, 'no sync before 30 s');
    await p2.clock.runFor(1500);
    await waitFor('a sync_active reload', () => synced() === 1, 3000);

    // Finish every active job; once the page knows, the reloads stop.
    for (const job of active) {
      const r = await json(`${jw.origin}/api/cloud/jobs/${job.job_id}/cancel`, {method: 'POST'});
      assert.equal(r.body.status, 'cancelled', JSON.stringify(r.body));
    }
    // Cancels reach the page over the event stream. On a loaded 2-core
    // machine with the sanitized jobwire that has taken over 5 s, so the
    // wait is generous; the fake clock also lets a planned reload run.
    await waitFor('no active rows', async () => {
      await p2.clock.runFor(500);
      const badges = await p2.locator('li.job .badge').allTextContents();
      return badges.every((b) => ['completed', 'failed', 'cancelled'].includes(b));
    }, 15000, 200);
    await p2.clock.runFor(31000); // the reload planned while jobs were active
    await sleep(500);
    const n = synced();
    for (let i = 0; i < 4; i++) {
      await p2.clock.runFor(30000);
      await sleep(200);
    }
    assert.equal(synced(), n, 'sync_active reloads went on with no active job');
    await p2.close();
  });

  test('a lost event stream shows "reconnecting" and resumes', async () => {
    const port = Number(new URL(jw.origin).port);
    await jw.stop();
    await waitFor('reconnecting', async () =>
      (await page.locator('#live').getAttribute('data-state')) === 'reconnecting', 5000);
    assert.equal(await page.locator('#live').innerText(), 'reconnecting');
    jw = await startJobwire(redis, fake, port);
    await waitFor('live again', async () =>
      (await page.locator('#live').getAttribute('data-state')) === 'live', 15000, 100);
    await sendWebhook(training('brafterreconnect', 'starting', ''));
    await row('brafterreconnect').waitFor({timeout: 2000});
    assert.equal(await row('brafterreconnect').locator('.badge').textContent(), 'queued');
  });

  // Submitted jobs waiting for a queue slot, on a jobwire of its own whose
  // queue processing is off, so nothing starts and places stay put.
  test('a pending job shows its place in line, which moves up live', async () => {
    const qredis = await startRedis();
    let qjw, qpage;
    try {
      qjw = await startJobwire(qredis, fake, undefined, {JOBWIRE_QUEUE_ENABLED: 'false'});
      const submit = async () => {
        const r = await json(qjw.origin + '/api/cloud/jobs', {method: 'POST', body: {
          model: 'acme/trainer', version: 'v1', destination: 'acme/lora', input: {steps: 10}}});
        assert.equal(r.status, 202, JSON.stringify(r.body));
        return r.body.job.job_id;
      };
      const first = await submit();
      const second = await submit();
      qpage = await context.newPage();
      await qpage.goto(qjw.origin + '/');
      const badge = (id) => qpage.locator(`li.job[data-job-id="${id}"] .badge`);
      await badge(second).waitFor({timeout: 5000});
      assert.equal(await badge(first).textContent(), 'pending · #1 in queue');
      assert.equal(await badge(second).textContent(), 'pending · #2 in queue');

      const r = await json(qjw.origin + `/api/cloud/jobs/${first}/cancel`, {method: 'POST'});
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await waitFor('second job moved up', async () =>
        (await badge(second).textContent()) === 'pending · #1 in queue', 3000);
      assert.equal(await badge(first).textContent(), 'cancelled');
    } finally {
      if (qpage) await qpage.close();
      if (qjw) await qjw.stop();
      await qredis.stop();
      fs.rmSync(qredis.dir, {recursive: true, force: true});
    }
  });
});
