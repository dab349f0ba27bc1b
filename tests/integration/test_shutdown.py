"""Graceful shutdown on SIGTERM. Readiness turns 503 first, the listener
closes, webhooks in flight finish, the consumer stops after its batch, and
the process exits 0 well within the grace period. No delivery that got a
2xx is lost."""
import http.client
import json
import signal
import socket
import threading
import time
import uuid

from harness import ServiceTest, sign, SECRET, wait_until


def job_body(job_id):
    return json.dumps({"id": job_id, "status": "processing",
                       "created_at": "2025-07-01T10:00:00.000Z",
                       "destination": "example-org/model", "logs": ""}).encode()


def signed_headers(body):
    msg_id = "msg_" + uuid.uuid4().hex
    ts = int(time.time())
    return {"content-type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(ts), "webhook-signature": sign(SECRET, msg_id, ts, body)}


class Sender(threading.Thread):
    """Posts one webhook per job over keep-alive connections to the ports
    in turn: on a refused or broken connection it moves to the next port,
    like a load balancer. Records each delivery's status: -1 when the
    connection was refused, 0 when a sent request got no response."""

    def __init__(self, ports, job_ids):
        super().__init__(daemon=True)
        self.ports = ports
        self.job_ids = job_ids
        self.results = {}
        self.conn = None
        self.port_index = 0

    def connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.ports[self.port_index], timeout=30)

    def run(self):
        self.connect()
        for job_id in self.job_ids:
            body = job_body(job_id)
            try:
                self.conn.connect() if self.conn.sock is None else None
            except ConnectionRefusedError:
                self.results[job_id] = -1
                self.port_index = (self.port_index + 1) % len(self.ports)
                self.connect()
                continue
            try:
                self.conn.request("POST", "/api/webhooks/replicate", body=body,
                                  headers=signed_headers(body))
                r = self.conn.getresponse()
                r.read()
                self.results[job_id] = r.status
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.connect()
            except (OSError, http.client.HTTPException):
                self.results[job_id] = 0
                self.conn.close()
                self.port_index = (self.port_index + 1) % len(self.ports)
                self.connect()
        self.conn.close()


class GracefulShutdownTest(ServiceTest):

    def metric(self, service, name):
        for line in service.get("/metrics").body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def test_order_readiness_listener_inflight_exit(self):
        keep = http.client.HTTPConnection("127.0.0.1", self.jw.port, timeout=10)
        keep.request("GET", "/readyz")
        r = keep.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["status"]), (200, "ready"))

        # Hold webhooks in flight: Redis executes no write command (scripts
        # included) for 2 s, so the ingests wait inside jobwire.
        self.redis.cmd("CLIENT", "PAUSE", "2000", "WRITE")
        paused_at = time.monotonic()
        held = [Sender([self.jw.port], [f"held{i}"]) for i in range(5)]
        for s in held:
            s.start()
        wait_until(lambda: self.metric(self.jw, "jobwire_http_requests_in_flight") == 5,
                   timeout=1.5, what="5 webhooks in flight")

        started = time.monotonic()
        self.jw.proc.send_signal(signal.SIGTERM)

        # Readiness answers 503 on a connection opened before the signal.
        def not_ready():
            keep.request("GET", "/readyz")
            resp = keep.getresponse()
            return resp if resp.status == 503 else (resp.read() and None)
        r = wait_until(not_ready, timeout=2, what="readyz 503")
        body = json.loads(r.read())
        self.assertEqual(body["status"], "not_ready")
        self.assertTrue(body["shutting_down"])
        self.assertEqual(r.getheader("connection", "").lower(), "close")
        keep.close()
        # New connections are refused: the listener is closed.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.jw.port), timeout=2).close()
        # The process still runs while the webhooks wait for Redis.
        self.assertIsNone(self.jw.proc.poll())

        for s in held:
            s.join(10)
        self.assertGreaterEqual(time.monotonic() - paused_at, 1.5)
        self.assertEqual({s.job_ids[0]: s.results[s.job_ids[0]] for s in held},
                         {f"held{i}": 200 for i in range(5)})
        code = self.jw.proc.wait(15)
        elapsed = time.monotonic() - started
        self.assertEqual(code, 0)
        self.assertLess(elapsed, 10, "exit well within the 20 s drain limit")
        log = self.jw.log()
        order = [log.index(s) for s in ("shutting down: signal=SIGTERM", "drained:", "stopped:")]
        self.assertEqual(order, sorted(order), log[-3000:])

        # A fresh replica applies what the stopped one accepted.
        self.jw = self.start_jobwire(name="after")
        self.wait_applied()
        for i in range(5):
            job = self.jw.job(f"held{i}")
            self.assertEqual((job["status"], job["revision"]), ("running", 1))

    def test_sigterm_during_burst_loses_no_acknowledged_delivery(self):
        survivor = self.start_jobwire(name="survivor")
        jobs = [f"burst{i:05d}" for i in range(2400)]
        senders = [Sender([self.jw.port, survivor.port], jobs[i::6]) for i in range(6)]
        for s in senders:
            s.start()
        wait_until(lambda: (self.metric(self.jw, "jobwire_events_applied_total") or 0) >= 200,
                   timeout=30, what="burst under way")
        started = time.monotonic()
        self.jw.proc.send_signal(signal.SIGTERM)
        code = self.jw.proc.wait(25)
        elapsed = time.monotonic() - started
        for s in senders:
            s.join(120)
            self.assertFalse(s.is_alive())
        self.assertEqual(code, 0)
        self.assertLess(elapsed, 20)
        log = self.jw.log()
        self.assertIn("drained:", log)
        self.assertIn("stopped: consumer finished its batch", log)

        results = {}
        for s in senders:
            results.update(s.results)
        ok = sorted(j for j, status in results.items() if 200 <= status < 300)
        self.assertEqual(len(results), len(jobs))
        self.assertGreater(len(ok), len(jobs) // 2)
        # The stopped replica left nothing pending: its last batch was
        # applied and acked (the claim timeout, 30 s, is longer than this wait).
        self.wait_applied(timeout=15)
        missing = [j for j in ok if self.redis.hgetall(f"jw:job:{j}").get("status") != "running"]
        self.assertEqual(missing, [])
        revisions = {self.redis.hgetall(f"jw:job:{j}").get("revision") for j in ok}
        self.assertEqual(revisions, {"1"})
        stored = self.redis.cmd("ZCARD", "jw:idx:all")
        self.assertEqual(self.redis.cmd("XLEN", "jw:changes"), stored, "one change per job")
        print(f"\nshutdown burst: sent={len(results)} 2xx={len(ok)} "
              f"refused={sum(1 for v in results.values() if v == -1)} "
              f"no_answer={sum(1 for v in results.values() if v == 0)} "
              f"stored={stored} exit={code} after={elapsed:.2f}s")
