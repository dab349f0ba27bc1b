"""The read API: listing with filters and exact totals, one job, errors."""
import json

from harness import ServiceTest


def training(job_id, status, created_at, logs=None):
    body = {"id": job_id, "status": status, "created_at": created_at,
            "destination": "example-org/model", "model": "acme/trainer", "version": "v1"}
    if status != "starting":
        body["started_at"] = created_at
    if status in ("succeeded", "failed", "canceled"):
        body["completed_at"] = created_at.replace("T10", "T11")
    if logs is not None:
        body["logs"] = logs
    return body


STATUSES = ["starting", "processing", "succeeded", "failed", "canceled"]


class JobsApiTest(ServiceTest):

    def setUp(self):
        super().setUp()
        # 15 jobs, three of each status, created one minute apart.
        self.expected = []
        for i in range(15):
            status = STATUSES[i % 5]
            job_id = f"job{i:02d}"
            created = f"2025-07-01T10:{i:02d}:00.000Z"
            self.assertEqual(self.jw.webhook(training(job_id, status, created)).status, 200)
            self.expected.append((job_id, status))
        self.wait_applied()

    def list(self, query=""):
        r = self.jw.get("/api/cloud/jobs" + query)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_newest_first_with_total(self):
        body = self.list()
        ids = [j["job_id"] for j in body["jobs"]]
        self.assertEqual(ids, [f"job{i:02d}" for i in range(14, -1, -1)])
        self.assertEqual(body["total"], 15)

    def test_limit_and_offset(self):
        body = self.list("?limit=4&offset=2")
        self.assertEqual([j["job_id"] for j in body["jobs"]], ["job12", "job11", "job10", "job09"])
        self.assertEqual(body["total"], 15)
        body = self.list("?limit=4&offset=14")
        self.assertEqual([j["job_id"] for j in body["jobs"]], ["job00"])
        body = self.list("?offset=100")
        self.assertEqual(body["jobs"], [])
        self.assertEqual(body["total"], 15)

    def test_status_filter(self):
        body = self.list("?status=running")
        self.assertEqual([j["job_id"] for j in body["jobs"]], ["job11", "job06", "job01"])
        self.assertEqual(body["total"], 3)
        body = self.list("?status=completed,failed&limit=2")
        self.assertEqual([j["job_id"] for j in body["jobs"]], ["job13", "job12"])
        self.assertEqual(body["total"], 6)
        body = self.list("?status=pending")
        self.assertEqual(body, {"jobs": [], "total": 0, "limit": 50, "offset": 0})

    def test_provider_filter(self):
        self.assertEqual(self.list("?provider=replicate")["total"], 15)
        self.assertEqual(self.list("?provider=replicate&status=cancelled")["total"], 3)

    def test_status_index_follows_changes(self):
        self.jw.webhook(training("job00", "processing", "2025-07-01T10:00:00.000Z"))
        self.wait_applied()
        self.assertEqual(self.list("?status=queued")["total"], 2)
        self.assertEqual(self.list("?status=running")["total"], 4)
        self.assertEqual(self.redis.cmd("ZCARD", "jw:idx:active"), 6)

    def test_bad_parameters(self):
        cases = {
            "?limit=0": "limit", "?limit=501": "limit", "?limit=abc": "limit",
            "?limit=-1": "limit", "?limit=": "limit", "?limit=5&limit=6": "limit",
            "?offset=-3": "offset", "?offset=1.5": "offset",
            "?status=done": "status", "?status=running,": "status",
            "?provider=modal": "provider", "?sync_active=maybe": "sync_active",
        }
        for query, name in cases.items():
            with self.subTest(query=query):
                r = self.jw.get("/api/cloud/jobs" + query)
                self.assertEqual(r.status, 400, r)
                body = r.json()
                self.assertEqual(body["error"], "invalid_parameter")
                self.assertTrue(body["message"].startswith(name), body)

    def test_one_job_and_not_found(self):
        r = self.jw.get("/api/cloud/jobs/job06")
        self.assertEqual(r.status, 200)
        job = r.json()["job"]
        self.assertEqual(job["job_id"], "job06")
        self.assertEqual(job["status"], "running")
        self.assertEqual(job["is_active"], True)
        self.assertGreater(job["duration_seconds"], 0)
        for missing in ("/api/cloud/jobs/nope", "/api/cloud/jobs/a%20b", "/api/cloud/jobs/" + "x" * 200):
            r = self.jw.get(missing)
            self.assertEqual(r.status, 404, missing)
            self.assertEqual(r.json()["error"], "job_not_found")

    def test_inline_progress(self):
        logs = "loading data\nwarmup\nepoch 1/4 step 150/500 loss 0.2\n"
        self.jw.webhook(training("prog1", "processing", "2025-07-01T12:00:00.000Z", logs))
        self.wait_applied()
        r = self.jw.get("/api/cloud/jobs/prog1/inline-progress")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["job_id"], "prog1")
        self.assertEqual(body["stage"], "Training")
        self.assertEqual(body["progress"], 30.0)
        self.assertEqual(body["last_log"], "epoch 1/4 step 150/500 loss 0.2")
        done = self.jw.get("/api/cloud/jobs/job02/inline-progress").json()
        self.assertIsNone(done["stage"])
        self.assertIsNone(done["progress"])

    def test_head_answers_like_get_without_body(self):
        get = self.jw.get("/api/cloud/jobs")
        head = self.jw.request("HEAD", "/api/cloud/jobs")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.headers["content-length"], get.headers["content-length"])
        self.assertEqual(head.headers["content-type"], "application/json")
        r = self.jw.request("HEAD", "/api/cloud/jobs/no-such-job")
        self.assertEqual((r.status, r.body), (404, b""))
        # The event stream takes GET only.
        r = self.jw.request("HEAD", "/api/events")
        self.assertEqual((r.status, r.headers["allow"]), (405, "GET"))

    def test_unknown_route_is_json_404(self):
        r = self.jw.get("/api/nothing")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"], "not_found")
