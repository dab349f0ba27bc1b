"""The background poller against the fake Replicate and a real Redis: jobs
advance and SSE events follow, the enable rules and their startup line,
one leader among replicas with takeover, the override, backoff after 429s,
the stale-job check with webhooks on, and pacing under a rate limit.

Every jobwire here talks to the fake on loopback only
(JOBWIRE_REPLICATE_API_URL), never to the real Replicate API.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from harness import JOBWIRE, SECRET, Jobwire, SSEStream, ServiceTest, wait_until
from test_provider import TOKEN, FakeReplicate

INTERVAL = 5


def poll_env(fake, **overrides):
    """A laptop set-up: a token and no webhook, so polling is on by itself."""
    env = {
        "JOBWIRE_REPLICATE_API_URL": fake.api_url,
        "REPLICATE_API_TOKEN": TOKEN,
        "REPLICATE_WEBHOOK_SECRET": None,
        "SIMPLETUNER_JOB_POLL_INTERVAL": str(INTERVAL),
        "JOBWIRE_REPLICATE_TIMEOUT_MS": "8000",
    }
    env.update(overrides)
    return env


def status(service):
    r = service.get("/api/cloud/polling/status")
    assert r.status == 200, r
    return r.json()


def startup_line(service):
    """The one startup line about polling, once it was logged."""
    def find():
        lines = [l for l in service.log().splitlines() if "job status polling" in l]
        return lines or None
    lines = wait_until(find, what=f"{service.name} startup line")
    assert len(lines) == 1, lines
    return lines[0]


def starting_body(fake, job_id):
    """The fake's job as a 'starting' webhook body, without logs."""
    body = fake.job(job_id)
    body.update({"status": "starting", "started_at": None, "completed_at": None,
                 "logs": "", "output": None, "metrics": {}, "error": None})
    return body


class PollerTest(ServiceTest):
    """A fake Replicate, a Redis and a polling jobwire per test."""

    def setUp(self):
        self.fake = FakeReplicate()
        self.addCleanup(self.fake.stop)
        self.jobwire_env = poll_env(self.fake)
        super().setUp()

    def leader_of(self, *services):
        return wait_until(lambda: status(services[0])["leader"], timeout=INTERVAL * 3,
                          what="a poller leader")

    def test_jobs_advance_and_sse_events_follow(self):
        self.fake.settings(phase_seconds={"starting": 0.5, "processing": 2.5})
        job_id = self.fake.add_jobs(count=1, kind="training", status="starting")["ids"][0]
        self.fake.set_job(job_id, hardware="gpu-t4", auto=True)
        stream = SSEStream(self.jw, "/api/events")
        self.addCleanup(stream.close)
        r = self.jw.request("POST", "/api/cloud/jobs/sync", timeout=30)
        self.assertEqual(r.json()["synced"], 1, r)

        seen = []
        deadline = time.monotonic() + INTERVAL * 4
        while "completed" not in seen and time.monotonic() < deadline:
            try:
                ev = stream.next_change(timeout=1)
            except TimeoutError:
                continue
            if isinstance(ev["data"], dict) and ev["data"].get("job_id") == job_id:
                seen.append(ev["data"]["status"])
        self.assertIn("completed", seen, seen)

        job = self.jw.job(job_id)
        self.assertEqual(job["status"], "completed")
        self.assertEqual(job["provider_status"], "succeeded")
        predict_time = self.fake.job(job_id)["metrics"]["predict_time"]
        self.assertAlmostEqual(job["predict_time"], predict_time, places=5)
        # gpu-t4 is in the built-in table at 0.000225 USD per second.
        self.assertAlmostEqual(job["cost_usd"], round(predict_time * 0.000225, 6), places=6)
        stored = self.redis.hgetall(f"jw:job:{job_id}")
        self.assertEqual(stored["cost_estimated"], "false")

        polled = self.fake.requests(f"/v1/trainings/{job_id}", "GET")
        self.assertGreaterEqual(len(polled), 1)
        self.assertTrue(all(p["token"] == "valid" for p in polled))

        st = status(self.jw)
        self.assertTrue(st["is_active"])
        self.assertEqual(st["source"], "automatic")
        self.assertEqual(st["interval_seconds"], INTERVAL)
        self.assertTrue(st["is_leader"])
        self.assertEqual(st["leader"], st["replica"])
        self.assertIsNotNone(st["last_tick_at"])
        self.assertIsNone(st["last_error"])
        self.assertEqual(st["last_tick"]["mode"], "all")

    def test_finished_jobs_are_not_polled(self):
        done = self.fake.add_jobs(count=2, kind="training", status="succeeded")["ids"]
        self.jw.request("POST", "/api/cloud/jobs/sync", timeout=30)
        self.fake.clear_requests()
        first = wait_until(lambda: status(self.jw)["last_tick_at"], timeout=INTERVAL * 3,
                           what="a tick")
        wait_until(lambda: status(self.jw)["last_tick_at"] != first, timeout=INTERVAL * 3,
                   what="another tick")
        self.assertEqual([r for r in self.fake.requests("/v1/trainings/") if
                          any(d in r["path"] for d in done)], [])
        self.assertEqual(status(self.jw)["last_tick"]["jobs"], 0)

    def test_two_replicas_one_polls_then_takeover_after_kill(self):
        second = self.start_jobwire(self.jobwire_env, name="jobwire2")
        leader = self.leader_of(self.jw, second)
        st1, st2 = status(self.jw), status(second)
        self.assertEqual(st1["leader"], st2["leader"])
        self.assertNotEqual(st1["replica"], st2["replica"])
        self.assertEqual(int(st1["is_leader"]) + int(st2["is_leader"]), 1)
        owner, other = (self.jw, second) if st1["is_leader"] else (second, self.jw)
        self.assertEqual(self.redis.cmd("GET", "jw:poller:leader"), leader)
        ttl = self.redis.cmd("PTTL", "jw:poller:leader")
        self.assertTrue(0 < ttl <= INTERVAL * 1500, ttl)
        # Only the leader ticks.
        wait_until(lambda: "tick done" in owner.log(), timeout=INTERVAL * 2, what="a tick")
        self.assertNotIn("tick done", other.log())

        owner.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: status(other)["is_leader"], timeout=INTERVAL * 2 + 2,
                   what="takeover")
        self.assertLessEqual(time.monotonic() - killed_at, INTERVAL * 2 + 1)
        self.assertIn("this replica now polls", other.log())

    def test_graceful_stop_releases_the_lease(self):
        second = self.start_jobwire(self.jobwire_env, name="jobwire2")
        self.leader_of(self.jw, second)
        owner, other = (self.jw, second) if status(self.jw)["is_leader"] else (second, self.jw)
        self.assertEqual(owner.stop(signal.SIGTERM), 0)
        self.assertIn("lease released", owner.log())
        # Released, not expired: the other replica takes it at its next check.
        wait_until(lambda: status(other)["is_leader"], timeout=INTERVAL, what="takeover")

    def test_override_applies_to_every_replica(self):
        second = self.start_jobwire(self.jobwire_env, name="jobwire2")
        self.leader_of(self.jw, second)

        r = self.jw.request("PUT", "/api/cloud/polling/setting", body=b'{"enabled": false}')
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["is_active"])
        self.assertEqual(r.json()["source"], "override")
        self.assertIs(r.json()["override"], False)
        self.assertEqual(self.redis.cmd("GET", "jw:poller:override"), "0")
        # Nobody wants the lease any more (no webhook, so no stale check).
        wait_until(lambda: status(second)["leader"] is None, timeout=INTERVAL * 2,
                   what="lease released")
        st = status(second)
        self.assertFalse(st["is_active"])
        self.assertEqual(st["source"], "override")

        r = self.jw.request("PUT", "/api/cloud/polling/setting", body=b'{"enabled": null}')
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["is_active"])
        self.assertEqual(r.json()["source"], "automatic")
        self.assertIsNone(self.redis.cmd("GET", "jw:poller:override"))
        self.leader_of(second)

        for body, code in ((b'{"enabled": "yes"}', "invalid_parameter"),
                           (b'{"on": true}', "invalid_body"), (b'not json', "invalid_body")):
            r = self.jw.request("PUT", "/api/cloud/polling/setting", body=body)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"], code)
        r = self.jw.request("POST", "/api/cloud/polling/setting", body=b'{}')
        self.assertEqual(r.status, 405)

    def test_429_lengthens_the_interval_and_logs_once(self):
        job_id = self.fake.add_jobs(count=1, kind="training", status="processing")["ids"][0]
        self.jw.request("POST", "/api/cloud/jobs/sync", timeout=30)
        self.jw.stop()
        self.fake.fault(status=429, retry_after=1, path_prefix=f"/v1/trainings/{job_id}",
                        forever=True)
        self.fake.clear_requests()
        self.jw = self.start_jobwire(poll_env(self.fake, JOBWIRE_REPLICATE_ATTEMPTS="2",
                                              JOBWIRE_REPLICATE_TIMEOUT_MS="3000"),
                                     name="jobwire-429")

        st = wait_until(lambda: (lambda s: s if s["last_error"] else None)(status(self.jw)),
                        timeout=INTERVAL * 3, what="a failed tick")
        self.assertIn("429", st["last_error"] + json.dumps(st))
        self.assertGreater(st["current_interval_seconds"], INTERVAL)
        self.assertGreaterEqual(st["last_tick"]["throttled"], 1)
        # Two retried requests per tick at most: no burst.
        self.assertLessEqual(len(self.fake.requests(f"/v1/trainings/{job_id}")), 2)
        failing = [l for l in self.jw.log().splitlines() if "polling failing" in l]
        self.assertEqual(len(failing), 1, failing)

        self.fake.clear_faults()
        wait_until(lambda: status(self.jw)["last_error"] is None, timeout=INTERVAL * 5,
                   what="recovery")
        self.assertEqual(status(self.jw)["current_interval_seconds"], INTERVAL)
        self.assertEqual(len([l for l in self.jw.log().splitlines()
                              if "polling failing" in l]), 1)
        self.assertIn("polling recovered", self.jw.log())


class StaleCheckTest(ServiceTest):
    """Webhooks on: polling is off, but a job without news is checked."""

    def setUp(self):
        self.fake = FakeReplicate()
        self.addCleanup(self.fake.stop)
        self.jobwire_env = poll_env(self.fake, REPLICATE_WEBHOOK_SECRET=SECRET,
                                    JOBWIRE_STALE_AFTER="2")
        super().setUp()

    def test_stale_job_is_checked(self):
        job_id = self.fake.add_jobs(count=1, kind="training", status="processing")["ids"][0]
        r = self.jw.webhook(starting_body(self.fake, job_id))
        self.assertEqual(r.status, 200, r)
        self.wait_job(job_id, lambda j: j["status"] == "queued")

        # The processing webhook was "lost"; the stale check finds the job.
        job = self.wait_job(job_id, lambda j: j["status"] == "running", timeout=INTERVAL * 3)
        self.assertEqual(job["provider_status"], "processing")
        st = status(self.jw)
        self.assertFalse(st["is_active"])
        self.assertTrue(st["stale_check"])
        self.assertEqual(st["stale_after_seconds"], 2)
        self.assertEqual(st["last_tick"]["mode"], "stale")
        line = startup_line(self.jw)
        self.assertIn("job status polling disabled", line)
        self.assertIn("a webhook is configured", line)


class ConfigJobwire(Jobwire):
    """A jobwire started with extra command-line arguments (--config FILE)."""

    def __init__(self, redis, args, **kw):
        super().__init__(redis, **kw)
        self.args = args

    def start(self, wait_ready=True):
        self.proc = subprocess.Popen([JOBWIRE] + self.args, env=self.env,
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        wait_until(self._healthy, what=f"{self.name} /healthz")
        return self


class EnableRulesTest(ServiceTest):
    """Which configuration turns polling on, and what the startup line says."""

    def setUp(self):
        self.fake = FakeReplicate()
        self.addCleanup(self.fake.stop)
        self.jobwire_env = poll_env(self.fake, SIMPLETUNER_JOB_POLL_INTERVAL=None)
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="jw-poll-")

    def yaml(self, text):
        path = os.path.join(self.dir, f"c{len(os.listdir(self.dir))}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_with(self, env, args=()):
        service = ConfigJobwire(self.redis, list(args), env=env,
                                name=f"rules{len(self.services)}")
        self.services.append(service)
        service.start()
        line = startup_line(service)
        st = status(service)
        service.stop()
        return line, st

    def test_rules_and_startup_line(self):
        line = startup_line(self.jw)
        self.assertRegex(line, r"job status polling enabled: automatic: no webhook is "
                               r"configured; interval 30s \(default\)")
        self.assertEqual(status(self.jw)["interval_seconds"], 30)

        cases = [
            ({"REPLICATE_WEBHOOK_SECRET": SECRET}, "disabled", "a webhook is configured", 30,
             "automatic"),
            ({"JOBWIRE_PUBLIC_URL": "http://127.0.0.1:9/hooks"}, "disabled",
             "a webhook is configured", 30, "automatic"),
            ({"REPLICATE_WEBHOOK_SECRET": SECRET, "JOBWIRE_POLL_ENABLED": "true"}, "enabled",
             "configured by JOBWIRE_POLL_ENABLED", 30, "environment"),
            ({"JOBWIRE_POLL_ENABLED": "false"}, "disabled", "configured by JOBWIRE_POLL_ENABLED",
             30, "environment"),
            ({"SIMPLETUNER_JOB_POLL_INTERVAL": "12"}, "enabled", "no webhook", 12, "automatic"),
        ]
        for extra, word, why, interval, source in cases:
            with self.subTest(extra=extra):
                line, st = self.start_with(dict(self.jobwire_env, **extra))
                self.assertIn(f"job status polling {word}: ", line)
                self.assertIn(why, line)
                self.assertIn(f"interval {interval}s", line)
                self.assertEqual(st["is_active"], word == "enabled")
                self.assertEqual(st["source"], source)
                self.assertEqual(st["interval_seconds"], interval)

    def test_yaml_and_env_precedence(self):
        path = self.yaml("background:\n  job_status_polling:\n    enabled: true\n"
                         "    interval_seconds: 7\njob_polling_interval: 99\n")
        env = dict(self.jobwire_env, REPLICATE_WEBHOOK_SECRET=SECRET)
        line, st = self.start_with(env, ["--config", path])
        self.assertIn("job status polling enabled: configured by "
                      "background.job_status_polling.enabled", line)
        self.assertIn("interval 7s (config_file)", line)
        self.assertEqual(st["source"], "config_file")
        self.assertEqual(st["interval_seconds"], 7)

        line, st = self.start_with(dict(env, SIMPLETUNER_JOB_POLL_INTERVAL="9"),
                                   ["--config", path])
        self.assertIn("interval 9s (environment)", line)
        self.assertEqual(st["interval_seconds"], 9)

        old = self.yaml("job_polling_interval: 11\n")
        line, st = self.start_with(env, ["--config", old])
        self.assertIn("interval 11s (config_file)", line)
        self.assertIn("job status polling disabled", line)

    def test_bad_interval_is_a_configuration_error(self):
        for value in ("0", "abc", "4"):
            env = dict(self.jw.env, SIMPLETUNER_JOB_POLL_INTERVAL=value)
            r = subprocess.run([JOBWIRE, "--check-config"], env=env, capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(r.returncode, 1, r)
            self.assertIn("SIMPLETUNER_JOB_POLL_INTERVAL", r.stderr)
        path = self.yaml("background:\n  job_status_polling:\n    interval_seconds: soon\n")
        r = subprocess.run([JOBWIRE, "--config", path, "--check-config"], env=self.jw.env,
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("background.job_status_polling.interval_seconds", r.stderr)


class PacingTest(ServiceTest):
    """Many active jobs against a fake that enforces 600 reads a minute."""

    JOBS = 120

    def setUp(self):
        self.fake = FakeReplicate()
        self.addCleanup(self.fake.stop)
        # Webhooks put the jobs in; polling is switched on explicitly.
        self.jobwire_env = poll_env(self.fake, REPLICATE_WEBHOOK_SECRET=SECRET,
                                    JOBWIRE_POLL_ENABLED="true")
        super().setUp()

    def test_every_job_refreshed_without_429(self):
        ids = self.fake.add_jobs(count=self.JOBS, kind="training", status="processing")["ids"]
        jobs = {j["object"]["id"]: j["object"] for j in self.fake.control("GET", "/jobs")["jobs"]}
        # Stop polling while the jobs arrive, so the count below is one tick's.
        self.jw.request("PUT", "/api/cloud/polling/setting", body=b'{"enabled": false}')
        for job_id in ids:
            body = dict(jobs[job_id], status="starting", logs="", started_at=None)
            self.assertEqual(self.jw.webhook(body).status, 200)
        self.wait_applied()
        self.fake.clear_requests()
        self.fake.control("POST", "/rate_limit", {"per_minute": 600})
        started = time.monotonic()
        self.jw.request("PUT", "/api/cloud/polling/setting", body=b'{"enabled": true}')

        def all_running():
            listed = self.jw.get("/api/cloud/jobs?limit=500&status=running").json()
            return listed["total"] == self.JOBS
        wait_until(all_running, timeout=self.JOBS * 0.2 + INTERVAL * 2, interval=0.5,
                   what="every job running")
        elapsed = time.monotonic() - started

        reqs = self.fake.requests("/v1/trainings/")
        statuses = [r["status"] for r in reqs]
        self.assertNotIn(429, statuses)
        self.assertEqual({r["path"].rsplit("/", 1)[1] for r in reqs}, set(ids))
        # Paced at JOBWIRE_POLL_RATE (540/min): no faster than 9 a second.
        self.assertGreaterEqual(elapsed, (self.JOBS - 1) / 9.0 - 1)
        times = sorted(r["time"] for r in reqs)
        burst = max(sum(1 for t in times if s <= t < s + 1) for s in times)
        self.assertLessEqual(burst, 10, burst)
