"""Provider endpoints against the fake Replicate and a real Redis: sync,
sync_active, validate, cancel, logs and delete, plus how jobwire behaves
when the provider rate-limits, fails or hangs.

Every jobwire here talks to the fake on loopback only
(JOBWIRE_REPLICATE_API_URL), never to the real Replicate API.
"""
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest

from harness import ROOT, ServiceTest, wait_until

FAKE = os.path.join(ROOT, "tests", "fake_replicate", "fake_replicate.py")
TOKEN = "r8_provider_test_token"


class FakeReplicate:
    """The fake Replicate API as a subprocess on a port the kernel picked."""

    def __init__(self, token=TOKEN, extra_args=()):
        args = [sys.executable, FAKE, "--port", "0"]
        if token:
            args += ["--token", token]
        self.proc = subprocess.Popen(args + list(extra_args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise AssertionError(f"fake replicate did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self.api_url = self.origin + "/v1"
        # Keep reading its output so a full pipe never blocks it.
        self.output = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def control(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, "/_control" + path, body=data,
                         headers={"content-type": "application/json"})
            r = conn.getresponse()
            payload = r.read()
            if r.status >= 400:
                raise AssertionError(f"control {method} {path}: {r.status} {payload[:300]!r}")
            return json.loads(payload) if payload else None
        finally:
            conn.close()

    def settings(self, **values):
        return self.control("PATCH", "/settings", values)

    def add_jobs(self, **spec):
        return self.control("POST", "/jobs", spec)

    def job(self, job_id):
        """The job as the API would serve it."""
        return self.control("GET", f"/jobs/{job_id}")["object"]

    def set_job(self, job_id, **fields):
        return self.control("POST", f"/jobs/{job_id}", fields)

    def fault(self, **spec):
        return self.control("POST", "/faults", spec)

    def clear_faults(self):
        return self.control("DELETE", "/faults")

    def requests(self, path_prefix="/v1/", method=None):
        query = f"?path_prefix={path_prefix}" + (f"&method={method}" if method else "")
        return self.control("GET", "/requests" + query)["requests"]

    def clear_requests(self):
        return self.control("DELETE", "/requests")


class CannedProvider:
    """A tiny HTTP server on loopback that sends one canned response to
    every request and records the paths asked, for shapes the fake does
    not produce (a 200 that is not JSON, a cursor to another host)."""

    def __init__(self, status, body, content_type="application/json"):
        self.paths = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class ProviderTest(ServiceTest):
    """One fake Replicate, one Redis and one jobwire per test."""

    extra_env = {}
    fake_token = TOKEN

    def setUp(self):
        self.fake = FakeReplicate(token=self.fake_token)
        self.addCleanup(self.fake.stop)
        self.jobwire_env = self.env()
        super().setUp()

    def env(self, **overrides):
        env = {
            "JOBWIRE_REPLICATE_API_URL": self.fake.api_url,
            "REPLICATE_API_TOKEN": TOKEN,
            "JOBWIRE_REPLICATE_TIMEOUT_MS": "8000",
            "JOBWIRE_REPLICATE_CONNECT_MS": "2000",
        }
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def post(self, path, service=None, timeout=30):
        return (service or self.jw).request("POST", path, timeout=timeout)

    def sync(self, service=None, timeout=30):
        r = self.post("/api/cloud/jobs/sync", service, timeout)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def list_all(self, service=None, **query):
        query.setdefault("limit", 500)
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        r = (service or self.jw).get(f"/api/cloud/jobs?{qs}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def add_active(self, kind="training", status="processing", count=1):
        return self.fake.add_jobs(count=count, kind=kind, status=status, auto=False)["ids"]


class SyncTest(ProviderTest):

    def test_sync_three_pages_newest_100(self):
        self.fake.settings(page_size=40)
        ids = self.fake.add_jobs(count=250, kind="training", status="succeeded")["ids"]
        newest_100 = set(ids[-100:])

        body = self.sync()
        self.assertEqual(body["synced"], 100)
        self.assertEqual(body["message"], "Discovered 100 new jobs from Replicate")
        pages = self.fake.requests("/v1/trainings", "GET")
        self.assertEqual(len(pages), 3, [p["query"] for p in pages])
        self.assertTrue(all(p["token"] == "valid" for p in pages))

        # The store contains them before the response: a list right after shows them.
        listed = self.list_all()
        self.assertEqual(listed["total"], 100)
        self.assertEqual({j["job_id"] for j in listed["jobs"]}, newest_100)
        job = listed["jobs"][0]
        self.assertEqual(job["status"], "completed")
        self.assertEqual(job["kind"], "training")
        self.assertIsNotNone(job["completed_at"])

        again = self.sync()
        self.assertEqual(again["synced"], 0)
        self.assertEqual(again["message"], "Discovered 0 new jobs from Replicate")

    def test_sync_merges_kinds_newest_first(self):
        start = "2025-06-01T00:00:00Z"
        trainings = self.fake.add_jobs(count=70, kind="training", status="succeeded",
                                       created_at_start=start, spacing_seconds=120)["ids"]
        predictions = self.fake.add_jobs(count=70, kind="prediction", status="failed",
                                         created_at_start="2025-06-01T00:01:00Z",
                                         spacing_seconds=120)["ids"]
        # Interleaved a minute apart: the 100 newest are the last 50 of each.
        body = self.sync()
        self.assertEqual(body["synced"], 100)
        stored = {j["job_id"]: j for j in self.list_all()["jobs"]}
        self.assertEqual(set(stored), set(trainings[-50:]) | set(predictions[-50:]))
        self.assertEqual(stored[predictions[-1]]["kind"], "prediction")
        self.assertEqual(stored[predictions[-1]]["status"], "failed")

    def test_sync_updates_known_jobs(self):
        [job_id] = self.add_active()
        self.assertEqual(self.sync()["synced"], 1)
        self.assertEqual(self.jw.job(job_id)["status"], "running")

        self.fake.control("POST", f"/jobs/{job_id}/advance", {"to": "succeeded"})
        new = self.add_active(kind="prediction", status="starting")
        body = self.sync()
        self.assertEqual(body["synced"], 1)
        self.assertEqual(body["updated"], 1)
        self.assertEqual(self.jw.job(job_id)["status"], "completed")
        self.assertEqual(self.jw.job(new[0])["status"], "queued")

    def test_sync_concurrent_replicas_count_once(self):
        other = self.start_jobwire(self.env(), name="jobwire-b")
        self.fake.add_jobs(count=60, kind="training", status="succeeded")
        self.fake.add_jobs(count=30, kind="prediction", status="processing")
        # Both lists are held back so the two syncs overlap for certain.
        self.fake.fault(delay=1.0, count=4, path_prefix="/v1/")

        results = [None, None]

        def run(i, service):
            results[i] = self.sync(service)

        threads = [threading.Thread(target=run, args=(i, s))
                   for i, s in enumerate((self.jw, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results[0]["synced"] + results[1]["synced"], 90, results)
        self.assertEqual(self.list_all()["total"], 90)
        self.assertEqual(self.list_all(other)["total"], 90)

    def test_sync_without_token_rejected(self):
        jw = self.start_jobwire(self.env(REPLICATE_API_TOKEN=None), name="no-token")
        r = self.post("/api/cloud/jobs/sync", jw)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"], "provider_not_configured")
        self.assertEqual(self.fake.requests(), [])


class SyncActiveTest(ProviderTest):

    def test_sync_active_completes_finished_job(self):
        [job_id] = self.add_active()
        self.sync()
        self.assertEqual(self.jw.job(job_id)["status"], "running")

        self.fake.set_job(job_id, status="succeeded",
                          metrics={"predict_time": 1363.607746, "total_time": 1369.2801})
        remote = self.fake.job(job_id)

        listed = self.list_all(sync_active="true")
        self.assertTrue(listed["synced"], listed)
        self.assertIsNone(listed["sync_error"])
        job = {j["job_id"]: j for j in listed["jobs"]}[job_id]
        self.assertEqual(job["status"], "completed")
        self.assertEqual(job["provider_status"], "succeeded")
        self.assertAlmostEqual(job["predict_time"], 1363.607746, places=5)
        self.assertIsNotNone(job["cost_usd"])
        self.assertGreater(job["cost_usd"], 0)
        self.assertIsNotNone(job["started_at"])
        self.assertIsNotNone(job["completed_at"])
        self.assertEqual(job["completed_at"][:19], remote["completed_at"][:19])
        self.assertNotIn(job_id, self.redis.cmd("ZRANGE", "jw:idx:active", 0, -1))

    def test_sync_active_many_jobs(self):
        ids = self.add_active(count=30)
        self.sync()
        self.fake.control("POST", "/advance", {"to": "failed"})
        self.fake.clear_requests()

        listed = self.list_all(sync_active="true")
        self.assertIsNone(listed["sync_error"])
        statuses = {j["job_id"]: j["status"] for j in listed["jobs"]}
        self.assertTrue(all(statuses[i] == "failed" for i in ids), statuses)
        gets = self.fake.requests("/v1/trainings/", "GET")
        self.assertEqual(len(gets), 30)

    def test_sync_active_failure_still_lists(self):
        [job_id] = self.add_active()
        self.sync()
        self.fake.fault(status=500, forever=True, path_prefix="/v1/trainings/")

        started = time.monotonic()
        listed = self.list_all(sync_active="true")
        self.assertLess(time.monotonic() - started, 9)
        self.assertFalse(listed["synced"])
        self.assertIn(job_id, listed["sync_error"])
        self.assertIn("500", listed["sync_error"])
        self.assertEqual(listed["total"], 1)

    def test_sync_active_no_active_jobs(self):
        listed = self.list_all(sync_active="true")
        self.assertTrue(listed["synced"])
        self.assertEqual(self.fake.requests(), [])


class ValidateTest(ProviderTest):

    def validate(self, service=None):
        r = (service or self.jw).get("/api/cloud/providers/replicate/validate")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_validate_good_token(self):
        body = self.validate()
        self.assertTrue(body["valid"], body)
        self.assertEqual(body["account"]["username"], "fake-user")
        [req] = self.fake.requests("/v1/account")
        self.assertEqual(req["token"], "valid")

    def test_validate_rejected_token(self):
        jw = self.start_jobwire(self.env(REPLICATE_API_TOKEN="r8_wrong"), name="bad-token")
        body = self.validate(jw)
        self.assertFalse(body["valid"])
        self.assertEqual(body["code"], "token_rejected")
        self.assertIn("401", body["reason"])
        self.assertIn("valid authentication token", body["reason"])
        self.assertNotIn("r8_wrong", json.dumps(body))
        self.assertNotIn("r8_wrong", jw.log())
        # A 401 is not retried.
        self.assertEqual(len(self.fake.requests("/v1/account")), 1)

    def test_validate_missing_token(self):
        jw = self.start_jobwire(self.env(REPLICATE_API_TOKEN=None), name="no-token")
        body = self.validate(jw)
        self.assertFalse(body["valid"])
        self.assertEqual(body["code"], "no_token")
        self.assertIn("REPLICATE_API_TOKEN", body["reason"])
        self.assertEqual(self.fake.requests(), [])

    def test_validate_unreachable_provider(self):
        closed = f"http://127.0.0.1:{free_closed_port()}/v1"
        jw = self.start_jobwire(self.env(JOBWIRE_REPLICATE_API_URL=closed,
                                         JOBWIRE_REPLICATE_TIMEOUT_MS="3000"),
                                name="unreachable")
        started = time.monotonic()
        body = self.validate(jw)
        self.assertLess(time.monotonic() - started, 6)
        self.assertFalse(body["valid"])
        self.assertEqual(body["code"], "unreachable")
        self.assertIn("cannot reach Replicate", body["reason"])

    def test_token_absent_from_logs(self):
        self.validate()
        self.sync()
        self.assertNotIn(TOKEN, self.jw.log())


class CancelTest(ProviderTest):

    def test_cancel_active_job(self):
        [job_id] = self.add_active()
        self.sync()
        r = self.post(f"/api/cloud/jobs/{job_id}/cancel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "cancelled")
        self.assertTrue(r.json()["cancelled"])
        self.assertEqual(self.fake.job(job_id)["status"], "canceled")
        self.assertEqual(self.jw.job(job_id)["status"], "cancelled")
        [req] = self.fake.requests(f"/v1/trainings/{job_id}/cancel", "POST")
        self.assertEqual(req["token"], "valid")

    def test_cancel_finished_job_conflict(self):
        [job_id] = self.fake.add_jobs(count=1, status="succeeded")["ids"]
        self.sync()
        self.fake.clear_requests()
        r = self.post(f"/api/cloud/jobs/{job_id}/cancel")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"], "job_not_active")
        self.assertEqual(self.fake.requests(), [])

    def test_cancel_provider_404_marks_cancelled(self):
        [job_id] = self.add_active(kind="prediction")
        self.sync()
        self.fake.control("DELETE", f"/jobs/{job_id}")
        r = self.post(f"/api/cloud/jobs/{job_id}/cancel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "cancelled")
        self.assertTrue(r.json()["provider_gone"])
        job = self.jw.job(job_id)
        self.assertEqual(job["status"], "cancelled")
        self.assertIsNotNone(job["completed_at"])

    def test_cancel_unknown_job_404(self):
        r = self.post("/api/cloud/jobs/nosuchjob/cancel")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"], "job_not_found")


class DeleteAndLogsTest(ProviderTest):

    def test_delete_finished_job_everywhere(self):
        [done] = self.fake.add_jobs(count=1, status="failed")["ids"]
        self.sync()
        self.fake.clear_requests()
        r = self.jw.request("DELETE", f"/api/cloud/jobs/{done}")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["deleted"])
        self.assertEqual(self.jw.get(f"/api/cloud/jobs/{done}").status, 404)
        self.assertEqual(self.list_all()["total"], 0)
        for key in ("jw:idx:all", "jw:idx:status:failed", "jw:idx:provider:replicate",
                    "jw:idx:active"):
            self.assertEqual(self.redis.cmd("ZSCORE", key, done), None, key)
        self.assertEqual(self.fake.requests(), [])
        self.assertEqual(self.fake.job(done)["status"], "failed")

        again = self.jw.request("DELETE", f"/api/cloud/jobs/{done}")
        self.assertEqual(again.status, 404, again)

    def test_deleted_job_stays_deleted(self):
        [done, other] = self.fake.add_jobs(count=2, status="succeeded")["ids"]
        self.assertEqual(self.sync()["synced"], 2)
        self.assertEqual(self.jw.request("DELETE", f"/api/cloud/jobs/{done}").status, 200)
        ttl = self.redis.cmd("TTL", f"jw:deleted:{done}")
        self.assertTrue(30 * 86400 - 60 < ttl <= 30 * 86400, ttl)

        # Replicate still lists it: a sync does not bring it back.
        result = self.sync()
        self.assertEqual((result["synced"], result["message"]),
                         (0, "Discovered 0 new jobs from Replicate"))
        self.assertEqual(self.jw.get(f"/api/cloud/jobs/{done}").status, 404)
        # Nor does a late webhook delivery of its final state.
        body = dict(self.fake.job(done), id=done)
        self.assertEqual(self.jw.webhook(body).status, 200)
        self.wait_applied()
        self.assertEqual(self.jw.get(f"/api/cloud/jobs/{done}").status, 404)
        self.assertEqual([j["job_id"] for j in self.list_all()["jobs"]], [other])

    def test_delete_active_job_rejected(self):
        [job_id] = self.add_active()
        self.sync()
        r = self.jw.request("DELETE", f"/api/cloud/jobs/{job_id}")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "job_active")
        self.assertEqual(self.jw.job(job_id)["status"], "running")

    def test_logs_from_provider(self):
        [job_id] = self.add_active()
        self.sync()
        self.fake.set_job(job_id, logs="loading data\nstep 10/100 - loss: 0.5\n")
        r = self.jw.get(f"/api/cloud/jobs/{job_id}/logs")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"job_id": job_id,
                                    "logs": "loading data\nstep 10/100 - loss: 0.5\n"})

    def test_logs_unknown_job_404(self):
        r = self.jw.get("/api/cloud/jobs/nosuchjob/logs")
        self.assertEqual(r.status, 404, r)


class ProviderFailureTest(ProviderTest):

    def test_429_waits_retry_after_header(self):
        self.fake.add_jobs(count=3, status="succeeded")
        self.fake.fault(status=429, retry_after=2, count=1, path_prefix="/v1/trainings")
        self.assertEqual(self.sync()["synced"], 3)
        tries = self.fake.requests("/v1/trainings", "GET")
        self.assertEqual([t["status"] for t in tries], [429, 200])
        gap = tries[1]["time"] - tries[0]["time"]
        self.assertGreaterEqual(gap, 1.9, gap)
        self.assertLess(gap, 3.5, gap)

    def test_429_waits_body_retry_after(self):
        self.fake.add_jobs(count=2, kind="prediction", status="succeeded")
        self.fake.fault(status=429, body_retry_after=1.5, count=1, path_prefix="/v1/predictions")
        self.assertEqual(self.sync()["synced"], 2)
        tries = self.fake.requests("/v1/predictions", "GET")
        self.assertEqual([t["status"] for t in tries], [429, 200])
        gap = tries[1]["time"] - tries[0]["time"]
        self.assertGreaterEqual(gap, 1.4, gap)
        self.assertLess(gap, 3.0, gap)

    def test_5xx_retried_with_backoff(self):
        self.fake.add_jobs(count=1, status="succeeded")
        self.fake.fault(status=503, count=2, path_prefix="/v1/trainings")
        self.assertEqual(self.sync()["synced"], 1)
        tries = self.fake.requests("/v1/trainings", "GET")
        self.assertEqual([t["status"] for t in tries], [503, 503, 200])
        first = tries[1]["time"] - tries[0]["time"]
        second = tries[2]["time"] - tries[1]["time"]
        self.assertGreaterEqual(first, 0.2)
        self.assertGreaterEqual(second, 0.45)

    def test_persistent_5xx_502(self):
        self.fake.fault(status=500, forever=True, path_prefix="/v1/predictions")
        r = self.post("/api/cloud/jobs/sync")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error"], "provider_error")
        self.assertIn("500", r.json()["message"])
        self.assertIn("injected by fake-replicate", r.json()["message"])
        # Bounded: four attempts, then the error response.
        self.assertEqual(len(self.fake.requests("/v1/predictions", "GET")), 4)
        self.assertEqual(self.list_all()["total"], 0)

    def test_4xx_not_retried(self):
        self.fake.fault(status=402, count=5, path_prefix="/v1/trainings")
        r = self.post("/api/cloud/jobs/sync")
        self.assertEqual(r.status, 502, r)
        self.assertIn("insufficient credit", r.json()["message"])
        self.assertEqual(len(self.fake.requests("/v1/trainings", "GET")), 1)

    def test_dropped_connections_retried(self):
        self.fake.add_jobs(count=2, status="succeeded")
        self.fake.fault(drop="reset", count=1, path_prefix="/v1/trainings")
        self.fake.fault(drop="truncate", count=1, path_prefix="/v1/trainings")
        self.assertEqual(self.sync()["synced"], 2)

    def canned(self, status, body, content_type="application/json"):
        provider = CannedProvider(status, body, content_type)
        self.addCleanup(provider.stop)
        jw = self.start_jobwire(self.env(JOBWIRE_REPLICATE_API_URL=provider.api_url),
                                name=f"canned-{len(self.services)}")
        return provider, jw

    def test_invalid_list_body_502(self):
        _, jw = self.canned(200, b"<html>maintenance</html>", "text/html")
        r = self.post("/api/cloud/jobs/sync", jw)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error"], "provider_error")
        self.assertIn("cannot read", r.json()["message"])

    def test_foreign_cursor_not_followed(self):
        # 127.0.0.2 is loopback too, but another origin: the token must not go there.
        page = {"next": "http://127.0.0.2:9/v1/trainings?cursor=x", "previous": None,
                "results": [self.fake.add_jobs(count=1, status="succeeded")["jobs"][0]]}
        provider, jw = self.canned(200, page)
        body = self.sync(jw)
        self.assertEqual(body["synced"], 1)
        self.assertEqual(sorted(provider.paths), ["/v1/predictions", "/v1/trainings"])
        self.assertIn("list cursor ignored", jw.log())

    def test_hanging_provider_healthz_fast_504(self):
        jw = self.start_jobwire(self.env(JOBWIRE_REPLICATE_TIMEOUT_MS="3000"), name="hang")
        self.fake.fault(delay=60, forever=True, path_prefix="/v1/")
        result = {}

        def run():
            started = time.monotonic()
            result["response"] = self.post("/api/cloud/jobs/sync", jw, timeout=30)
            result["seconds"] = time.monotonic() - started

        t = threading.Thread(target=run)
        t.start()
        latencies = []
        while t.is_alive() and len(latencies) < 200:
            started = time.monotonic()
            self.assertEqual(jw.get("/healthz").status, 200)
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
        t.join(30)
        self.fake.clear_faults()

        r = result["response"]
        self.assertEqual(r.status, 504, r)
        self.assertEqual(r.json()["error"], "provider_timeout")
        self.assertIn("timed out after 3000 ms", r.json()["message"])
        self.assertGreaterEqual(result["seconds"], 2.8)
        self.assertLess(result["seconds"], 6)
        self.assertGreater(len(latencies), 20)
        self.assertLess(max(latencies), 0.5, latencies)

    def test_inflight_limit_queues_requests(self):
        jw = self.start_jobwire(self.env(JOBWIRE_REPLICATE_INFLIGHT="2"), name="narrow")
        ids = self.add_active(count=6)
        self.sync(jw)
        self.fake.fault(delay=0.5, count=6, path_prefix="/v1/trainings/")
        listed = self.list_all(jw, sync_active="true")
        self.assertIsNone(listed["sync_error"])
        gets = sorted(t["time"] for t in self.fake.requests("/v1/trainings/", "GET"))
        self.assertEqual(len(gets), len(ids))
        # Two at a time, half a second each: the last starts a second after the first.
        self.assertGreaterEqual(gets[-1] - gets[0], 0.9)


class WebhookSecretTest(ProviderTest):

    def test_secret_fetched_with_public_url(self):
        secret = "whsec_pooJcSLuvxP1ymbzbwSpxNv0sFEMydUv"
        self.fake.settings(secret=secret)
        jw = self.start_jobwire(self.env(REPLICATE_WEBHOOK_SECRET=None,
                                         JOBWIRE_PUBLIC_URL="https://jobs.example.com/hook"),
                                name="fetched-secret")
        wait_until(lambda: "signing secret loaded from Replicate" in jw.log(),
                   what="secret fetched")
        self.assertNotIn(secret, jw.log())
        self.assertNotIn(secret[6:], jw.log())

        body = self.fake.add_jobs(count=1, status="succeeded")["jobs"][0]
        r = jw.webhook(body, secret=secret)
        self.assertEqual(r.status, 200, r)

    def test_secret_refetch_rate_limited(self):
        self.fake.settings(secret="whsec_pooJcSLuvxP1ymbzbwSpxNv0sFEMydUv")
        jw = self.start_jobwire(self.env(REPLICATE_WEBHOOK_SECRET=None,
                                         JOBWIRE_PUBLIC_URL="https://jobs.example.com/hook"),
                                name="rotated-secret")
        wait_until(lambda: "signing secret loaded from Replicate" in jw.log(),
                   what="secret fetched")
        body = self.fake.add_jobs(count=1, status="succeeded")["jobs"][0]
        for _ in range(5):
            r = jw.webhook(body, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            self.assertEqual(r.status, 401, r)
        time.sleep(0.3)
        self.assertEqual(len(self.fake.requests("/v1/webhooks/default/secret")), 1)

    def test_secret_without_token_rejects_webhooks(self):
        jw = self.start_jobwire(self.env(REPLICATE_WEBHOOK_SECRET=None, REPLICATE_API_TOKEN=None,
                                         JOBWIRE_PUBLIC_URL="https://jobs.example.com/hook"),
                                name="no-secret")
        self.assertIn("webhooks will be refused", jw.log())
        body = self.fake.add_jobs(count=1, status="succeeded")["jobs"][0]
        r = jw.webhook(body)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"], "webhook_not_configured")
        self.assertEqual(self.fake.requests(), [])


def free_closed_port():
    """Return a loopback port without a listener (bound, then released)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    unittest.main()
