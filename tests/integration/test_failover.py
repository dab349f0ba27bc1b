"""Failover under load, through HAProxy. 20,000 signed webhooks for 500
jobs go out while 200 SSE clients listen. A replica is killed with SIGKILL
every few seconds and restarted, and Redis (AOF, appendfsync always) is
killed and restarted once. Afterwards every acknowledged delivery was applied exactly
once, every job ended right, and every SSE client, resuming with
Last-Event-ID, saw every change of the jobs it follows, in order.

The load generator behaves like Replicate: a delivery that did not get a
2xx is sent again with the same webhook-id (jobwire dedupes it), and a job's
next delivery goes out once its previous one is applied, so delivery k of a
job must become exactly revision k, with its own log line as last_log.
Bounded: the deliveries must finish within LOAD_SECONDS, the test fails
rather than hangs.
"""
import collections
import json
import os
import queue
import random
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (JOBWIRE, ROOT, SECRET, Jobwire, Redis, _read_reply, free_port, sign,
                     wait_until)

JOBS = 500
PER_JOB = 40                 # 20,000 deliveries
SSE_CLIENTS = 200
JOBS_PER_CLIENT = 5          # each job is followed by two clients
SENDERS = 12
KILL_EVERY = 3.0             # seconds between replica kills
REDIS_RESTART_AT = 12.0      # seconds into the load
LOAD_SECONDS = 150
SETTLE_SECONDS = 25


def job_id(j):
    return f"fo{j:03d}x"


def marker(j, k):
    return f"step {k}/{PER_JOB} of {job_id(j)} done"


def delivery_body(j, k):
    """Delivery k (1-based) of job j: starting, then processing with one
    more log line each time, then succeeded."""
    logs = "\n".join(marker(j, i) for i in range(2, min(k, PER_JOB - 1) + 1))
    obj = {"id": job_id(j), "model": "acme/trainer", "destination": "example-org/model",
           "created_at": "2025-07-01T10:00:00.000000Z", "logs": logs, "error": None,
           "status": "starting", "output": None}
    if k >= 2:
        obj["status"] = "processing"
        obj["started_at"] = "2025-07-01T10:00:05.000000Z"
    if k == PER_JOB:
        obj["status"] = "succeeded"
        obj["completed_at"] = "2025-07-01T10:30:00.000000Z"
        obj["output"] = {"weights": f"https://example.com/{job_id(j)}.tar"}
        obj["logs"] = logs + "\n" + marker(j, k)
    return json.dumps(obj).encode()


def expected_last_log(j, k):
    return None if k == 1 else marker(j, k)


def expected_status(k):
    return "queued" if k == 1 else ("completed" if k == PER_JOB else "running")


class AofRedis(Redis):
    """Redis with AOF and an fsync before every reply, restartable in place."""

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", self.dir, "--save", "", "--appendonly", "yes",
             "--appendfsync", "always"],
            stdout=open(os.path.join(self.dir, "redis.log"), "ab"), stderr=subprocess.STDOUT)
        wait_until(self._pings, timeout=30, what=f"redis on port {self.port}")
        return self

    def _pings(self):
        try:
            return self.cmd("PING") == "PONG"
        except (OSError, RuntimeError):  # RuntimeError: LOADING the AOF
            return False


class RawHTTP:
    """A keep-alive HTTP/1.1 client on one socket, light on CPU."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def post(self, path, headers, body):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        try:
            self.sock.sendall(head.encode() + b"\r\n" + body)
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = raw_head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            h = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                h[name.strip().lower()] = value.strip()
            if "content-length" in h:
                n = int(h["content-length"])
                while len(self.buf) < n:
                    self._fill()
                resp, self.buf = self.buf[:n], self.buf[n:]
            else:
                try:
                    while True:
                        self._fill()
                except (ConnectionError, OSError):
                    pass
                resp, self.buf = self.buf, b""
                h["connection"] = "close"
            if h.get("connection", "").lower() == "close":
                self.close()
            return status, resp
        except (OSError, ValueError, IndexError):
            self.close()
            raise ConnectionError("no answer")


class Oracle(threading.Thread):
    """Follows jw:changes straight from Redis (reconnecting across its
    restart) and releases each job's next delivery once the previous one is
    applied."""

    def __init__(self, redis, on_change):
        super().__init__(daemon=True)
        self.redis = redis
        self.on_change = on_change
        self.last = "0-0"
        self.stop = threading.Event()
        self.records = 0

    def run(self):
        sock = None
        while not self.stop.is_set():
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.redis.port), timeout=5)
                    reader = sock.makefile("rb")
                args = ["XREAD", "COUNT", "1000", "BLOCK", "1000", "STREAMS", "jw:changes",
                        self.last]
                out = b"*%d\r\n" % len(args)
                for a in args:
                    out += b"$%d\r\n%s\r\n" % (len(a), a.encode())
                sock.sendall(out)
                reply = _read_reply(reader)
            except (OSError, RuntimeError):
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.1)
                continue
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    self.last = entry_id
                    self.records += 1
                    f = dict(zip(fields[0::2], fields[1::2]))
                    self.on_change(entry_id, f["job_id"], json.loads(f["data"]))
        if sock is not None:
            sock.close()


class SSEClients(threading.Thread):
    """SSE_CLIENTS event streams through HAProxy on one selector thread. Each
    follows JOBS_PER_CLIENT jobs; a stream that ends or breaks reconnects
    with Last-Event-ID after a short pause."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.clients = []
        for i in range(SSE_CLIENTS):
            jobs = [(i * JOBS_PER_CLIENT + m) % JOBS for m in range(JOBS_PER_CLIENT)]
            self.clients.append({
                "jobs": jobs, "ids": {job_id(j): j for j in jobs},
                "seen": {j: [] for j in jobs}, "last_id": None, "sock": None,
                "raw": b"", "body": b"", "head": True, "chunked": False,
                "connects": 0, "refused": 0, "resets": 0, "bad": [], "retry_at": 0.0,
                "connected": False})

    def open(self, c):
        path = "/api/events?job_id=" + ",".join(job_id(j) for j in c["jobs"])
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if c["last_id"]:
            req += f"Last-Event-ID: {c['last_id']}\r\n"
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            s.sendall((req + "\r\n").encode())
            s.setblocking(False)
        except OSError:
            c["retry_at"] = time.monotonic() + 0.3
            return
        c.update(sock=s, raw=b"", body=b"", head=True, chunked=False)
        c["connects"] += 1
        self.sel.register(s, selectors.EVENT_READ, c)

    def drop(self, c):
        if c["sock"] is not None:
            self.sel.unregister(c["sock"])
            c["sock"].close()
        c["sock"] = None
        c["connected"] = False
        c["retry_at"] = time.monotonic() + random.uniform(0.1, 0.4)

    def events(self, c):
        if c["head"]:
            if b"\r\n\r\n" not in c["raw"]:
                return True
            head, c["raw"] = c["raw"].split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            if int(lines[0].split()[1]) != 200:
                c["refused"] += 1
                return False
            c["head"] = False
            c["chunked"] = any(l.lower().startswith("transfer-encoding:") and "chunked" in l
                               for l in lines)
        if c["chunked"]:
            while b"\r\n" in c["raw"]:
                size_line, rest = c["raw"].split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    return False
                if len(rest) < size + 2:
                    break
                c["body"] += rest[:size]
                c["raw"] = rest[size + 2:]
        else:
            c["body"] += c["raw"]
            c["raw"] = b""
        while b"\n\n" in c["body"]:
            block, c["body"] = c["body"].split(b"\n\n", 1)
            self.event(c, block.decode())
        return True

    def event(self, c, block):
        ev, data, eid = "message", [], None
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                ev = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                eid = value
        if ev == "connected":
            c["connected"] = True
        elif ev == "reset":
            c["resets"] += 1
        elif ev == "message" and data:
            d = json.loads("\n".join(data))
            j = c["ids"].get(d.get("job_id"))
            if j is None:
                c["bad"].append(("unfollowed job", d.get("job_id")))
            else:
                c["seen"][j].append((d["version"], d.get("last_log"), d["status"]))
        if eid:
            c["last_id"] = eid

    def run(self):
        for c in self.clients:
            self.open(c)
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.1):
                c = key.data
                try:
                    chunk = c["sock"].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                c["raw"] += chunk
                if not chunk or not self.events(c):
                    self.drop(c)
            now = time.monotonic()
            for c in self.clients:
                if c["sock"] is None and now >= c["retry_at"]:
                    self.open(c)
        for c in self.clients:
            if c["sock"] is not None:
                self.sel.unregister(c["sock"])
                c["sock"].close()
                c["sock"] = None


@unittest.skipUnless(shutil.which("haproxy"), "haproxy (Debian) is not installed")
class FailoverTest(unittest.TestCase):

    def setUp(self):
        self.redis = AofRedis().start()
        self.lb_port = free_port()
        self.ports = [free_port() for _ in range(3)]
        self.env = {"JOBWIRE_LOG_LEVEL": "info", "JOBWIRE_CLAIM_IDLE_MS": "2000",
                    "JOBWIRE_SSE_MAX_PER_IP": "10000", "JOBWIRE_SSE_HEARTBEAT": "2",
                    # HAProxy on loopback relays with X-Forwarded-For, as deployed.
                    "JOBWIRE_TRUSTED_PROXIES": "127.0.0.1/32"}
        self.replicas = [Jobwire(self.redis, env=self.env, port=p, name=f"replica{i + 1}")
                         for i, p in enumerate(self.ports)]
        for r in self.replicas:
            r.start()
        env = dict(os.environ, JW_LB_BIND=f"127.0.0.1:{self.lb_port}",
                   **{f"JW_REPLICA{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(self.ports)})
        self.haproxy_log = os.path.join(self.redis.dir, "haproxy.log")
        self.haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")],
            env=env, stdout=open(self.haproxy_log, "ab"), stderr=subprocess.STDOUT)
        wait_until(self._lb_ready, timeout=15, what="haproxy with 3 replicas up")

    def _lb_ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.lb_port), timeout=2) as s:
                s.sendall(b"GET /haproxy-stats;csv HTTP/1.0\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            return data.count(b",UP,") >= 3
        except OSError:
            return False

    def tearDown(self):
        if self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        failed = any(t is self for t, _ in getattr(self._outcome.result, "failures", []) +
                     getattr(self._outcome.result, "errors", []))
        for r in self.replicas:
            code = r.stop()
            if failed or code not in (None, 0):
                print(f"\n--- log of {r.name} ---\n{r.log()[-4000:]}")
        if failed:
            with open(self.haproxy_log, errors="replace") as f:
                print(f"\n--- haproxy ---\n{f.read()[-3000:]}")
        self.redis.cleanup()

    def test_replicas_killed_and_redis_restarted_under_load(self):
        lock = threading.Lock()
        ready = queue.Queue()
        acked = {}                        # (j, k) -> webhook-id, once it got a 2xx
        truth = collections.defaultdict(list)   # j -> [(version, last_log, status, id)]
        counts = collections.Counter()
        msg_ids = {(j, k): f"msg_fo_{j}_{k}_{random.getrandbits(32):08x}"
                   for j in range(JOBS) for k in range(1, PER_JOB + 1)}
        index = {job_id(j): j for j in range(JOBS)}
        done = threading.Event()
        finished_jobs = [0]

        def on_change(entry_id, jid, data):
            j = index.get(jid)
            if j is None:
                return
            with lock:
                truth[j].append((data["version"], data.get("last_log"), data["status"],
                                 entry_id))
                version = data["version"]
                if version == PER_JOB:
                    finished_jobs[0] += 1
                    if finished_jobs[0] == JOBS:
                        done.set()
            if version < PER_JOB:
                ready.put((j, version + 1))

        stop = threading.Event()

        def sender():
            conn = RawHTTP(self.lb_port)
            local = collections.Counter()
            while not stop.is_set():
                try:
                    j, k = ready.get(timeout=0.2)
                except queue.Empty:
                    continue
                body = delivery_body(j, k)
                mid = msg_ids[(j, k)]
                while not stop.is_set():
                    ts = int(time.time())
                    headers = {"Content-Type": "application/json", "webhook-id": mid,
                               "webhook-timestamp": str(ts),
                               "webhook-signature": sign(SECRET, mid, ts, body)}
                    local["sent"] += 1
                    try:
                        status, resp = conn.post("/api/webhooks/replicate", headers, body)
                    except ConnectionError:
                        local["no_answer"] += 1
                        time.sleep(0.05)
                        continue
                    if 200 <= status < 300:
                        local["2xx"] += 1
                        answer = json.loads(resp)
                        if answer.get("job_id") != job_id(j) or not answer.get("received"):
                            local["bad_answer"] += 1
                        local["duplicate_answers"] += bool(answer.get("duplicate"))
                        with lock:
                            acked[(j, k)] = mid
                        break
                    local["503" if status == 503 else f"status_{status}"] += 1
                    time.sleep(0.1)
            conn.close()
            with lock:
                counts.update(local)

        oracle = Oracle(self.redis, on_change)
        oracle.start()
        sse = SSEClients(self.lb_port)
        sse.start()
        wait_until(lambda: all(c["connected"] for c in sse.clients), timeout=30,
                   what="all SSE clients connected")

        threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
        for t in threads:
            t.start()
        start = time.monotonic()
        for j in range(JOBS):
            ready.put((j, 1))

        # Chaos: SIGKILL one replica every KILL_EVERY seconds and restart it;
        # kill Redis once and restart it on its AOF.
        kills = 0
        redis_restarts = 0
        victim = 0
        next_kill = start + KILL_EVERY
        while not done.is_set() and time.monotonic() - start < LOAD_SECONDS:
            now = time.monotonic()
            if redis_restarts == 0 and now - start >= REDIS_RESTART_AT:
                self.redis.stop(signal.SIGKILL)
                time.sleep(1.0)
                self.redis.start()
                redis_restarts += 1
                continue
            if now >= next_kill:
                r = self.replicas[victim]
                self.assertIsNone(r.proc.poll(), f"{r.name} died by itself:\n{r.log()[-3000:]}")
                r.stop(signal.SIGKILL)
                kills += 1
                time.sleep(0.5)
                r.start(wait_ready=False)
                victim = (victim + 1) % len(self.replicas)
                next_kill = time.monotonic() + KILL_EVERY
                continue
            done.wait(0.1)
        load_seconds = time.monotonic() - start
        self.assertTrue(done.is_set(), f"only {finished_jobs[0]} of {JOBS} jobs finished "
                                       f"in {LOAD_SECONDS} s; counts {dict(counts)}")
        stop.set()
        for t in threads:
            t.join(20)

        # Everything applied: no entry left undelivered or pending.
        def settled():
            for g in self.redis.cmd("XINFO", "GROUPS", "jw:events"):
                info = dict(zip(g[0::2], g[1::2]))
                if info["name"] == "appliers":
                    return info["pending"] == 0 and info["lag"] == 0
            return False
        wait_until(settled, timeout=SETTLE_SECONDS, what="events stream settled")

        def clients_caught_up():
            return all(len(c["seen"][j]) >= PER_JOB for c in sse.clients for j in c["jobs"])
        try:
            wait_until(clients_caught_up, timeout=SETTLE_SECONDS, what="SSE clients caught up")
        finally:
            sse.stop.set()
            sse.join(10)
            oracle.stop.set()
            oracle.join(10)

        # 1. Every delivery got its 2xx, and each is exactly one change:
        #    delivery k of a job is revision k, with k's own last log line.
        self.assertEqual(len(acked), JOBS * PER_JOB)
        self.assertEqual(counts["bad_answer"], 0)
        changes = self.redis.cmd("XRANGE", "jw:changes", "-", "+")
        per_job = collections.defaultdict(list)
        for entry_id, fields in changes:
            f = dict(zip(fields[0::2], fields[1::2]))
            d = json.loads(f["data"])
            if d["job_id"] in index:
                per_job[index[d["job_id"]]].append((d["version"], d.get("last_log"),
                                                    d["status"], entry_id))
        applied = sum(len(v) for v in per_job.values())
        for j in range(JOBS):
            expected = [(k, expected_last_log(j, k), expected_status(k))
                        for k in range(1, PER_JOB + 1)]
            self.assertEqual([x[:3] for x in per_job[j]], expected, f"changes of {job_id(j)}")
            self.assertEqual(per_job[j], truth[j], f"oracle view of {job_id(j)}")
        self.assertEqual(applied, JOBS * PER_JOB)

        # 2. Every job's final record is right.
        for j in range(JOBS):
            job = self.redis.hgetall(f"jw:job:{job_id(j)}")
            self.assertEqual((job.get("status"), job.get("revision"), job.get("last_log")),
                             ("completed", str(PER_JOB), marker(j, PER_JOB)), job_id(j))
        self.assertEqual(self.redis.cmd("ZCARD", "jw:idx:all"), JOBS)
        for name in ("running", "queued"):
            self.assertEqual(self.redis.cmd("ZCARD", f"jw:idx:status:{name}"), 0)

        # 3. Every SSE client saw every change of its jobs, once, in order.
        seen_counts = []
        for n, c in enumerate(sse.clients):
            self.assertEqual(c["bad"], [], f"client {n}")
            self.assertEqual(c["resets"], 0, f"client {n} was told to reset")
            for j in c["jobs"]:
                self.assertEqual(c["seen"][j], [x[:3] for x in per_job[j]],
                                 f"client {n}, job {job_id(j)}")
            seen_counts.append(sum(len(c["seen"][j]) for j in c["jobs"]))
        reconnects = sum(c["connects"] - 1 for c in sse.clients)
        dropped_empty = sum(r.log().count("entry without fields") for r in self.replicas)
        self.assertEqual(dropped_empty, 0)

        seen = collections.Counter(seen_counts)
        print(f"\nfailover: sent={counts['sent']} 2xx={counts['2xx']} 503={counts['503']} "
              f"no_answer={counts['no_answer']} "
              f"other={sum(v for k, v in counts.items() if k.startswith('status_'))} "
              f"duplicate_2xx={counts['duplicate_answers']} applied={applied} "
              f"jobs={JOBS} kills={kills} redis_restarts={redis_restarts} "
              f"sse_clients={len(sse.clients)} sse_reconnects={reconnects} "
              f"changes_seen_per_client={dict(seen)} load_s={load_seconds:.1f}")
