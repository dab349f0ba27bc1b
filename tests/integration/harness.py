"""Test harness: a real redis-server and real jobwire processes on loopback.

Every server binds a port the kernel picked as free, is waited for until it
answers (never a fixed sleep), and is stopped with SIGTERM, then SIGKILL.
Logs of the processes are printed when a test fails.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
JOBWIRE = os.environ.get("JOBWIRE_BIN", os.path.join(ROOT, "build", "jobwire"))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def fixture(name):
    with open(os.path.join(FIXTURES, "replicate", name), "rb") as f:
        return f.read()


def fixture_json(name):
    return json.loads(fixture(name))


class Redis:
    """A redis-server of our own, and a minimal RESP client to inspect it."""

    def __init__(self, port=None, appendonly=False):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="jw-redis-")
        self.appendonly = appendonly
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", self.dir, "--save", "", "--appendonly",
             "yes" if self.appendonly else "no"],
            stdout=open(os.path.join(self.dir, "redis.log"), "ab"),
            stderr=subprocess.STDOUT)
        wait_until(self._pings, what=f"redis on port {self.port}")
        return self

    def _pings(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cmd(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _read_reply(s.makefile("rb"))

    def hgetall(self, key):
        flat = self.cmd("HGETALL", key)
        return dict(zip(flat[0::2], flat[1::2]))


def _read_reply(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise OSError(f"bad RESP reply {line!r}")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Jobwire:
    """One jobwire process with its own environment and log file."""

    def __init__(self, redis, env=None, port=None, name="jobwire"):
        self.redis = redis
        self.port = port or free_port()
        self.name = name
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JOBWIRE_LISTEN": f"127.0.0.1:{self.port}",
            "JOBWIRE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "REPLICATE_WEBHOOK_SECRET": SECRET,
            "JOBWIRE_LOG_LEVEL": "debug",
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        }
        self.env.update(env or {})
        self.env = {k: v for k, v in self.env.items() if v is not None}
        self.log_path = os.path.join(redis.dir, f"{name}-{self.port}.log")
        self.proc = None

    def start(self, wait_ready=True):
        self.proc = subprocess.Popen([JOBWIRE], env=self.env,
                                     stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT)
        wait_until(self._healthy, what=f"{self.name} /healthz")
        if wait_ready:
            wait_until(lambda: self.get("/readyz").status == 200, what=f"{self.name} /readyz")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.get("/healthz").status == 200
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the process and returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def webhook(self, body, msg_id=None, timestamp=None, secret=SECRET, headers=None,
                path="/api/webhooks/replicate"):
        """Signs body like Replicate and posts it; returns the Response."""
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg_id = msg_id or "msg_" + uuid.uuid4().hex
        timestamp = int(time.time()) if timestamp is None else timestamp
        h = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body),
        }
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        return self.request("POST", path, body=body, headers=h)

    def job(self, job_id):
        r = self.get(f"/api/cloud/jobs/{job_id}")
        return r.json()["job"] if r.status == 200 else None


def sign(secret, msg_id, timestamp, body):
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class ServiceTest(unittest.TestCase):
    """Base class: one Redis and one jobwire per test, logs shown on failure."""

    jobwire_env = {}

    def setUp(self):
        self.redis = Redis().start()
        self.services = []
        self.jw = self.start_jobwire(self.jobwire_env)

    def start_jobwire(self, env=None, wait_ready=True, name=None):
        service = Jobwire(self.redis, env=env, name=name or f"jobwire{len(self.services) + 1}")
        self.services.append(service)
        return service.start(wait_ready=wait_ready)

    def tearDown(self):
        failed = self._outcome_failed()
        for service in self.services:
            code = service.stop()
            if failed:
                print(f"\n--- log of {service.name} ---\n{service.log()[-6000:]}")
            if code not in (None, 0, -signal.SIGKILL):
                print(f"\n--- log of {service.name} ---\n{service.log()[-6000:]}")
                self.fail(f"{service.name} exited with {code}")
        self.redis.cleanup()

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(outcome, "errors", None) or []
        result = getattr(outcome, "result", None)
        if result is not None:
            errors = list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
            return any(test is self for test, _ in errors)
        return any(exc for _, exc in errors)

    def wait_job(self, job_id, predicate=lambda job: True, service=None, timeout=10):
        service = service or self.jw
        return wait_until(lambda: (lambda j: j if j and predicate(j) else None)(service.job(job_id)),
                          timeout=timeout, what=f"job {job_id}")

    def applied_everything(self):
        """True once the consumer group has no lag and nothing pending."""
        groups = self.redis.cmd("XINFO", "GROUPS", "jw:events")
        for g in groups:
            info = dict(zip(g[0::2], g[1::2]))
            if info["name"] == "appliers":
                return info["pending"] == 0 and info["lag"] == 0
        return False

    def wait_applied(self, timeout=10):
        wait_until(self.applied_everything, timeout=timeout, what="events applied")


class SSEStream:
    """A Server-Sent Events client on a raw socket: it parses the HTTP/1.1
    head, decodes chunked transfer encoding itself and reads events one at
    a time with a deadline, so a timeout never spoils the stream."""

    def __init__(self, service, path="/api/events", headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", service.port), timeout=timeout)
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""       # bytes received, not yet decoded
        self.body = b""      # decoded body bytes, not yet parsed into events
        self.eof = False
        self.comments = 0
        self._read_head(time.monotonic() + timeout)

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out")
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.raw += chunk

    def _read_head(self, deadline):
        while b"\r\n\r\n" not in self.raw:
            if self.eof:
                raise EOFError("connection closed before the response head")
            self._recv(deadline)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.length = int(self.headers.get("content-length", "-1"))

    def _decode(self):
        """Moves complete chunks from raw to body; returns False at the end."""
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return True
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.eof = True
                return False
            if len(rest) < size + 2:
                break
            self.body += rest[:size]
            self.raw = rest[size + 2:]
        return True

    def body_json(self, timeout=5):
        deadline = time.monotonic() + timeout
        while len(self.raw) < self.length and not self.eof:
            self._recv(deadline)
        return json.loads(self.raw[:self.length])

    def _next_block(self, deadline):
        while True:
            self._decode()
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                return block.decode()
            if self.eof:
                raise EOFError("stream ended")
            self._recv(deadline)

    def next_event(self, timeout=5):
        """Returns the next event as a dict with id, event, data (parsed JSON
        when possible) and retry, or raises TimeoutError or EOFError."""
        deadline = time.monotonic() + timeout
        while True:
            event = {"id": None, "event": "message", "data": None, "retry": None}
            lines = []
            for line in self._next_block(deadline).split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    lines.append(value)
                elif name in ("id", "event", "retry"):
                    event[name] = value
            if not lines and event["id"] is None and event["event"] == "message":
                continue  # a comment or a retry hint alone
            if lines:
                text = "\n".join(lines)
                try:
                    event["data"] = json.loads(text)
                except ValueError:
                    event["data"] = text
            return event

    def next_change(self, timeout=5):
        """Skips connected events; returns the next message or reset."""
        while True:
            event = self.next_event(timeout)
            if event["event"] != "connected":
                return event

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
