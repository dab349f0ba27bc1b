"""GET /metrics: Prometheus text that promtool accepts, with values that
follow what the service did: webhooks by result, events applied, changes
sent to streams, open streams, Redis reconnects and the apply lag sampled
from Redis. Also checks that the Grafana dashboard only uses served metrics."""
import json
import os
import re
import shutil
import subprocess
import unittest

from harness import ROOT, SSEStream, ServiceTest, fixture, wait_until

LIFE = ["training.starting.json", "training.processing.json", "training.succeeded.json"]


def parse(text):
    """Returns {name or name{labels}: value} for the sample lines."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


class PrometheusMetricsTest(ServiceTest):
    # Heartbeats are what reveal a closed stream.
    jobwire_env = {"JOBWIRE_SSE_HEARTBEAT": "1"}

    def scrape(self):
        r = self.jw.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"))
        return r.body.decode()

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian prometheus) not installed")
    def test_promtool_accepts_the_output(self):
        self.assertEqual(self.jw.webhook(fixture("training.starting.json")).status, 200)
        text = wait_until(lambda: (lambda t: t if "jobwire_apply_lag_events " in t else None)(
            self.scrape()), what="lag sample")
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode() + text)
        for name in ("jobwire_webhooks_total", "jobwire_events_applied_total",
                     "jobwire_sse_changes_sent_total", "jobwire_sse_clients",
                     "jobwire_redis_reconnects_total", "jobwire_apply_lag_events"):
            self.assertIn(f"# TYPE {name} ", text)

    def test_values_follow_the_service(self):
        stream = SSEStream(self.jw)
        try:
            self.assertEqual(stream.next_event()["event"], "connected")
            first = fixture(LIFE[0])
            self.assertEqual(self.jw.webhook(first, msg_id="msg_dup").status, 200)
            self.assertEqual(self.jw.webhook(first, msg_id="msg_dup").status, 200)
            for name in LIFE[1:]:
                self.assertEqual(self.jw.webhook(fixture(name)).status, 200)
            self.assertEqual(self.jw.webhook(first, secret="whsec_" + "A" * 32).status, 401)
            for _ in LIFE:
                stream.next_change()
            self.wait_applied()
            m = wait_until(lambda: (lambda m: m if m.get("jobwire_apply_lag_events") == 0
                                    and m.get("jobwire_events_stream_length", -1) >= 0
                                    else None)(parse(self.scrape())), what="lag sample")
            self.assertEqual(m['jobwire_webhooks_total{result="accepted"}'], 3)
            self.assertEqual(m['jobwire_webhooks_total{result="duplicate"}'], 1)
            self.assertEqual(m['jobwire_webhooks_total{result="rejected"}'], 1)
            self.assertEqual(m['jobwire_webhooks_total{result="unavailable"}'], 0)
            self.assertEqual(m["jobwire_events_applied_total"], 3)
            self.assertEqual(m["jobwire_events_changed_total"], 3)
            self.assertEqual(m["jobwire_sse_clients"], 1)
            self.assertEqual(m["jobwire_sse_changes_sent_total"], 3)
            self.assertEqual(m["jobwire_redis_up"], 1)
            self.assertEqual(m["jobwire_shutting_down"], 0)
            self.assertEqual(m["jobwire_http_requests_in_flight"], 0)
            self.assertLessEqual(m["jobwire_events_stats_age_seconds"], 3)
        finally:
            stream.close()
        wait_until(lambda: parse(self.scrape())["jobwire_sse_clients"] == 0, what="stream gone")

    def group_exists(self):
        # XINFO fails with "no such key" until the consumer created the stream.
        try:
            groups = self.redis.cmd("XINFO", "GROUPS", "jw:events") or []
        except RuntimeError:
            return False
        return any(g[1] == "appliers" for g in groups)

    def test_lag_counts_pending_events_and_reconnects_count(self):
        wait_until(self.group_exists, what="consumer group")
        # Another consumer takes three entries and never applies them (the
        # claim timeout, 30 s, outlasts the test). One script, so the live
        # consumer's blocked read cannot take them first.
        taken = self.redis.cmd("EVAL", """
            for i = 1, 3 do
                redis.call('XADD', KEYS[1], '*', 'job_id', 'lag' .. i, 'status', 'running')
            end
            local r = redis.call('XREADGROUP', 'GROUP', 'appliers', 'ghost', 'COUNT', 3,
                                 'STREAMS', KEYS[1], '>')
            return #r[1][2]""", "1", "jw:events")
        self.assertEqual(taken, 3)
        m = wait_until(lambda: (lambda m: m if m.get("jobwire_events_pending") == 3 else None)(
            parse(self.scrape())), what="3 pending in the sample")
        self.assertEqual(m["jobwire_apply_lag_events"], 3)
        self.assertEqual(m["jobwire_events_undelivered"], 0)
        self.assertGreaterEqual(m["jobwire_events_stream_length"], 3)

        self.redis.stop()
        wait_until(lambda: parse(self.scrape())["jobwire_redis_up"] == 0, what="redis down")
        self.redis.start()
        m = wait_until(lambda: (lambda m: m if m["jobwire_redis_up"] == 1 else None)(
            parse(self.scrape())), what="redis back")
        # Each of the three connections (commands, consumer, hub) reconnected once.
        self.assertEqual(m["jobwire_redis_reconnects_total"], 3)

    def test_grafana_dashboard_uses_served_metrics(self):
        path = os.path.join(ROOT, "deploy", "grafana", "jobwire-dashboard.json")
        with open(path) as f:
            dashboard = json.load(f)
        wait_until(lambda: "jobwire_apply_lag_events " in self.scrape(), what="lag sample")
        served = set(re.findall(r"^# TYPE (\w+) ", self.scrape(), re.M))
        used = set()
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                used.update(re.findall(r"\b(jobwire_\w+)\{", target["expr"]))
        self.assertGreaterEqual(len(used), 10)
        self.assertEqual(used - served, set(), "dashboard metrics that /metrics lacks")
