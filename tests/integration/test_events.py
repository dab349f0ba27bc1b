"""The SSE hub: live changes from any replica, resume, limits, resets."""
import json
import os
import signal
import socket
import subprocess
import time

from harness import Jobwire, SSEStream, ServiceTest, fixture, wait_until

TRAINING_ID = "t4vq8m2kxhrj60cqz1fb7wn3ca"
LIFE = ["training.starting.json", "training.processing.json", "training.succeeded.json"]


def job_body(job_id, status="processing", logs=""):
    return {"id": job_id, "status": status, "created_at": "2025-07-01T10:00:00.000Z",
            "destination": "example-org/model", "logs": logs}


class TwoReplicaTest(ServiceTest):
    jobwire_env = {"JOBWIRE_SSE_HEARTBEAT": "1"}

    def setUp(self):
        super().setUp()
        self.jw2 = self.start_jobwire(self.jobwire_env, name="replica2")
        self.streams = []

    def tearDown(self):
        for stream in self.streams:
            stream.close()
        super().tearDown()

    def open(self, service, path="/api/events", headers=None):
        stream = SSEStream(service, path, headers)
        self.streams.append(stream)
        return stream

    def test_headers_and_connected_event(self):
        stream = self.open(self.jw)
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.headers["content-type"], "text/event-stream")
        self.assertEqual(stream.headers["cache-control"], "no-cache, no-transform")
        self.assertEqual(stream.headers["x-accel-buffering"], "no")
        first = stream.next_event()
        self.assertEqual(first["event"], "connected")
        self.assertEqual(first["data"]["resumed"], False)

    def test_change_from_other_replica_in_order(self):
        stream = self.open(self.jw)
        stream.next_event()  # connected
        for name in LIFE:
            self.assertEqual(self.jw2.webhook(fixture(name)).status, 200)
        events = [stream.next_change() for _ in LIFE]
        self.assertEqual([e["data"]["status"] for e in events], ["queued", "running", "completed"])
        self.assertEqual([e["data"]["previous_status"] for e in events], [None, "queued", "running"])
        self.assertEqual([e["data"]["version"] for e in events], [1, 2, 3])
        for e in events:
            self.assertEqual(e["event"], "message")
            self.assertEqual(e["data"]["type"], "job_status_changed")
            self.assertEqual(e["data"]["job_id"], TRAINING_ID)
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(ids, key=lambda i: tuple(map(int, i.split("-")))))
        stored = self.redis.cmd("XRANGE", "jw:changes", "-", "+")
        self.assertEqual(ids, [entry[0] for entry in stored])
        self.assertEqual(events[2]["data"]["last_log"], "Uploading weights...")
        self.assertEqual(events[1]["data"]["started_at"], "2025-06-10T09:14:09.551207Z")

    def test_resume_on_other_replica_gets_exactly_missed(self):
        stream = self.open(self.jw)
        stream.next_event()
        self.jw.webhook(job_body("resume1", "starting"))
        first = stream.next_change()
        stream.close()

        self.jw.webhook(job_body("resume1", "processing", "step 1/4\n"))
        self.jw.webhook(job_body("resume2", "starting"))
        self.wait_applied()

        again = self.open(self.jw2, headers={"Last-Event-ID": first["id"]})
        self.assertEqual(again.next_event()["data"]["resumed"], True)
        missed = [again.next_change(), again.next_change()]
        self.assertEqual([(e["data"]["job_id"], e["data"]["status"]) for e in missed],
                         [("resume1", "running"), ("resume2", "queued")])
        self.assertEqual(missed[0]["data"]["progress"], 25)

        self.jw.webhook(job_body("resume2", "processing"))
        live = again.next_change()
        self.assertEqual((live["data"]["job_id"], live["data"]["status"]), ("resume2", "running"))
        with self.assertRaises(TimeoutError):
            event = again.next_change(timeout=1.5)
            self.fail(f"unexpected extra event {event}")

    def test_resume_by_query_parameter(self):
        self.jw.webhook(job_body("q1", "starting"))
        self.wait_applied()
        first_id = self.redis.cmd("XRANGE", "jw:changes", "-", "+")[0][0]
        self.jw.webhook(job_body("q1", "processing"))
        self.wait_applied()
        stream = self.open(self.jw2, f"/api/events?last_event_id={first_id}")
        change = stream.next_change()
        self.assertEqual(change["data"]["status"], "running")

    def test_trimmed_and_garbage_ids_get_reset(self):
        for i in range(3):
            self.jw.webhook(job_body(f"t{i}", "starting"))
        self.wait_applied()
        ids = [e[0] for e in self.redis.cmd("XRANGE", "jw:changes", "-", "+")]
        self.redis.cmd("XTRIM", "jw:changes", "MINID", ids[2])

        old = self.open(self.jw, headers={"Last-Event-ID": ids[0]})
        reset = old.next_change()
        self.assertEqual(reset["event"], "reset")
        self.assertEqual(reset["data"]["reason"], "too_old")
        self.assertEqual(reset["id"], ids[2])

        for bad in ("garbage", "12", "1-2-3", "-1-0", "99999999999999999999999-0"):
            # A closed stream frees its per-IP slot once the replica notices
            # (at its next write), so wait for a slot rather than fail.
            stream = wait_until(lambda: (lambda s: s if s.status == 200 else s.close())(
                SSEStream(self.jw2, headers={"Last-Event-ID": bad})), what="a free slot")
            event = stream.next_change()
            self.assertEqual(event["event"], "reset", bad)
            self.assertEqual(event["data"]["reason"], "invalid_last_event_id", bad)
            stream.close()

        # After a reset the stream continues live.
        self.jw.webhook(job_body("t9", "starting"))
        self.assertEqual(old.next_change()["data"]["job_id"], "t9")

    def test_future_id_gets_reset(self):
        self.jw.webhook(job_body("fut1", "starting"))
        self.wait_applied()
        end = self.redis.cmd("XRANGE", "jw:changes", "-", "+")[-1][0]
        stream = self.open(self.jw, headers={"Last-Event-ID": "9999999999999-0"})
        reset = stream.next_change()
        self.assertEqual(reset["event"], "reset")
        self.assertEqual(reset["data"]["reason"], "unknown_id")
        self.assertEqual(reset["id"], end)
        self.jw.webhook(job_body("fut2", "starting"))
        self.assertEqual(stream.next_change()["data"]["job_id"], "fut2")

    def test_closed_streams_free_slots_at_once(self):
        for _ in range(3):
            batch = [SSEStream(self.jw) for _ in range(5)]
            self.assertEqual([s.status for s in batch], [200] * 5)
            for s in batch:
                s.next_event()
                s.close()
            # The replica reads the close, so the slots are free well
            # before the next heartbeat would have found them.
            wait_until(lambda: self.redis.cmd("ZCARD", "jw:sse:ip:127.0.0.1") == 0,
                       timeout=0.9, what="leases released")

    def test_filters(self):
        by_job = self.open(self.jw, "/api/events?job_id=f2,f3")
        by_status = self.open(self.jw2, "/api/events?status=running")
        by_job.next_event()
        by_status.next_event()
        self.jw.webhook(job_body("f1", "processing"))
        self.jw.webhook(job_body("f2", "starting"))
        self.jw.webhook(job_body("f3", "processing"))
        got = [by_job.next_change()["data"]["job_id"] for _ in range(2)]
        self.assertEqual(got, ["f2", "f3"])
        got = [by_status.next_change()["data"]["job_id"] for _ in range(2)]
        self.assertEqual(got, ["f1", "f3"])
        for path in ("/api/events?status=done", "/api/events?job_id=a%20b", "/api/events?job_id="):
            r = self.jw.get(path)
            self.assertEqual(r.status, 400, path)
            self.assertEqual(r.json()["error"], "invalid_parameter")

    def test_sixth_stream_per_ip_refused_on_either_replica(self):
        for service in (self.jw, self.jw, self.jw, self.jw2, self.jw2):
            stream = self.open(service)
            self.assertEqual(stream.status, 200)
            stream.next_event()
        for service in (self.jw, self.jw2):
            refused = SSEStream(service)
            self.assertEqual(refused.status, 429)
            self.assertEqual(refused.headers.get("retry-after"), "1")
            body = refused.body_json()
            self.assertEqual(body["error"], "too_many_streams")
            self.assertIn("127.0.0.1", body["message"])
            refused.close()
        self.streams.pop().close()
        stream = wait_until(lambda: (lambda s: s if s.status == 200 else s.close())(
            SSEStream(self.jw)), what="a freed slot")
        self.streams.append(stream)
        self.assertEqual(self.redis.cmd("ZCARD", "jw:sse:ip:127.0.0.1"), 5)

    def test_heartbeats_arrive(self):
        stream = self.open(self.jw)
        stream.next_event()
        with self.assertRaises(TimeoutError):
            stream.next_change(timeout=3.5)
        self.assertGreaterEqual(stream.comments, 2)

    def test_killed_replica_leases_expire(self):
        for _ in range(5):
            self.open(self.jw).next_event()
        self.assertEqual(SSEStream(self.jw2).status, 429)
        self.jw.stop(signal.SIGKILL)
        for stream in self.streams:
            stream.close()
        self.streams = []
        started = time.monotonic()
        stream = wait_until(lambda: (lambda s: s if s.status == 200 else s.close())(
            SSEStream(self.jw2)), timeout=10, what="leases to expire")
        self.streams.append(stream)
        self.assertLess(time.monotonic() - started, 5.0)

    def test_sigterm_closes_streams(self):
        stream = self.open(self.jw)
        stream.next_event()
        self.assertEqual(self.jw.stop(signal.SIGTERM), 0)
        with self.assertRaises(EOFError):
            stream.next_change(timeout=5)


class RedisOutageStreamTest(ServiceTest):
    jobwire_env = {"JOBWIRE_SSE_HEARTBEAT": "1"}

    def test_stream_survives_redis_restart(self):
        stream = SSEStream(self.jw)
        stream.next_event()
        self.jw.webhook(job_body("o1", "starting"))
        self.assertEqual(stream.next_change()["data"]["job_id"], "o1")
        self.redis.stop()
        with self.assertRaises(TimeoutError):
            stream.next_change(timeout=2.5)
        self.assertGreaterEqual(stream.comments, 2)
        self.redis.start()
        wait_until(lambda: self.jw.get("/readyz").status == 200, what="ready again")
        wait_until(lambda: self.jw.webhook(job_body("o2", "starting")).status == 200,
                   what="webhook accepted")
        self.assertEqual(stream.next_change(timeout=10)["data"]["job_id"], "o2")
        stream.close()


class SlowClientTest(ServiceTest):
    jobwire_env = {"JOBWIRE_SSE_CLIENT_BUFFER": "4096", "JOBWIRE_SSE_MAX_PER_IP": "10"}

    def rss_kib(self):
        with open(f"/proc/{self.jw.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_slow_reader_gets_reset(self):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.jw.port))
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        logs = "x" * 3000 + "\n"
        rss_before = self.rss_kib()
        resets = 0
        for i in range(4000):
            self.jw.webhook(job_body(f"slow{i % 50}", "processing", logs * (1 + i // 50)))
            if i % 200 == 199:
                metrics = self.jw.get("/metrics").body.decode()
                resets = int([l for l in metrics.splitlines()
                              if l.startswith("jobwire_sse_slow_client_resets_total")][0].split()[1])
                if resets > 0:
                    break
        self.assertGreater(resets, 0, "no slow-client reset after 4000 changes")
        self.assertLess(self.rss_kib() - rss_before, 64 * 1024, "memory grew without bound")

        sock.setblocking(False)
        data = b""
        deadline = time.monotonic() + 10
        while b"event: reset" not in data and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            except BlockingIOError:
                time.sleep(0.01)
        sock.close()
        self.assertIn(b'event: reset\r\n' if b"\r\nevent: reset\r\n" in data else b"event: reset", data)
        self.assertIn(b'"reason":"slow_client"', data)


class Http2StreamTest(ServiceTest):
    """HTTP/2 without TLS (h2c, prior knowledge), through curl's own client."""

    def test_h2c_stream_gets_changes(self):
        curl = subprocess.Popen(
            ["curl", "-sN", "--http2-prior-knowledge", "--max-time", "4", "-o", "-",
             "-w", "\nHTTP_VERSION=%{http_version}\n",
             f"http://127.0.0.1:{self.jw.port}/api/events?job_id=h2job"],
            stdout=subprocess.PIPE)
        wait_until(lambda: self.redis.cmd("ZCARD", "jw:sse:ip:127.0.0.1") == 1,
                   what="the stream to open")
        self.assertEqual(self.jw.webhook(job_body("h2job", "processing")).status, 200)
        out, _ = curl.communicate(timeout=10)
        text = out.decode()
        self.assertIn("HTTP_VERSION=2", text)
        self.assertIn("event: connected", text)
        data = [json.loads(line[len("data: "):]) for line in text.splitlines()
                if line.startswith("data: ") and "job_status_changed" in line]
        self.assertEqual(len(data), 1)
        self.assertEqual(data[0]["job_id"], "h2job")
        self.assertEqual(data[0]["status"], "running")
