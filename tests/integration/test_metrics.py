"""GET /api/cloud/metrics against a known set of jobs delivered as signed
webhooks: totals, counts per status, average duration, cost per day,
the period, cost corrections, and parameter errors. The values come from
the daily totals that apply.lua keeps, checked here key by key too."""
import datetime

from harness import ServiceTest, fixture_json

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def job_body(job_id, status, created, duration=None, predict_time=None, hardware=None):
    body = fixture_json("training.succeeded.json")
    body.update({"id": job_id, "status": status, "created_at": iso(created), "logs": "",
                 "started_at": None, "completed_at": None, "metrics": {}, "output": None,
                 "error": "boom" if status == "failed" else None})
    if status != "starting":
        body["started_at"] = iso(created + datetime.timedelta(seconds=1))
    if duration is not None:
        body["completed_at"] = iso(created + datetime.timedelta(seconds=1 + duration))
    if predict_time is not None:
        body["metrics"] = {"predict_time": predict_time, "total_time": predict_time + 1}
    if hardware is not None:
        body["hardware"] = hardware
    return body


class MetricsTest(ServiceTest):

    def send(self, *args, **kwargs):
        r = self.jw.webhook(job_body(*args, **kwargs))
        self.assertEqual(r.status, 200, r)

    def metrics(self, query=""):
        r = self.jw.get("/api/cloud/metrics" + query)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def load_known_jobs(self):
        old = NOW - datetime.timedelta(days=40)
        self.send("jobA", "starting", NOW)
        self.send("jobA", "succeeded", NOW, 120, 100.0, "gpu-t4")        # 0.0225
        self.send("jobB", "failed", NOW, 30, 10.0)                         # 0.01525, estimated
        self.send("jobC", "canceled", NOW, 60, 0.0, "gpu-h100")            # 0
        self.send("jobD", "processing", NOW)                               # running
        self.send("jobE", "succeeded", old, 1000, 1000.0, "gpu-a100-large")  # 1.4, 40 days ago
        self.wait_applied()

    def test_values_for_a_known_set_of_jobs(self):
        self.load_known_jobs()
        m = self.metrics()
        self.assertEqual(m["period_days"], 30)
        self.assertEqual(m["job_count"], 4)
        self.assertAlmostEqual(m["total_cost"], 0.03775, places=9)
        self.assertAlmostEqual(m["avg_job_duration_seconds"], (120 + 30 + 60) / 3, places=3)
        self.assertEqual(m["jobs_by_status"], {"pending": 0, "uploading": 0, "queued": 0,
                                               "running": 1, "completed": 1, "failed": 1,
                                               "cancelled": 1})
        self.assertEqual(m["cost_by_day"], [{"date": NOW.strftime("%Y-%m-%d"), "total_jobs": 4,
                                             "completed": 1, "failed": 1, "cancelled": 1,
                                             "total_cost_usd": 0.03775}])

        long = self.metrics("?days=60")
        self.assertEqual(long["period_days"], 60)
        self.assertEqual(long["job_count"], 5)
        self.assertAlmostEqual(long["total_cost"], 1.43775, places=9)
        self.assertEqual(long["jobs_by_status"]["completed"], 2)
        self.assertAlmostEqual(long["avg_job_duration_seconds"], (120 + 30 + 60 + 1000) / 4,
                               places=3)
        self.assertEqual([d["date"] for d in long["cost_by_day"]],
                         [(NOW - datetime.timedelta(days=40)).strftime("%Y-%m-%d"),
                          NOW.strftime("%Y-%m-%d")])
        self.assertAlmostEqual(long["cost_by_day"][0]["total_cost_usd"], 1.4, places=9)

        today = self.metrics("?days=1")
        self.assertEqual(today["period_days"], 1)
        self.assertEqual(today["job_count"], 4)

        # The job records carry the cost and mark which were estimated.
        self.assertAlmostEqual(self.jw.job("jobA")["cost_usd"], 0.0225, places=9)
        self.assertAlmostEqual(self.jw.job("jobB")["cost_usd"], 0.01525, places=9)
        self.assertEqual(self.redis.hgetall("jw:job:jobA")["cost_estimated"], "false")
        self.assertEqual(self.redis.hgetall("jw:job:jobB")["cost_estimated"], "true")
        daily = self.redis.hgetall("jw:daily:" + NOW.strftime("%Y-%m-%d"))
        self.assertEqual(daily["total_jobs"], "4")
        self.assertEqual(daily["duration_count"], "3")
        self.assertGreater(self.redis.cmd("PTTL", "jw:daily:" + NOW.strftime("%Y-%m-%d")),
                           365 * 86400 * 1000)

    def test_repeats_count_once_and_cost_corrections_replace(self):
        self.load_known_jobs()
        before = self.metrics()
        # The same outcome again, from another delivery: nothing moves.
        self.send("jobB", "failed", NOW, 30, 10.0)
        self.send("jobA", "starting", NOW)
        self.wait_applied()
        self.assertEqual(self.metrics(), before)

        # Replicate corrected jobA's metrics: the total follows by the difference.
        self.send("jobA", "succeeded", NOW, 120, 200.0, "gpu-t4")  # 0.045
        self.wait_applied()
        after = self.metrics()
        self.assertAlmostEqual(after["total_cost"], 0.03775 - 0.0225 + 0.045, places=9)
        self.assertEqual(after["job_count"], 4)
        self.assertEqual(after["jobs_by_status"]["completed"], 1)

        # A job that finishes moves from running to its outcome.
        self.send("jobD", "succeeded", NOW, 50, 50.0, "cpu")  # 0.005
        self.wait_applied()
        done = self.metrics()
        self.assertEqual(done["jobs_by_status"]["running"], 0)
        self.assertEqual(done["jobs_by_status"]["completed"], 2)
        self.assertAlmostEqual(done["total_cost"], after["total_cost"] + 0.005, places=9)
        self.assertEqual(done["cost_by_day"][0]["completed"], 2)

    def test_empty_store(self):
        m = self.metrics()
        self.assertEqual(m["job_count"], 0)
        self.assertEqual(m["total_cost"], 0)
        self.assertEqual(m["avg_job_duration_seconds"], 0)
        self.assertEqual(m["cost_by_day"], [])
        self.assertEqual(sum(m["jobs_by_status"].values()), 0)

    def test_days_must_be_1_to_365(self):
        for query in ("?days=0", "?days=366", "?days=abc", "?days=", "?days=-1",
                      "?days=1&days=2", "?days=1000000"):
            r = self.jw.get("/api/cloud/metrics" + query)
            self.assertEqual(r.status, 400, query)
            self.assertEqual(r.json()["error"], "invalid_parameter")
            self.assertIn("days must be", r.json()["message"])
        self.assertEqual(self.metrics("?days=365")["period_days"], 365)
        r = self.jw.request("POST", "/api/cloud/metrics")
        self.assertEqual(r.status, 405)
