"""Failures: Redis down or restarted, replicas killed, entries reclaimed."""
import signal
import time

from harness import Jobwire, Redis, ServiceTest, fixture, wait_until

TRAINING_ID = "t4vq8m2kxhrj60cqz1fb7wn3ca"


class RedisOutageTest(ServiceTest):

    def test_redis_down_gives_503_then_recovers(self):
        self.redis.stop()
        r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(
            self.jw.webhook(fixture("training.starting.json"))), what="503 while redis is down")
        self.assertEqual(r.json()["error"], "redis_unavailable")
        self.assertEqual(r.headers.get("retry-after"), "5")
        self.assertEqual(self.jw.get("/readyz").status, 503)
        self.assertEqual(self.jw.get("/api/cloud/jobs").status, 503)
        self.assertEqual(self.jw.get("/healthz").status, 200)

        self.redis.start()
        wait_until(lambda: self.jw.get("/readyz").status == 200, what="ready again")
        r = self.jw.webhook(fixture("training.starting.json"))
        self.assertEqual(r.status, 200, r)
        job = self.wait_job(TRAINING_ID)
        self.assertEqual(job["status"], "queued")
        logs = self.jw.log()
        self.assertEqual(logs.count("connection lost"), 3, "one line per connection")

    def test_redis_restarted_empty_recreates_group_and_scripts(self):
        self.jw.webhook(fixture("training.starting.json"))
        self.wait_job(TRAINING_ID)
        self.redis.stop()
        self.redis.start()  # no persistence: empty, no scripts, no group
        wait_until(lambda: self.jw.get("/readyz").status == 200, what="ready again")
        r = wait_until(lambda: (lambda r: r if r.status == 200 else None)(
            self.jw.webhook(fixture("training.processing.json"))), what="webhook accepted")
        job = self.wait_job(TRAINING_ID, lambda j: j["status"] == "running")
        self.assertEqual(job["revision"], 1)
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 1)

    def test_sigterm_exits_zero(self):
        self.assertEqual(self.jw.stop(signal.SIGTERM), 0)
        self.assertIn("stopped", self.jw.log())


class RedisDownAtStartTest(ServiceTest):

    def setUp(self):
        self.redis = Redis()
        self.services = []
        self.jw = self.start_jobwire(wait_ready=False)

    def test_starts_without_redis_and_connects_later(self):
        self.assertEqual(self.jw.get("/readyz").status, 503)
        self.assertEqual(self.jw.webhook(fixture("training.starting.json")).status, 503)
        self.redis.start()
        wait_until(lambda: self.jw.get("/readyz").status == 200, what="ready")
        self.assertEqual(self.jw.webhook(fixture("training.starting.json")).status, 200)
        self.assertEqual(self.wait_job(TRAINING_ID)["status"], "queued")


class ReclaimTest(ServiceTest):
    jobwire_env = {"JOBWIRE_CLAIM_IDLE_MS": "1000"}

    def ensure_group(self):
        try:
            self.redis.cmd("XGROUP", "CREATE", "jw:events", "appliers", "0", "MKSTREAM")
        except RuntimeError as e:
            self.assertIn("BUSYGROUP", str(e))

    def test_dead_consumer_entries_are_applied_once(self):
        # Stop the live consumer so that a "dead" one can take the entry.
        self.jw.stop(signal.SIGKILL)
        self.ensure_group()
        self.redis.cmd("XADD", "jw:events", "*", "job_id", "dead1", "status", "running",
                       "provider", "replicate", "created_ms", "1700000000000",
                       "created_at", "2023-11-14T22:13:20.000000Z")
        taken = self.redis.cmd("XREADGROUP", "GROUP", "appliers", "ghost", "COUNT", "10",
                               "STREAMS", "jw:events", ">")
        self.assertEqual(len(taken[0][1]), 1)

        self.jw = self.start_jobwire(self.jobwire_env, name="survivor")
        job = self.wait_job("dead1", timeout=15)
        self.assertEqual(job["status"], "running")
        self.assertEqual(job["revision"], 1)
        self.wait_applied()
        self.assertEqual(self.redis.cmd("XLEN", "jw:changes"), 1)

    def test_trimmed_pending_entry_is_acked_not_crashed(self):
        self.jw.stop(signal.SIGKILL)
        self.ensure_group()
        entry = self.redis.cmd("XADD", "jw:events", "*", "job_id", "gone", "status", "running")
        self.redis.cmd("XREADGROUP", "GROUP", "appliers", "ghost", "STREAMS", "jw:events", ">")
        self.redis.cmd("XDEL", "jw:events", entry)

        self.jw = self.start_jobwire(self.jobwire_env, name="survivor")
        wait_until(lambda: self.redis.cmd("XPENDING", "jw:events", "appliers")[0] == 0,
                   timeout=15, what="pending list empty")
        self.assertIsNone(self.jw.job("gone"))
        self.assertEqual(self.jw.get("/healthz").status, 200)

    def test_killed_right_after_2xx_applies_once(self):
        for attempt in range(5):
            job_id = f"kill{attempt}"
            body = fixture("training.processing.json").replace(TRAINING_ID.encode(), job_id.encode())
            r = self.jw.webhook(body)
            self.assertEqual(r.status, 200)
            self.jw.stop(signal.SIGKILL)
            self.jw = self.start_jobwire(self.jobwire_env, name=f"restart{attempt}")
            job = self.wait_job(job_id, timeout=15)
            self.assertEqual(job["status"], "running")
            self.assertEqual(job["revision"], 1)
        self.wait_applied(timeout=15)
        self.assertEqual(self.redis.cmd("XLEN", "jw:changes"), 5)
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 5)


class EventsTrimTest(ServiceTest):
    jobwire_env = {"JOBWIRE_CLAIM_IDLE_MS": "1000"}

    def test_applied_events_are_trimmed(self):
        for i in range(20):
            body = fixture("training.starting.json").replace(TRAINING_ID.encode(), f"trim{i}".encode())
            self.assertEqual(self.jw.webhook(body).status, 200)
        self.wait_applied()
        # The maintenance timer trims below the last delivered entry.
        wait_until(lambda: self.redis.cmd("XLEN", "jw:events") <= 1, timeout=10,
                   what="events trimmed")
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 20)
