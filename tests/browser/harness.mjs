// Servers for the browser tests, all on 127.0.0.1 with ports the kernel
// picked: a redis-server, the fake Replicate and jobwire. Each is waited
// for until it responds, and stopped with SIGTERM (SIGKILL after 5 s).
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
export const TOKEN = 'r8_browser_test';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, predicate, timeoutMs = 10000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await predicate();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

// Every server still running when this process exits is killed, so a
// crashed or interrupted run leaves nothing behind.
const running = new Set();
process.on('exit', () => {
  for (const p of running) p.proc.kill('SIGKILL');
});

class Proc {
  constructor(name, cmd, args, env) {
    this.name = name;
    this.output = '';
    this.proc = spawn(cmd, args, {env: Object.assign({}, process.env, env), stdio: ['ignore', 'pipe', 'pipe']});
    running.add(this);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => {
      running.delete(this);
      resolve({code, sig});
    }));
    this.proc.stdout.on('data', (d) => { this.output += d; });
    this.proc.stderr.on('data', (d) => { this.output += d; });
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

export async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jw-browser-redis-'));
  const p = new Proc('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir]);
  await waitFor('redis-server to listen', () => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  }));
  p.url = `redis://127.0.0.1:${port}/0`;
  p.dir = dir;
  return p;
}

export async function startFake() {
  const p = new Proc('fake-replicate', 'python3', [path.join(ROOT, 'tests/fake_replicate/fake_replicate.py'),
    '--port', '0', '--token', TOKEN, '--secret', SECRET]);
  const m = await waitFor('the fake Replicate to print its port',
    () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.output));
  p.origin = m[1];
  p.apiUrl = p.origin + '/v1';
  p.control = p.origin + '/_control';
  return p;
}

export function jobwireBinary() {
  if (process.env.JOBWIRE_BIN) return process.env.JOBWIRE_BIN;
  for (const b of ['build-asan/jobwire', 'build/jobwire']) {
    const full = path.join(ROOT, b);
    if (fs.existsSync(full)) return full;
  }
  throw new Error('no jobwire binary: run scripts/build first');
}

export async function startJobwire(redis, fake, port, env = {}) {
  port = port || await freePort();
  const p = new Proc('jobwire', jobwireBinary(), [], Object.assign({
    JOBWIRE_LISTEN: `127.0.0.1:${port}`,
    JOBWIRE_REDIS_URL: redis.url,
    JOBWIRE_REDIS_PREFIX: 'jwb:',
    JOBWIRE_REPLICATE_API_URL: fake.apiUrl,
    REPLICATE_API_TOKEN: TOKEN,
    REPLICATE_WEBHOOK_SECRET: SECRET,
    JOBWIRE_WEB_ROOT: path.join(ROOT, 'web'),
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  }, env));
  p.origin = `http://127.0.0.1:${port}`;
  await waitFor('jobwire to be ready', async () => (await fetch(p.origin + '/readyz')).status === 200, 20000);
  return p;
}

export async function json(url, options = {}) {
  const init = Object.assign({}, options);
  if (init.body !== undefined && typeof init.body !== 'string') init.body = JSON.stringify(init.body);
  const res = await fetch(url, init);
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { body = text; }
  return {status: res.status, body, headers: res.headers};
}

export function fixture(name) {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/replicate', name), 'utf8'));
}
