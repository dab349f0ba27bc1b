"""The submission queue against the fake Replicate and a real Redis:
slots and their limit, the line and its positions over SSE, idempotent
retries, cancelling, provider refusals and transient errors, lost slots,
linking provider ids to local jobs, and two replicas racing for slots.

The fake runs with automatic progress off, so a training stays
`starting` until a test advances it; its count of active trainings is the
number of trainings jobwire really started. jobwire gives the fake a
webhook URL on loopback (JOBWIRE_PUBLIC_URL), so the fake's signed
webhooks carry every status change back, as Replicate's would.
"""
import json
import signal
import threading
import time

from harness import SECRET, Jobwire, SSEStream, ServiceTest, wait_until
from test_provider import TOKEN, FakeReplicate

INTERVAL = 0.3
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def submission(**overrides):
    body = {"model": "acme/flux-trainer", "version": VERSION, "destination": "acme/my-lora",
            "input": {"input_images": "https://example.com/data.zip", "steps": 100}}
    body.update(overrides)
    return body


class QueueTest(ServiceTest):
    """A fake Replicate that sends webhooks, a Redis, and one jobwire."""

    max_concurrent = 3
    extra_env = {}

    def setUp(self):
        self.fake = FakeReplicate(extra_args=["--secret", SECRET])
        self.addCleanup(self.fake.stop)
        self.fake.settings(auto_advance=False)
        super().setUp()

    def start_jobwire(self, env=None, wait_ready=True, name=None):
        service = Jobwire(self.redis, name=name or f"jobwire{len(self.services) + 1}")
        service.env.update({
            "JOBWIRE_REPLICATE_API_URL": self.fake.api_url,
            "REPLICATE_API_TOKEN": TOKEN,
            "JOBWIRE_PUBLIC_URL": f"http://127.0.0.1:{service.port}/api/webhooks/replicate",
            "JOBWIRE_QUEUE_INTERVAL": str(INTERVAL),
            "JOBWIRE_QUEUE_MAX_CONCURRENT": str(self.max_concurrent),
            "JOBWIRE_REPLICATE_TIMEOUT_MS": "5000",
        })
        service.env.update(self.extra_env)
        service.env.update(env or {})
        service.env = {k: v for k, v in service.env.items() if v is not None}
        self.services.append(service)
        return service.start(wait_ready=wait_ready)

    # -- helpers ------------------------------------------------------------------

    def submit(self, body=None, key=None, service=None, expect=202):
        headers = {"content-type": "application/json"}
        if key is not None:
            headers["idempotency-key"] = key
        data = body if isinstance(body, bytes) else json.dumps(body or submission()).encode()
        r = (service or self.jw).request("POST", "/api/cloud/jobs", body=data, headers=headers)
        self.assertEqual(r.status, expect, r)
        return r.json()

    def queue(self, service=None):
        r = (service or self.jw).get("/api/cloud/queue")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def trainings(self):
        """The fake's trainings, oldest first."""
        jobs = self.fake.control("GET", "/jobs?kind=training")["jobs"]
        return [j["object"] for j in reversed(jobs)]

    def active_at_fake(self):
        return [t for t in self.trainings() if t["status"] in ("starting", "processing")]

    def creates(self):
        return [r for r in self.fake.requests("/v1/models/", "POST")]

    def wait_started(self, count, timeout=10):
        return wait_until(lambda: len(self.trainings()) >= count and self.trainings(),
                          timeout=timeout, what=f"{count} trainings at the fake")

    def finish(self, provider_id, to="succeeded"):
        self.fake.control("POST", f"/jobs/{provider_id}/advance", {"to": to})

    def metrics(self):
        text = self.jw.get("/metrics").body.decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}

    def provider_id(self, job_id):
        return self.wait_job(job_id, lambda j: j["provider_job_id"])["provider_job_id"]


class SlotTest(QueueTest):
    def test_three_slots_and_countdown(self):
        events = []
        stream = SSEStream(self.jw, "/api/events")
        self.addCleanup(stream.close)
        stop = threading.Event()

        def read():
            while not stop.is_set():
                try:
                    events.append(stream.next_change(timeout=0.5))
                except TimeoutError:
                    continue
                except EOFError:
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self.addCleanup(stop.set)

        submitted = [self.submit()["job"] for _ in range(10)]
        ids = [job["job_id"] for job in submitted]
        self.assertEqual(len(set(ids)), 10)
        for job_id in ids:
            self.assertRegex(job_id, r"^jw-[0-9a-f]{32}$")

        self.wait_started(3)
        time.sleep(INTERVAL * 5)  # more rounds must not start more
        self.assertEqual(len(self.trainings()), 3)
        self.assertEqual(len(self.creates()), 3)
        q = self.queue()
        self.assertEqual(q["max_concurrent"], 3)
        self.assertEqual(q["slots_used"], 3)
        self.assertEqual(q["slots_free"], 0)
        self.assertEqual(q["pending"], 7)
        self.assertEqual([e["job_id"] for e in q["entries"]], ids[3:])
        self.assertEqual([e["position"] for e in q["entries"]], list(range(1, 8)))
        self.assertEqual(sorted(h["job_id"] for h in q["running"]), sorted(ids[:3]))
        for job_id, position in zip(ids[3:], range(1, 8)):
            self.assertEqual(self.jw.job(job_id)["queue_position"], position)
            self.assertEqual(self.jw.job(job_id)["status"], "pending")

        # The creates carried the destination, input and a webhook naming the job.
        started = {self.provider_id(j): j for j in ids[:3]}
        for training in self.trainings():
            self.assertEqual(training["destination"], "acme/my-lora")
            self.assertEqual(training["input"]["steps"], 100)
            self.assertEqual(training["webhook"],
                             f"http://127.0.0.1:{self.jw.port}/api/webhooks/replicate"
                             f"?job={started[training['id']]}")
            self.assertEqual(sorted(training["webhook_events_filter"]),
                             ["completed", "logs", "output", "start"])

        # Each finished training frees its slot and the next job starts
        # within one interval (plus the time the webhook and a round take).
        finished = 0
        while finished < 10:
            active = self.active_at_fake()
            self.assertLessEqual(len(active), 3)
            self.finish(active[0]["id"])
            finished += 1
            expected = min(10, finished + 3)
            wait_until(lambda: len(self.trainings()) >= expected, timeout=INTERVAL + 2.5,
                       what=f"training {expected} started after {finished} finished")
            self.assertLessEqual(len(self.active_at_fake()), 3)
        for job_id in ids:
            self.wait_job(job_id, lambda j: j["status"] == "completed")
        self.assertEqual(len(self.creates()), 10)
        q = self.queue()
        self.assertEqual((q["pending"], q["slots_used"], q["entries"], q["running"]),
                         (0, 0, [], []))
        metrics = self.metrics()
        self.assertEqual(metrics['jobwire_queue_trainings_total{result="started"}'], 10)
        self.assertEqual(metrics['jobwire_queue_trainings_total{result="refused"}'], 0)
        self.assertEqual(metrics["jobwire_queue_leader"], 1)
        self.assertGreater(metrics["jobwire_queue_rounds_total"], 10)

        # In SSE, every late job's position fell from the one it was given,
        # then, once the first three ran, by one per finished job to 1, and
        # left the line (null) when it started.
        stop.set()
        reader.join(2)
        for index, job in enumerate(submitted[3:]):
            seen = [e["data"].get("queue_position") for e in events
                    if e["event"] == "message" and e["data"]["job_id"] == job["job_id"]
                    and e["data"]["status"] == "pending"]
            self.assertEqual(seen[0], job["queue_position"], seen)
            self.assertEqual(seen[-(index + 2):], list(range(index + 1, 0, -1)) + [None], seen)
            self.assertEqual(seen[:-1], sorted(seen[:-1], reverse=True), seen)
            self.assertEqual(len(set(seen[:-1])), len(seen) - 1, seen)

    def test_limit_per_user(self):
        self.services[0].stop()
        self.services.clear()
        self.jw = self.start_jobwire({"JOBWIRE_QUEUE_MAX_PER_USER": "1"})
        a1 = self.submit(submission(user_id="alice"))["job"]["job_id"]
        a2 = self.submit(submission(user_id="alice"))["job"]["job_id"]
        b1 = self.submit(submission(user_id="bob"))["job"]["job_id"]
        self.wait_started(2)
        time.sleep(INTERVAL * 5)
        self.assertEqual(len(self.trainings()), 2)
        self.assertEqual(self.jw.job(a2)["status"], "pending")
        self.assertEqual(self.jw.job(a2)["queue_position"], 1)
        self.assertEqual(self.jw.job(a2)["user_id"], "alice")
        q = self.queue()
        self.assertEqual(q["max_per_user"], 1)
        self.assertEqual(sorted(h["user_id"] for h in q["running"]), ["alice", "bob"])
        self.finish(self.provider_id(a1))
        self.wait_job(a2, lambda j: j["status"] == "queued", timeout=5)
        self.assertEqual(self.jw.job(b1)["status"], "queued")

    def test_full_queue_rejects_with_503(self):
        self.services[0].stop()
        self.services.clear()
        self.jw = self.start_jobwire({"JOBWIRE_QUEUE_ENABLED": "false",
                                      "JOBWIRE_QUEUE_MAX_PENDING": "2"})
        self.submit()
        self.submit()
        r = self.jw.request("POST", "/api/cloud/jobs", body=json.dumps(submission()).encode())
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"], "queue_full")
        self.assertIn("JOBWIRE_QUEUE_MAX_PENDING", r.json()["message"])
        self.assertEqual(r.headers.get("retry-after"), "5")
        self.assertEqual(self.queue()["pending"], 2)
        self.assertEqual(self.creates(), [])


class SubmitTest(QueueTest):
    def test_idempotent_retry_returns_first_job(self):
        first = self.submit(key="order-17")
        self.assertFalse(first["replayed"])
        job_id = first["job"]["job_id"]
        again = self.submit(key="order-17", expect=200)
        self.assertTrue(again["replayed"])
        self.assertEqual(again["job"]["job_id"], job_id)
        self.wait_started(1)
        # A retry after the start returns the job as it is now.
        replay = self.submit(key="order-17", expect=200)
        self.assertEqual(replay["job"]["job_id"], job_id)
        self.wait_job(job_id, lambda j: j["status"] == "queued")
        self.assertEqual(self.submit(key="order-17", expect=200)["job"]["status"], "queued")
        time.sleep(INTERVAL * 3)
        self.assertEqual(len(self.creates()), 1)
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 1)
        # Stored under the caller's name ("loopback" without a key file).
        ttl = self.redis.cmd("TTL", "jw:idem:loopback:order-17")
        self.assertGreater(ttl, 86000)
        self.assertLessEqual(ttl, 86400)

    def test_key_reused_with_other_body_is_422(self):
        job_id = self.submit(key="k-1")["job"]["job_id"]
        r = self.jw.request("POST", "/api/cloud/jobs", headers={"idempotency-key": "k-1"},
                            body=json.dumps(submission(destination="acme/other")).encode())
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"], "idempotency_key_reused")
        self.assertIn(job_id, r.json()["message"])
        self.assertIn("k-1", r.json()["message"])
        other = self.submit(key="k-2")["job"]["job_id"]
        self.assertNotEqual(other, job_id)
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 2)

    def test_key_of_deleted_job_is_404(self):
        job_id = self.submit(key="k-gone")["job"]["job_id"]
        self.provider_id(job_id)
        self.assertEqual(self.jw.request("POST", f"/api/cloud/jobs/{job_id}/cancel").status, 200)
        r = self.jw.request("DELETE", f"/api/cloud/jobs/{job_id}")
        self.assertEqual(r.status, 200, r)
        r = self.jw.request("POST", "/api/cloud/jobs", headers={"idempotency-key": "k-gone"},
                            body=json.dumps(submission()).encode())
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"], "job_not_found")
        self.assertIn(f"{job_id}, which was deleted", r.json()["message"])
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 0)

    def test_bad_idempotency_key_is_400(self):
        for key in ("two words", "x" * 256):
            r = self.jw.request("POST", "/api/cloud/jobs", headers={"idempotency-key": key},
                                body=json.dumps(submission()).encode())
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"], "invalid_header")
            self.assertIn("Idempotency-Key", r.json()["message"])
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 0)

    def test_validation_names_each_bad_field(self):
        r = self.jw.request("POST", "/api/cloud/jobs", body=json.dumps({
            "model": "no-slash", "version": "v1.0", "destination": 5, "input": [1],
            "hardware": "GPU H100", "user_id": "a b", "webhook": "http://x"}).encode())
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertEqual(body["error"], "invalid_field")
        fields = {f["field"]: f["message"] for f in body["fields"]}
        self.assertEqual(sorted(fields), ["destination", "hardware", "input", "model",
                                          "user_id", "version", "webhook"])
        for name in fields:
            self.assertIn(name, body["message"])
            self.assertTrue(fields[name].startswith(name), fields[name])
        self.assertIn("must be a string", fields["destination"])
        self.assertIn("owner/name", fields["model"])
        self.assertIn("not a submission field", fields["webhook"])

        r = self.jw.request("POST", "/api/cloud/jobs", body=b"{}")
        self.assertEqual(r.status, 400, r)
        fields = {f["field"]: f["message"] for f in r.json()["fields"]}
        self.assertEqual(sorted(fields), ["destination", "input", "model", "version"])
        for name, message in fields.items():
            self.assertIn(f"{name} is required", message)

        for bad_path in ("../etc", "acme/..", "acme/.hidden", "acme/a/b", "/x"):
            r = self.jw.request("POST", "/api/cloud/jobs",
                                body=json.dumps(submission(model=bad_path)).encode())
            self.assertEqual(r.status, 400, (bad_path, r))
            self.assertEqual([f["field"] for f in r.json()["fields"]], ["model"], bad_path)

        for raw, reason in ((b"not json", "not valid JSON"), (b"[1, 2]", "JSON object"),
                            (b"", "not valid JSON")):
            r = self.jw.request("POST", "/api/cloud/jobs", body=raw)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"], "invalid_body")
            self.assertIn(reason, r.json()["message"])

        r = self.jw.request("PUT", "/api/cloud/jobs", body=b"{}")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.headers["allow"], "GET, POST")
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 0)
        self.assertEqual(self.creates(), [])

    def test_queue_view_rejects_bad_limit(self):
        for query in ("?limit=0", "?limit=1001", "?limit=x", "?limit=1&limit=2"):
            r = self.jw.get("/api/cloud/queue" + query)
            self.assertEqual(r.status, 400, (query, r))
            self.assertEqual(r.json()["error"], "invalid_parameter")
            self.assertIn("limit", r.json()["message"])
        ids = [self.submit(submission(user_id="u1"))["job"]["job_id"] for _ in range(5)]
        self.wait_started(3)
        q = wait_until(lambda: (lambda v: v if v["pending"] == 2 else None)(
            self.jw.get("/api/cloud/queue?limit=1").json()), what="two jobs in line")
        self.assertEqual([e["job_id"] for e in q["entries"]], ids[3:4])
        self.assertEqual(q["entries"][0]["user_id"], "u1")
        self.assertEqual(q["entries"][0]["model"], "acme/flux-trainer")
        self.assertEqual(q["leader"], q["last_round"]["replica"])
        self.assertTrue(q["is_leader"])


class CancelAndErrorTest(QueueTest):
    max_concurrent = 1

    def test_cancel_pending_skips_provider(self):
        stream = SSEStream(self.jw, "/api/events")
        self.addCleanup(stream.close)
        first, second, third = (self.submit()["job"]["job_id"] for _ in range(3))
        provider_first = self.provider_id(first)
        r = self.jw.request("POST", f"/api/cloud/jobs/{third}/cancel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "cancelled")
        self.assertTrue(r.json()["cancelled"])
        self.assertFalse(r.json()["provider_gone"])
        job = self.jw.job(third)
        self.assertEqual(job["status"], "cancelled")
        self.assertIsNone(job["queue_position"])
        self.assertIsNotNone(job["completed_at"])
        self.assertEqual(self.queue()["pending"], 1)
        self.assertEqual(self.jw.job(second)["queue_position"], 1)
        self.assertEqual(self.fake.requests("/v1/trainings"), [])
        self.assertEqual(self.fake.requests("/v1/predictions"), [])

        cancelled = wait_until(lambda: (lambda e: e if e["data"]["job_id"] == third and
                                        e["data"]["status"] == "cancelled" else None)(
            stream.next_change()), what="the cancel over SSE")
        self.assertEqual(cancelled["data"]["previous_status"], "pending")

        r = self.jw.request("POST", f"/api/cloud/jobs/{third}/cancel")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"], "job_not_active")

        # The first finishes; the second starts; the cancelled one never does.
        self.finish(provider_first)
        provider_second = self.provider_id(second)
        time.sleep(INTERVAL * 4)
        self.assertEqual([t["id"] for t in self.trainings()], [provider_first, provider_second])

        # Cancelling a started job cancels it at Replicate, by its provider id.
        r = self.jw.request("POST", f"/api/cloud/jobs/{second}/cancel")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["job_id"], second)
        self.assertEqual(r.json()["status"], "cancelled")
        paths = [x["path"] for x in self.fake.requests("/v1/trainings", "POST")]
        self.assertEqual(paths, [f"/v1/trainings/{provider_second}/cancel"])
        self.assertEqual(self.queue()["slots_used"], 0)

    def test_provider_422_fails_job(self):
        self.fake.fault(status=422, path_prefix="/v1/models/", method="POST",
                        body={"title": "Invalid destination",
                              "detail": "destination acme/my-lora does not exist",
                              "status": 422})
        refused = self.submit()["job"]["job_id"]
        after = self.submit()["job"]["job_id"]
        job = self.wait_job(refused, lambda j: j["status"] == "failed")
        self.assertIn("destination acme/my-lora does not exist", job["error_message"])
        self.assertIn("422", job["error_message"])
        self.assertIsNone(job["provider_job_id"])
        self.assertIsNotNone(job["completed_at"])
        # Its slot went to the next job at once.
        self.wait_job(after, lambda j: j["status"] == "queued", timeout=5)
        self.assertEqual(len(self.creates()), 2)
        self.assertEqual(len(self.trainings()), 1)
        metrics = self.metrics()
        self.assertEqual(metrics['jobwire_queue_trainings_total{result="refused"}'], 1)
        self.assertEqual(metrics['jobwire_queue_trainings_total{result="started"}'], 1)

    def test_transient_error_keeps_job_in_line(self):
        self.fake.fault(status=503, path_prefix="/v1/models/", method="POST", forever=True)
        job_id = self.submit()["job"]["job_id"]
        later = self.submit()["job"]["job_id"]
        wait_until(lambda: len(self.creates()) >= 3, what="three failed create calls")
        # Between attempts the job is back at the head of the line, and the
        # create call was not retried inside one round (a 5xx may mean done).
        wait_until(lambda: self.jw.job(job_id)["queue_position"] == 1, what="back in line")
        self.assertEqual(self.jw.job(job_id)["status"], "pending")
        self.assertEqual(self.jw.job(later)["queue_position"], 2)
        self.assertEqual(self.trainings(), [])
        rounds = self.creates()
        for first, second in zip(rounds, rounds[1:]):
            self.assertGreater(second["time"] - first["time"], INTERVAL * 0.8)
        last = self.queue()["last_round"]
        self.assertIn("Replicate returned HTTP 503", last["last_error"])
        self.assertIn(job_id, last["last_error"])
        self.assertRegex(last["last_error_at"], r"^\d{4}-\d\d-\d\dT")

        self.fake.clear_faults()
        job = self.wait_job(job_id, lambda j: j["status"] == "queued", timeout=10)
        self.assertIsNotNone(job["provider_job_id"])
        self.assertEqual([r["status"] for r in self.creates()][-1], 201)
        self.assertEqual(len(self.trainings()), 1)
        self.assertEqual(self.jw.job(later)["queue_position"], 1)

    def test_lost_slots_reclaimed(self):
        first = self.submit()["job"]["job_id"]
        second = self.submit()["job"]["job_id"]
        third = self.submit()["job"]["job_id"]
        provider_first = self.provider_id(first)
        # Replicate loses the training: the check after 12 quiet intervals
        # (at least 3 s) fails the job and frees the slot.
        self.fake.control("DELETE", f"/jobs/{provider_first}")
        job = self.wait_job(first, lambda j: j["status"] == "failed", timeout=15)
        self.assertIn(f"Replicate has no training {provider_first}", job["error_message"])
        self.provider_id(second)
        # A job whose record vanished from Redis frees its slot as well.
        self.redis.cmd("DEL", f"jw:job:{second}")
        self.wait_job(third, lambda j: j["status"] == "queued", timeout=5)
        self.assertEqual(self.queue()["slots_used"], 1)


class LinkTest(QueueTest):
    jobwire_env = {}

    def setUp(self):
        super().setUp()
        self.services[0].stop()
        self.services.clear()
        # Processing off: the tests play Replicate's part by hand.
        self.jw = self.start_jobwire({"JOBWIRE_QUEUE_ENABLED": "false"})

    def training(self, provider_id, status, **extra):
        body = {"id": provider_id, "model": "acme/flux-trainer", "version": VERSION,
                "status": status, "input": {}, "logs": "", "error": None, "output": None,
                "created_at": "2026-01-01T00:00:00.000000Z", "started_at": None,
                "completed_at": None, "urls": {"get": f"{self.fake.api_url}/trainings/x"},
                "destination": "acme/my-lora", "metrics": {}}
        body.update(extra)
        return body

    def test_unstarted_job_not_fetched(self):
        job_id = self.submit()["job"]["job_id"]
        r = self.jw.get(f"/api/cloud/jobs/{job_id}/logs")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"job_id": job_id, "logs": None})
        r = self.jw.get("/api/cloud/jobs?sync_active=true")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([j["job_id"] for j in r.json()["jobs"]], [job_id])
        self.assertEqual(self.fake.requests(), [])
        self.assertEqual(self.jw.job(job_id)["queue_position"], 1)

    def test_early_webhook_finds_job(self):
        job_id = self.submit()["job"]["job_id"]
        r = self.jw.webhook(self.training("r8early", "processing"),
                            path=f"/api/webhooks/replicate?job={job_id}")
        self.assertEqual(r.status, 200, r)
        job = self.wait_job(job_id, lambda j: j["status"] == "running")
        self.assertEqual(job["provider_job_id"], "r8early")
        self.assertIsNone(job["queue_position"])
        self.assertIsNone(self.jw.job("r8early"))
        self.assertEqual(self.redis.cmd("GET", "jw:alias:r8early"), job_id)
        # Later events name only the provider id and still reach the job.
        self.jw.webhook(self.training("r8early", "succeeded",
                                      completed_at="2026-01-01T00:10:00.000000Z"))
        self.wait_job(job_id, lambda j: j["status"] == "completed")
        self.assertEqual(self.jw.get("/api/cloud/jobs").json()["total"], 1)
        # Another job cannot take a provider id that is linked already.
        other = self.submit()["job"]["job_id"]
        self.jw.webhook(self.training("r8early", "processing"),
                        path=f"/api/webhooks/replicate?job={other}")
        self.wait_applied()
        self.assertEqual(self.jw.job(other)["status"], "pending")
        self.assertIsNone(self.jw.job(other)["provider_job_id"])

    def test_synced_record_merges(self):
        self.fake.add_jobs(job=self.training("r8synced", "processing"), kind="training")
        r = self.jw.request("POST", "/api/cloud/jobs/sync", timeout=30)
        self.assertEqual(r.json()["synced"], 1, r)
        self.assertEqual(self.jw.job("r8synced")["status"], "running")
        job_id = self.submit()["job"]["job_id"]
        stream = SSEStream(self.jw, "/api/events")
        self.addCleanup(stream.close)
        self.jw.webhook(self.training("r8synced", "processing"),
                        path=f"/api/webhooks/replicate?job={job_id}")
        job = self.wait_job(job_id, lambda j: j["status"] == "running")
        self.assertEqual(job["provider_job_id"], "r8synced")
        self.assertIsNone(self.jw.job("r8synced"))
        listed = self.jw.get("/api/cloud/jobs").json()
        self.assertEqual([j["job_id"] for j in listed["jobs"]], [job_id])
        deleted = wait_until(lambda: (lambda e: e if e["data"]["type"] == "job_deleted" else None)(
            stream.next_change()), what="job_deleted over SSE")
        self.assertEqual(deleted["data"]["job_id"], "r8synced")
        self.assertEqual(deleted["data"]["merged_into"], job_id)


class RaceTest(QueueTest):
    """Two replicas that both run rounds every 0.1 s, sharing one Redis."""

    max_concurrent = 3
    extra_env = {"JOBWIRE_QUEUE_EXCLUSIVE": "false", "JOBWIRE_QUEUE_INTERVAL": "0.1"}

    def test_racing_replicas_keep_limit(self):
        other = self.start_jobwire()
        ids = [self.submit(service=self.jw if i % 2 else other)["job"]["job_id"]
               for i in range(12)]
        peak = 0
        finished = 0
        deadline = time.monotonic() + 60
        while finished < 12 and time.monotonic() < deadline:
            active = self.active_at_fake()
            peak = max(peak, len(active))
            self.assertLessEqual(len(active), 3, [t["id"] for t in active])
            if len(active) == 3 or (active and len(self.trainings()) == 12):
                self.finish(active[0]["id"])
                finished += 1
            time.sleep(0.05)
        self.assertEqual(finished, 12)
        self.assertEqual(peak, 3)
        self.assertEqual(len(self.trainings()), 12)
        self.assertEqual(len(self.creates()), 12)
        for job_id in ids:
            self.wait_job(job_id, lambda j: j["status"] == "completed")
        # Both replicas really ran rounds (which one wins a claim is chance).
        for service in self.services:
            self.assertIn("queue: round done", service.log(), service.name)
        started = sum(s.log().count("queue: training started") for s in self.services)
        self.assertEqual(started, 12)


class TakeoverTest(QueueTest):
    """Two replicas with the default lease: one runs rounds at a time."""

    def test_leader_killed_other_takes_over(self):
        other = self.start_jobwire()
        leader_id = wait_until(lambda: self.queue()["leader"], what="a queue leader")
        leaders = [s for s in self.services if self.queue(s)["is_leader"]]
        self.assertEqual(len(leaders), 1)
        self.assertEqual(self.queue(other)["leader"], leader_id)
        follower = other if leaders[0] is self.jw else self.jw

        leaders[0].stop(signal.SIGKILL)
        killed_at = time.monotonic()
        job_id = self.submit(service=follower)["job"]["job_id"]
        # The lease (at least 2 s) lapses, then the follower's next renewal
        # check takes it and starts the job.
        self.wait_job(job_id, lambda j: j["status"] == "queued", service=follower, timeout=10)
        self.assertLess(time.monotonic() - killed_at, 2.0 + 2 * INTERVAL + 3.0)
        self.assertTrue(self.queue(follower)["is_leader"])
        self.assertNotEqual(self.queue(follower)["leader"], leader_id)
        self.assertEqual(len(self.trainings()), 1)
