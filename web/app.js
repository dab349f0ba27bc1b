/*
 * The Cloud dashboard. Plain JavaScript, no build step, no outside files.
 *
 * - The job list comes from GET /api/cloud/jobs (paged, filtered). The
 *   first load does not sync with the provider, so it is fast.
 * - One EventSource on /api/events updates rows in place, and a "reset"
 *   event reloads the snapshot.
 * - Running jobs on screen poll /inline-progress every 5 s; the poll stops
 *   when a job leaves "running".
 * - While any job is active, the list is reloaded with sync_active=true
 *   every 30 s as a safety net beside the events, and never while none is.
 * - Nothing of the above starts before GET /api/auth/session succeeds.
 *   When the server has API keys, a 401 shows the login form, and the
 *   session's CSRF token is kept in memory only and sent on every change.
 */
(function () {
  'use strict';

  const PAGE_SIZE = 20;
  const PROGRESS_MS = 5000;
  const SAFETY_RELOAD_MS = 30000;
  const RECONNECT_MS = 3000;
  const METRICS_DAYS = 30;
  const STATUSES = ['pending', 'uploading', 'queued', 'running', 'completed', 'failed', 'cancelled'];
  const ACTIVE = new Set(['pending', 'uploading', 'queued', 'running']);
  const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
  const EVENT_FIELDS = ['status', 'stage', 'progress', 'last_log', 'cost_usd', 'error_message',
    'started_at', 'completed_at', 'updated_at', 'version', 'revision', 'queue_position'];
  const SAFE_METHODS = new Set(['GET', 'HEAD']);
  /* setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days). */
  const MAX_TIMEOUT_MS = 2147483647;

  const $ = (id) => document.getElementById(id);
  const state = {
    filter: '',
    offset: 0,
    total: 0,
    jobs: new Map(),      /* job_id -> job object, the rows on screen */
    rows: new Map(),      /* job_id -> <li> */
    visible: new Map(),   /* job_id -> whether the row is in the viewport */
    pollers: new Map(),   /* job_id -> interval id of its inline-progress poll */
    activeInStore: 0,     /* active jobs according to the metrics */
    safetyTimer: null,
    metricsTimer: null,
    loadSeq: 0,
    events: null,
    lastEventId: '',
    reconnectTimer: null,
    tickTimer: null,
    expiryTimer: null,
    running: false,       /* the list, events and timers are started */
    view: 'loading',      /* 'loading', 'login', 'blocked' or 'dashboard' */
    session: null,        /* the body of GET /api/auth/session */
    csrfToken: null,      /* sent as X-CSRF-Token on changes, kept out of web storage */
  };

  /* ---- helpers ---------------------------------------------------------- */

  /*
   * Fetches a JSON endpoint and returns its body, or throws an Error with
   * the server's message, .status and .code (the "error" field). Changes
   * carry the session's CSRF token. A 401 from any endpoint but the login
   * itself shows the login form, and 403 loopback_only shows why the
   * server refuses this browser.
   */
  async function api(path, options) {
    const init = Object.assign({}, options);
    const method = (init.method || 'GET').toUpperCase();
    const headers = Object.assign({Accept: 'application/json'}, init.headers);
    if (!SAFE_METHODS.has(method) && state.csrfToken) headers['X-CSRF-Token'] = state.csrfToken;
    init.headers = headers;
    const res = await fetch(path, init);
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) {
      const err = new Error(body && body.message ? body.message : `HTTP ${res.status}`);
      err.status = res.status;
      err.code = body && body.error;
      if (res.status === 401 && path !== '/api/auth/login') requireLogin(err);
      else if (err.code === 'loopback_only') showLoopbackOnly(err);
      throw err;
    }
    return body;
  }

  function toast(text, isError) {
    const el = document.createElement('div');
    el.className = 'toast' + (isError ? ' error' : '');
    el.textContent = text;
    $('toasts').appendChild(el);
    setTimeout(() => el.remove(), isError ? 8000 : 5000);
  }

  /* Shows a failed action as an error toast with the server's message. A
   * 401 gets none because the login form already shows the reason. */
  function reportFailure(action, err) {
    if (err.status === 401) return;
    let text = `${action} failed: ${err.message}`;
    if (err.status === 403 && err.code === 'csrf_token_invalid') {
      text += '. Reload the page to get a new session token.';
    }
    toast(text, true);
  }

  function parseTime(text) {
    if (!text) return null;
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? null : ms;
  }

  function formatAgo(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return 'just now';
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return new Date(ms).toLocaleDateString(undefined, {year: 'numeric', month: 'short', day: 'numeric'});
  }

  function formatDuration(seconds) {
    if (seconds == null || !Number.isFinite(seconds)) return '–';
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  }

  function formatCost(usd) {
    if (usd == null || !Number.isFinite(Number(usd))) return '–';
    const n = Number(usd);
    return '$' + (n !== 0 && n < 1 ? n.toFixed(4) : n.toFixed(2));
  }

  function durationOf(job) {
    const start = parseTime(job.started_at);
    if (start == null) return null;
    const end = TERMINAL.has(job.status) ? parseTime(job.completed_at) : Date.now();
    return end == null || end < start ? null : (end - start) / 1000;
  }

  /* ---- rows --------------------------------------------------------------- */

  function createRow(job) {
    const li = $('job-template').content.firstElementChild.cloneNode(true);
    li.dataset.jobId = job.job_id;
    li.querySelector('.cancel').addEventListener('click', (e) => confirmThen(e.currentTarget, 'Confirm cancel', () => cancelJob(job.job_id)));
    li.querySelector('.delete').addEventListener('click', (e) => confirmThen(e.currentTarget, 'Confirm delete', () => deleteJob(job.job_id)));
    return li;
  }

  /* The first press arms the button for 4 s; the second one acts. */
  function confirmThen(button, armedText, action) {
    if (button.dataset.armed === '1') {
      button.dataset.armed = '';
      button.disabled = true;
      action().finally(() => {
        button.disabled = false;
        button.textContent = button.dataset.label;
      });
      return;
    }
    button.dataset.label = button.textContent;
    button.dataset.armed = '1';
    button.textContent = armedText;
    setTimeout(() => {
      if (button.dataset.armed === '1') {
        button.dataset.armed = '';
        button.textContent = button.dataset.label;
      }
    }, 4000);
  }

  function renderRow(li, job) {
    const status = job.status || 'pending';
    li.dataset.status = status;
    const badge = li.querySelector('.badge');
    badge.className = 'badge s-' + status;
    /* A submitted job waiting for a queue slot shows its place in line. */
    badge.textContent = status === 'pending' && job.queue_position != null
      ? `pending · #${job.queue_position} in queue` : status;
    li.querySelector('.job-id').textContent = job.job_id;
    const model = [job.model, job.kind, job.hardware].filter(Boolean).join(' · ');
    li.querySelector('.job-model').textContent = model;

    const running = status === 'running';
    const progressBox = li.querySelector('.job-progress');
    progressBox.hidden = !running;
    if (running) {
      const pct = job.progress == null ? null : Math.max(0, Math.min(100, Number(job.progress)));
      li.querySelector('.stage').textContent = job.stage || 'Running';
      const bar = li.querySelector('.bar');
      bar.setAttribute('aria-label', `Progress of ${job.job_id}`);
      if (pct == null) {
        bar.removeAttribute('aria-valuenow');
        li.querySelector('.fill').style.width = '0%';
        li.querySelector('.percent').textContent = '–';
      } else {
        bar.setAttribute('aria-valuenow', String(pct));
        li.querySelector('.fill').style.width = pct + '%';
        li.querySelector('.percent').textContent = pct.toFixed(1) + '%';
      }
    }
    const log = li.querySelector('.last-log');
    log.hidden = !(running && job.last_log);
    log.textContent = running && job.last_log ? job.last_log : '';

    const err = li.querySelector('.error-message');
    err.hidden = !(status === 'failed' && job.error_message);
    err.textContent = status === 'failed' && job.error_message ? job.error_message : '';

    const created = parseTime(job.created_at);
    const createdEl = li.querySelector('.created');
    createdEl.textContent = created == null ? '–' : formatAgo(created);
    createdEl.title = job.created_at || '';
    li.querySelector('.duration').textContent = formatDuration(durationOf(job));
    li.querySelector('.cost').textContent = formatCost(job.cost_usd);

    /* Cancel while active; delete once terminal (the API refuses the rest).
     * Both need the operate role. */
    const cancel = li.querySelector('.cancel');
    const del = li.querySelector('.delete');
    const canOperate = hasRole('operate');
    cancel.hidden = !canOperate || !ACTIVE.has(status);
    del.hidden = !canOperate || !TERMINAL.has(status);
    cancel.setAttribute('aria-label', `Cancel job ${job.job_id}`);
    del.setAttribute('aria-label', `Delete job ${job.job_id}`);
    del.classList.add('danger');
  }

  function matchesFilter(status) {
    return state.filter === '' || state.filter.split(',').includes(status);
  }

  /* ---- the list -------------------------------------------------------------- */

  function listUrl(syncActive) {
    const q = new URLSearchParams({limit: String(PAGE_SIZE), offset: String(state.offset)});
    if (state.filter) q.set('status', state.filter);
    if (syncActive) q.set('sync_active', 'true');
    return '/api/cloud/jobs?' + q.toString();
  }

  async function loadJobs(syncActive) {
    const seq = ++state.loadSeq;
    let data;
    try {
      data = await api(listUrl(syncActive));
    } catch (e) {
      if (seq === state.loadSeq) showListError(`Could not load jobs: ${e.message}`);
      scheduleSafetyReload();
      return;
    }
    if (seq !== state.loadSeq) return; /* a newer load won */
    showListError('');
    if (data.sync_error) showListError(`Provider refresh incomplete: ${data.sync_error}`);
    state.total = data.total;
    renderList(data.jobs);
    scheduleSafetyReload();
  }

  function showListError(text) {
    const el = $('list-error');
    el.textContent = text;
    el.hidden = !text;
  }

  function renderList(jobs) {
    const list = $('job-list');
    const keep = new Set(jobs.map((j) => j.job_id));
    for (const [id, li] of state.rows) {
      if (!keep.has(id)) {
        li.remove();
        observer && observer.unobserve(li);
        state.rows.delete(id);
        state.jobs.delete(id);
        state.visible.delete(id);
      }
    }
    jobs.forEach((job, i) => {
      let li = state.rows.get(job.job_id);
      if (!li) {
        li = createRow(job);
        state.rows.set(job.job_id, li);
        observer && observer.observe(li);
      }
      state.jobs.set(job.job_id, job);
      renderRow(li, job);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    renderPager();
    updatePolling();
  }

  function renderPager() {
    const count = state.rows.size;
    $('empty').hidden = !(state.total === 0 && state.filter === '' && state.offset === 0);
    $('empty-filtered').hidden = !(count === 0 && !(state.total === 0 && state.filter === '' && state.offset === 0));
    $('page-info').textContent = count === 0 ? '' :
      `${state.offset + 1}–${state.offset + count} of ${state.total}`;
    $('prev').disabled = state.offset === 0;
    $('next').disabled = state.offset + count >= state.total;
  }

  /* Applies one change from the event stream to the row on screen. */
  function applyChange(change) {
    const job = state.jobs.get(change.job_id);
    if (job) {
      if (change.revision != null && job.revision != null && Number(change.revision) < Number(job.revision)) return;
      for (const k of EVENT_FIELDS) {
        if (k in change) job[k] = change[k];
      }
      job.is_active = ACTIVE.has(job.status);
      job.is_terminal = TERMINAL.has(job.status);
      const li = state.rows.get(job.job_id);
      renderRow(li, job);
      if (change.status !== change.previous_status) flash(li);
      updatePolling();
    } else if (state.offset === 0 && matchesFilter(change.status)) {
      insertNewJob(change.job_id);
    }
    if (change.status !== change.previous_status) scheduleMetrics();
  }

  function flash(li) {
    li.classList.remove('flash');
    void li.offsetWidth;
    li.classList.add('flash');
  }

  /* A job that is new to this page: read it whole and put it on top. */
  async function insertNewJob(id) {
    let data;
    try {
      data = await api('/api/cloud/jobs/' + encodeURIComponent(id));
    } catch (e) {
      return;
    }
    if (!state.running) return;
    const job = data.job;
    if (state.rows.has(id)) {
      const current = state.jobs.get(id);
      if (Number(job.revision) >= Number(current.revision)) {
        state.jobs.set(id, job);
        renderRow(state.rows.get(id), job);
      }
      return;
    }
    if (state.offset !== 0 || !matchesFilter(job.status)) return;
    const li = createRow(job);
    state.rows.set(id, li);
    state.jobs.set(id, job);
    observer && observer.observe(li);
    renderRow(li, job);
    $('job-list').prepend(li);
    flash(li);
    state.total += 1;
    while (state.rows.size > PAGE_SIZE) {
      const last = $('job-list').lastElementChild;
      const lastId = last.dataset.jobId;
      last.remove();
      observer && observer.unobserve(last);
      state.rows.delete(lastId);
      state.jobs.delete(lastId);
      state.visible.delete(lastId);
    }
    renderPager();
    updatePolling();
    scheduleMetrics();
  }

  /* ---- inline progress ---------------------------------------------------- */

  const observer = 'IntersectionObserver' in window ? new IntersectionObserver((entries) => {
    for (const e of entries) state.visible.set(e.target.dataset.jobId, e.isIntersecting);
    updatePolling();
  }) : null;

  /* Polls exactly the running jobs whose rows are in view. */
  function updatePolling() {
    for (const [id, job] of state.jobs) {
      const shouldPoll = job.status === 'running' && state.visible.get(id) !== false;
      if (shouldPoll && !state.pollers.has(id)) {
        state.pollers.set(id, setInterval(() => pollProgress(id), PROGRESS_MS));
      } else if (!shouldPoll && state.pollers.has(id)) {
        clearInterval(state.pollers.get(id));
        state.pollers.delete(id);
      }
    }
    for (const [id, timer] of state.pollers) {
      if (!state.jobs.has(id)) {
        clearInterval(timer);
        state.pollers.delete(id);
      }
    }
  }

  async function pollProgress(id) {
    if (document.hidden) return;
    let view;
    try {
      view = await api(`/api/cloud/jobs/${encodeURIComponent(id)}/inline-progress`);
    } catch (e) {
      return;
    }
    const job = state.jobs.get(id);
    if (!job || !state.running) return;
    if (view.status && view.status !== 'running') {
      /* It moved on: the event stream brings the rest; read it once in case it did not. */
      job.status = view.status;
      updatePolling();
      insertNewJob(id);
      return;
    }
    job.stage = view.stage;
    job.last_log = view.last_log;
    if (view.progress != null) job.progress = view.progress;
    renderRow(state.rows.get(id), job);
  }

  /* ---- safety reload --------------------------------------------------------- */

  function anyActive() {
    if (state.activeInStore > 0) return true;
    for (const job of state.jobs.values()) {
      if (ACTIVE.has(job.status)) return true;
    }
    return false;
  }

  function scheduleSafetyReload() {
    clearTimeout(state.safetyTimer);
    state.safetyTimer = null;
    if (state.running && anyActive()) {
      state.safetyTimer = setTimeout(() => loadJobs(true), SAFETY_RELOAD_MS);
    }
  }

  /* ---- metrics ------------------------------------------------------------------ */

  function scheduleMetrics() {
    clearTimeout(state.metricsTimer);
    state.metricsTimer = setTimeout(loadMetrics, 400);
  }

  async function loadMetrics() {
    let counts, cost, count, note = '';
    try {
      const m = await api(`/api/cloud/metrics?days=${METRICS_DAYS}`);
      counts = m.jobs_by_status || {};
      cost = m.total_cost;
      count = m.job_count;
    } catch (e) {
      if (!state.running) return;
      if (e.status !== 404) {
        $('metrics-note').textContent = `Metrics unavailable: ${e.message}`;
        $('metrics-note').hidden = false;
        return;
      }
      /* No metrics endpoint: count from the job list instead. */
      try {
        ({counts, cost, count} = await metricsFromList());
        note = 'Counted from the job list (this jobwire has no metrics endpoint).';
      } catch (e2) {
        return;
      }
    }
    if (!state.running) return;
    renderMetrics(counts, cost, count, note);
  }

  async function metricsFromList() {
    const counts = {};
    await Promise.all(STATUSES.map(async (s) => {
      counts[s] = (await api(`/api/cloud/jobs?limit=1&status=${s}`)).total;
    }));
    const all = await api('/api/cloud/jobs?limit=500');
    const cost = all.jobs.reduce((sum, j) => sum + (Number(j.cost_usd) || 0), 0);
    return {counts, cost, count: all.total};
  }

  function renderMetrics(counts, cost, count, note) {
    $('metric-cost').textContent = formatCost(cost == null ? 0 : cost);
    $('metric-count').textContent = count == null ? '–' : String(count);
    const box = $('metric-statuses');
    box.textContent = '';
    let active = 0;
    for (const s of STATUSES) {
      const n = Number(counts[s] || 0);
      if (ACTIVE.has(s)) active += n;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'metric-status s-' + s;
      b.dataset.status = s;
      b.setAttribute('aria-pressed', String(state.filter === s));
      b.title = `Show ${s} jobs`;
      const label = document.createElement('span');
      label.textContent = s;
      const num = document.createElement('span');
      num.className = 'n';
      num.textContent = String(n);
      b.append(label, num);
      b.addEventListener('click', () => setFilter(state.filter === s ? '' : s));
      box.appendChild(b);
    }
    state.activeInStore = active;
    $('metrics-note').textContent = note;
    $('metrics-note').hidden = !note;
    if (!state.safetyTimer) scheduleSafetyReload();
  }

  /* ---- actions ------------------------------------------------------------------ */

  async function sync() {
    const button = $('sync');
    button.disabled = true;
    button.classList.add('busy');
    button.setAttribute('aria-busy', 'true');
    try {
      const r = await api('/api/cloud/jobs/sync', {method: 'POST'});
      const n = Number(r.synced) || 0;
      toast(`Discovered ${n} ${n === 1 ? 'job' : 'jobs'} from Replicate`);
    } catch (e) {
      reportFailure('Sync', e);
    } finally {
      button.disabled = false;
      button.classList.remove('busy');
      button.removeAttribute('aria-busy');
    }
    if (!state.running) return;
    await Promise.all([loadJobs(false), loadMetrics()]);
  }

  async function cancelJob(id) {
    try {
      const r = await api(`/api/cloud/jobs/${encodeURIComponent(id)}/cancel`, {method: 'POST'});
      toast(r.cancelled ? `Cancelled ${id}` : `${id} is ${r.status}`);
    } catch (e) {
      reportFailure('Cancel', e);
      if (!state.running) return;
    }
    await insertNewJob(id);
  }

  async function deleteJob(id) {
    try {
      await api(`/api/cloud/jobs/${encodeURIComponent(id)}`, {method: 'DELETE'});
      toast(`Deleted ${id}`);
    } catch (e) {
      reportFailure('Delete', e);
      return;
    }
    await Promise.all([loadJobs(false), loadMetrics()]);
    const list = $('jobs');
    list.focus();
  }

  function setFilter(value) {
    state.filter = value;
    state.offset = 0;
    $('status-filter').value = value;
    for (const b of document.querySelectorAll('.metric-status')) {
      b.setAttribute('aria-pressed', String(b.dataset.status === value));
    }
    loadJobs(false);
  }

  /* ---- settings ------------------------------------------------------------------ */

  async function validateProvider() {
    const el = $('provider-status');
    el.textContent = 'checking…';
    el.dataset.state = 'unknown';
    try {
      const r = await api('/api/cloud/providers/replicate/validate');
      $('provider-url').textContent = r.api_url || '–';
      if (r.valid) {
        const account = r.account && (r.account.username || r.account.name);
        el.textContent = account ? `connected as ${account}` : 'connected';
        el.dataset.state = 'valid';
      } else {
        el.textContent = `not usable: ${r.reason || r.code}`;
        el.dataset.state = 'invalid';
      }
    } catch (e) {
      el.textContent = `check failed: ${e.message}`;
      el.dataset.state = 'invalid';
    }
  }

  function renderPolling(status) {
    const el = $('polling-status');
    el.textContent = `${status.is_active ? 'on' : 'off'} (${status.reason || status.source})`;
    el.dataset.state = status.is_active ? 'valid' : 'unknown';
    $('polling-mode').value = status.override == null ? 'auto' : (status.override ? 'on' : 'off');
  }

  async function loadPolling() {
    const el = $('polling-status');
    try {
      renderPolling(await api('/api/cloud/polling/status'));
    } catch (e) {
      el.textContent = `check failed: ${e.message}`;
      el.dataset.state = 'invalid';
    }
  }

  /* PUT /api/cloud/polling/setting: true, false, or null for the configured rule. */
  async function setPolling() {
    const select = $('polling-mode');
    const enabled = {auto: null, on: true, off: false}[select.value];
    select.disabled = true;
    try {
      const status = await api('/api/cloud/polling/setting', {
        method: 'PUT',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({enabled}),
      });
      renderPolling(status);
      toast(`Job status polling is ${status.is_active ? 'on' : 'off'}`);
    } catch (e) {
      reportFailure('Changing job status polling', e);
      if (state.running) await loadPolling();
    } finally {
      select.disabled = !hasRole('operate');
    }
  }

  function closeSettings() {
    $('settings').hidden = true;
    $('settings-toggle').setAttribute('aria-expanded', 'false');
  }

  function toggleSettings() {
    const panel = $('settings');
    const open = panel.hidden;
    panel.hidden = !open;
    $('settings-toggle').setAttribute('aria-expanded', String(open));
    if (open) {
      validateProvider();
      loadPolling();
    }
  }

  /* ---- live events ------------------------------------------------------------------ */

  function setLive(s) {
    const el = $('live');
    el.dataset.state = s;
    el.textContent = s;
    $('settings-live').textContent = s;
  }

  function connectEvents() {
    clearTimeout(state.reconnectTimer);
    const url = state.lastEventId ?
      '/api/events?last_event_id=' + encodeURIComponent(state.lastEventId) : '/api/events';
    const es = new EventSource(url);
    state.events = es;
    es.addEventListener('connected', () => setLive('live'));
    es.addEventListener('reset', () => {
      loadJobs(false);
      loadMetrics();
    });
    es.onmessage = (e) => {
      if (e.lastEventId) state.lastEventId = e.lastEventId;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (data && data.type === 'job_status_changed' && data.job_id) applyChange(data);
    };
    es.onerror = () => {
      if (es !== state.events) return;
      setLive('reconnecting');
      /* The browser retries by itself unless the server rejected the
       * stream, as it does once the session has ended. So the session is
       * checked before connecting again. */
      if (es.readyState === EventSource.CLOSED) {
        state.reconnectTimer = setTimeout(reconnectEvents, RECONNECT_MS);
      }
    };
  }

  async function reconnectEvents() {
    try {
      await api('/api/auth/session');
    } catch (e) {
      /* A 401 or 403 loopback_only has already replaced the dashboard.
       * Any other failure, such as a stopped server, is retried by the
       * new stream. */
      if (e.status === 401 || e.code === 'loopback_only') return;
    }
    if (state.running) connectEvents();
  }

  /* ---- access ------------------------------------------------------------------ */

  function hasRole(role) {
    return Boolean(state.session && Array.isArray(state.session.roles) && state.session.roles.includes(role));
  }

  /* Shows one of the page's views: 'login', 'blocked' or 'dashboard'. */
  function showView(view) {
    state.view = view;
    const dashboard = view === 'dashboard';
    $('login').hidden = view !== 'login';
    $('blocked').hidden = view !== 'blocked';
    $('dashboard').hidden = !dashboard;
    $('toolbar-actions').hidden = !dashboard;
    $('live').hidden = !dashboard;
    if (!dashboard) closeSettings();
  }

  /* Shows the caller's name and roles for a session or a key, and hides
   * what the roles do not allow. Loopback and anonymous callers have every
   * role and no name to show. */
  function renderAccess() {
    const s = state.session;
    const named = Boolean(s) && (s.via === 'session' || s.via === 'key');
    $('account').hidden = !named;
    if (named) {
      $('account-name').textContent = s.name;
      const roles = s.roles.length ? s.roles.join(', ') : 'none';
      $('account-roles').textContent = `roles: ${roles}`;
    }
    $('logout').hidden = !(s && s.via === 'session');

    const canOperate = hasRole('operate');
    $('sync').hidden = !canOperate;
    $('polling-mode').disabled = !canOperate;
    $('polling-note').hidden = canOperate;
    for (const [id, li] of state.rows) renderRow(li, state.jobs.get(id));
  }

  /* Starts the list, metrics, events and timers for a signed-in caller. */
  function startDashboard(session) {
    state.session = session;
    state.csrfToken = session.csrf_token || null;
    renderAccess();
    showView('dashboard');
    scheduleExpiryCheck(session.expires_at);
    if (state.running) return;
    state.running = true;
    if (!hasRole('read')) {
      showListError(`The key ${session.name} does not have the read role, so the job list cannot be shown.`);
      setLive('offline');
      return;
    }
    showListError('');
    setLive('connecting');
    /* Durations of running jobs tick without a request. */
    state.tickTimer = setInterval(() => {
      for (const [id, job] of state.jobs) {
        if (ACTIVE.has(job.status)) renderRow(state.rows.get(id), job);
      }
    }, 10000);
    connectEvents();
    loadJobs(false);
    loadMetrics();
  }

  /* Closes the event stream, stops every timer and poll, and clears the
   * rows, so nothing is requested or shown until the next start. */
  function stopDashboard() {
    state.running = false;
    state.loadSeq += 1; /* responses to loads already sent are dropped */
    if (state.events) {
      state.events.close();
      state.events = null;
    }
    state.lastEventId = '';
    for (const timer of ['reconnectTimer', 'safetyTimer', 'metricsTimer', 'expiryTimer']) {
      clearTimeout(state[timer]);
      state[timer] = null;
    }
    clearInterval(state.tickTimer);
    state.tickTimer = null;
    for (const timer of state.pollers.values()) clearInterval(timer);
    state.pollers.clear();
    for (const li of state.rows.values()) {
      if (observer) observer.unobserve(li);
      li.remove();
    }
    state.rows.clear();
    state.jobs.clear();
    state.visible.clear();
    state.total = 0;
    state.offset = 0;
    state.activeInStore = 0;
    setLive('offline');
  }

  function forgetSession() {
    state.session = null;
    state.csrfToken = null;
    renderAccess();
  }

  /* The session cookie expires with the session: check then, so an idle
   * page shows the login form instead of stale rows.
   * NOTE: the browser tests do not wait out a real session (60 s at least),
   * so this timer is checked by reading only. */
  function scheduleExpiryCheck(expiresAt) {
    clearTimeout(state.expiryTimer);
    state.expiryTimer = null;
    const at = parseTime(expiresAt);
    if (at == null) return;
    /* At least 5 s, so a browser clock ahead of the server's cannot make a
     * still valid session check itself in a tight loop. */
    const delay = Math.min(MAX_TIMEOUT_MS, Math.max(5000, at - Date.now() + 1000));
    state.expiryTimer = setTimeout(() => {
      api('/api/auth/session').then(startDashboard, () => {});
    }, delay);
  }

  function setLoginError(text) {
    const el = $('login-error');
    el.textContent = text;
    el.hidden = !text;
    $('login-key').setAttribute('aria-invalid', String(Boolean(text)));
  }

  /* Replaces the dashboard with the login form after a 401. */
  function requireLogin(err) {
    const wasRunning = state.running;
    if (state.view === 'login') return;
    stopDashboard();
    forgetSession();
    showView('login');
    $('login-status').textContent = '';
    if (wasRunning) {
      setLoginError('Your session has ended. Log in again to continue.');
    } else if (err && err.code === 'invalid_session') {
      setLoginError(`Your session is no longer valid (${err.message}). Log in again.`);
    } else {
      setLoginError('');
    }
    $('login-key').focus();
  }

  function showBlocked(title, text, detail) {
    stopDashboard();
    forgetSession();
    showView('blocked');
    $('blocked-title').textContent = title;
    $('blocked-text').textContent = text;
    $('blocked-detail').textContent = detail || '';
    $('blocked-detail').hidden = !detail;
  }

  function showLoopbackOnly(err) {
    if (state.view === 'blocked') return;
    showBlocked('This jobwire serves only its own host',
      'The server has no API keys configured, so it answers only clients on its own machine ' +
      '(loopback) and cannot offer a login. Open the dashboard on that machine, not through a ' +
      'proxy, or ask its operator to set JOBWIRE_API_KEYS_FILE so that you can log in with a key.',
      `Server message: ${err.message}`);
  }

  function loginFailureText(err) {
    if (err.status === 401) return `Login failed: ${err.message}.`;
    if (err.status === 429) return `Too many login attempts: ${err.message}.`;
    if (err.status) return `Login failed: ${err.message}.`;
    return `Could not reach jobwire: ${err.message}.`;
  }

  async function logIn(event) {
    event.preventDefault();
    const input = $('login-key');
    const key = input.value.trim();
    if (!key) {
      setLoginError('Enter an API key.');
      input.focus();
      return;
    }

    const button = $('login-submit');
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    setLoginError('');
    $('login-status').textContent = '';

    let session;
    try {
      session = await api('/api/auth/login', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({key}),
      });
    } catch (e) {
      if (state.view !== 'login') return; /* loopback_only replaced the form */
      setLoginError(loginFailureText(e));
      input.select();
      input.focus();
      return;
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }

    input.value = '';
    startDashboard(session);
  }

  async function logOut() {
    const button = $('logout');
    button.disabled = true;
    try {
      await api('/api/auth/logout', {method: 'POST'});
    } catch (e) {
      reportFailure('Log out', e);
      return;
    } finally {
      button.disabled = false;
    }
    stopDashboard();
    forgetSession();
    $('toasts').textContent = '';
    showView('login');
    setLoginError('');
    $('login-status').textContent = 'You have logged out.';
    $('login-key').focus();
  }

  /* ---- start ------------------------------------------------------------------ */

  function bindControls() {
    $('sync').addEventListener('click', sync);
    $('settings-toggle').addEventListener('click', toggleSettings);
    $('validate').addEventListener('click', validateProvider);
    $('polling-mode').addEventListener('change', setPolling);
    $('status-filter').addEventListener('change', (e) => setFilter(e.target.value));
    $('prev').addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      loadJobs(false);
    });
    $('next').addEventListener('click', () => {
      state.offset += PAGE_SIZE;
      loadJobs(false);
    });
    $('login-form').addEventListener('submit', logIn);
    $('logout').addEventListener('click', logOut);
    $('blocked-retry').addEventListener('click', boot);
  }

  /* Asks who the caller is, then starts the dashboard. A 401 or 403
   * loopback_only has already replaced it when api() throws. */
  async function boot() {
    let session;
    try {
      session = await api('/api/auth/session');
    } catch (e) {
      if (e.status === 401 || e.code === 'loopback_only') return;
      showBlocked('Could not reach jobwire',
        'The dashboard could not ask the server who you are. Check that jobwire is running, then try again.',
        `Error: ${e.message}`);
      return;
    }
    startDashboard(session);
  }

  bindControls();
  boot();
})();
