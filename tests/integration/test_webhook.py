"""Webhook ingest end to end: signed deliveries in, job records out."""
import itertools
import json
import socket
import time

from harness import SECRET, ServiceTest, fixture, fixture_json, sign

TRAINING_ID = "t4vq8m2kxhrj60cqz1fb7wn3ca"
LIFE = ["training.starting.json", "training.processing.json", "training.succeeded.json"]


class WebhookLifecycleTest(ServiceTest):

    def test_training_whole_life(self):
        expected_status = ["queued", "running", "completed"]
        for name, status in zip(LIFE, expected_status):
            r = self.jw.webhook(fixture(name))
            self.assertEqual(r.status, 200, r)
            body = r.json()
            self.assertEqual(body["duplicate"], False)
            self.assertEqual(body["job_id"], TRAINING_ID)
            self.assertEqual(body["status"], status)
            self.assertRegex(body["event_id"], r"^\d+-\d+$")
            self.wait_job(TRAINING_ID, lambda j, s=status: j["status"] == s)

        job = self.jw.job(TRAINING_ID)
        source = fixture_json("training.succeeded.json")
        self.assertEqual(job["provider"], "replicate")
        self.assertEqual(job["kind"], "training")
        self.assertEqual(job["provider_status"], "succeeded")
        self.assertEqual(job["created_at"], "2025-06-10T09:14:02.118304Z")
        self.assertEqual(job["started_at"], "2025-06-10T09:14:09.551207Z")
        self.assertEqual(job["completed_at"], "2025-06-10T09:36:47.902561Z")
        self.assertEqual(job["model"], source["model"])
        self.assertEqual(job["version"], source["version"])
        self.assertEqual(job["output"], source["output"])
        self.assertIsNone(job["error_message"])
        self.assertAlmostEqual(job["predict_time"], 1358.351354, places=5)
        self.assertAlmostEqual(job["duration_seconds"], 1358.351, places=3)
        self.assertEqual(job["revision"], 3)
        self.assertEqual(job["is_terminal"], True)
        self.assertEqual(job["is_active"], False)
        self.assertEqual(job["last_log"], "Uploading weights...")

        changes = self.redis.cmd("XRANGE", "jw:changes", "-", "+")
        self.assertEqual(len(changes), 3)
        statuses = [json.loads(dict(zip(c[1][0::2], c[1][1::2]))["data"])["status"]
                    for c in changes]
        self.assertEqual(statuses, expected_status)
        self.assertEqual(self.redis.cmd("ZCARD", "jw:idx:active"), 0)
        self.assertEqual(self.redis.cmd("ZSCORE", "jw:idx:status:completed", TRAINING_ID),
                         str(1749546842118))

    def test_prediction_failed_keeps_error(self):
        r = self.jw.webhook(fixture("prediction.failed.json"))
        self.assertEqual(r.status, 200, r)
        job = self.wait_job("p9c3xk7mqdrm80cqz5tw2hb6ye")
        self.assertEqual(job["status"], "failed")
        self.assertEqual(job["kind"], "prediction")
        self.assertEqual(job["error_message"],
                         "Input validation failed: width must be a multiple of 64 (got 1000)")
        # Nine fractional digits are cut to six.
        self.assertEqual(job["started_at"], "2025-06-10T10:02:13.551207Z")
        self.assertEqual(job["created_at"], "2025-06-10T10:02:11.407000Z")
        self.assertIsNone(job["output"])

    def test_shuffled_deliveries_end_the_same(self):
        finals = []
        for order in itertools.permutations(LIFE):
            self.redis.cmd("FLUSHALL")
            for name in order:
                self.assertEqual(self.jw.webhook(fixture(name)).status, 200)
            self.wait_applied()
            job = self.jw.job(TRAINING_ID)
            self.assertEqual(job["status"], "completed", order)
            self.assertEqual(job["started_at"], "2025-06-10T09:14:09.551207Z", order)
            self.assertEqual(job["completed_at"], "2025-06-10T09:36:47.902561Z", order)
            self.assertEqual(job["last_log"], "Uploading weights...", order)
            finals.append({k: v for k, v in job.items()
                           if k not in ("updated_at", "revision", "duration_seconds")})
        for final in finals[1:]:
            self.assertEqual(final, finals[0])

    def test_late_processing_after_succeeded_changes_nothing(self):
        for name in LIFE:
            self.jw.webhook(fixture(name))
        self.wait_applied()
        before = self.redis.hgetall(f"jw:job:{TRAINING_ID}")
        changes_before = self.redis.cmd("XLEN", "jw:changes")

        r = self.jw.webhook(fixture("training.processing.json"))
        self.assertEqual(r.status, 200, r)
        self.wait_applied()

        self.assertEqual(self.redis.hgetall(f"jw:job:{TRAINING_ID}"), before)
        self.assertEqual(self.redis.cmd("XLEN", "jw:changes"), changes_before)

    def test_terminal_status_never_changes(self):
        self.jw.webhook(fixture("training.canceled.json"))
        self.wait_applied()
        self.jw.webhook(fixture("training.succeeded.json"))
        self.wait_applied()
        job = self.jw.job(TRAINING_ID)
        self.assertEqual(job["status"], "cancelled")
        self.assertEqual(job["revision"], 1)

    def test_duplicate_delivery_changes_nothing(self):
        body = fixture("training.processing.json")
        first = self.jw.webhook(body, msg_id="msg_dup_1")
        self.assertEqual(first.status, 200)
        self.wait_applied()
        events = self.redis.cmd("XLEN", "jw:events")
        job = self.redis.hgetall(f"jw:job:{TRAINING_ID}")

        again = self.jw.webhook(body, msg_id="msg_dup_1")
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["duplicate"], True)
        self.assertEqual(again.json()["event_id"], first.json()["event_id"])
        self.assertEqual(self.redis.cmd("XLEN", "jw:events"), events)
        self.assertEqual(self.redis.hgetall(f"jw:job:{TRAINING_ID}"), job)

    def test_absurd_predict_time_is_dropped_whole(self):
        body = {"id": "huge1", "status": "succeeded", "created_at": "2025-07-01T10:00:00Z",
                "completed_at": "2025-07-01T11:00:00Z", "metrics": {"predict_time": 1e308}}
        self.assertEqual(self.jw.webhook(json.dumps(body).encode()).status, 200)
        job = self.wait_job("huge1")
        self.assertEqual(job["status"], "completed")
        self.assertIsNone(job["predict_time"])
        self.assertIsNone(job["cost_usd"])
        self.assertEqual(self.redis.cmd("XLEN", "jw:changes"), 1)
        self.assertEqual(self.redis.cmd("XPENDING", "jw:events", "appliers")[0], 0)

    def test_duplicate_reports_no_status(self):
        self.jw.webhook(fixture("prediction.processing.json"), msg_id="dup-1")
        again = self.jw.webhook(fixture("prediction.failed.json"), msg_id="dup-1")
        self.assertEqual(again.json()["duplicate"], True)
        self.assertIsNone(again.json()["status"])
        self.wait_applied()
        self.assertEqual(self.jw.job("p9c3xk7mqdrm80cqz5tw2hb6ye")["status"], "running")

    def test_trailing_slash_is_served(self):
        r = self.jw.webhook(fixture("training.starting.json"), path="/api/webhooks/replicate/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["job_id"], TRAINING_ID)


class WebhookRejectionTest(ServiceTest):
    """Every bad delivery gets a precise 4xx and leaves Redis untouched."""

    jobwire_env = {"JOBWIRE_WEBHOOK_MAX_BODY": "65536"}

    def assert_rejected(self, response, status, code, message_part=None):
        self.assertEqual(response.status, status, response)
        self.assertEqual(response.headers.get("content-type"), "application/json")
        body = response.json()
        self.assertEqual(body["error"], code, body)
        self.assertTrue(body["message"], body)
        if message_part:
            self.assertIn(message_part, body["message"])
        self.assertEqual(self.redis.cmd("XLEN", "jw:events"), 0)
        self.assertEqual(self.redis.cmd("KEYS", "jw:delivery:*"), [])
        self.assertEqual(self.redis.cmd("KEYS", "jw:job:*"), [])

    def test_missing_headers(self):
        body = fixture("training.starting.json")
        for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            r = self.jw.webhook(body, headers={header: None})
            self.assert_rejected(r, 400, "missing_header", header)

    def test_bad_signature(self):
        body = fixture("training.starting.json")
        r = self.jw.webhook(body, secret="whsec_" + "A" * 32)
        self.assert_rejected(r, 401, "invalid_signature")
        r = self.jw.webhook(body, headers={"webhook-signature": "v1,not-base64!"})
        self.assert_rejected(r, 401, "invalid_signature")

    def test_body_changed_after_signing(self):
        body = fixture("training.starting.json")
        ts = int(time.time())
        headers = {"webhook-id": "msg_x", "webhook-timestamp": str(ts),
                   "webhook-signature": sign(SECRET, "msg_x", ts, body)}
        r = self.jw.request("POST", "/api/webhooks/replicate", body=body.replace(b"starting", b"succeeded"),
                            headers=headers)
        self.assert_rejected(r, 401, "invalid_signature")

    def test_stale_and_future_timestamps(self):
        body = fixture("training.starting.json")
        r = self.jw.webhook(body, timestamp=int(time.time()) - 400)
        self.assert_rejected(r, 401, "stale_timestamp")
        r = self.jw.webhook(body, timestamp=int(time.time()) + 400)
        self.assert_rejected(r, 401, "stale_timestamp")

    def test_malformed_timestamp(self):
        r = self.jw.webhook(fixture("training.starting.json"),
                            headers={"webhook-timestamp": "12ab"})
        self.assert_rejected(r, 400, "invalid_header")
        self.assertEqual(r.json()["message"], "webhook-timestamp must be Unix seconds, 1-19 digits")
        r = self.jw.webhook(fixture("training.starting.json"),
                            headers={"webhook-timestamp": "9223372036854775808"})
        self.assertEqual(r.json()["message"], "webhook-timestamp must be Unix seconds, 1-19 digits")

    def test_malformed_signature_header_is_named(self):
        r = self.jw.webhook(fixture("training.starting.json"),
                            headers={"webhook-signature": "v1,AAAA " * 700})
        self.assert_rejected(r, 400, "invalid_header")
        self.assertIn("webhook-signature must be", r.json()["message"])

    def test_malformed_bodies(self):
        cases = [
            (b"not json", "invalid_body"),
            (b"[1, 2]", "invalid_body"),
            (b'{"id": "abc"}', "invalid_body"),
            (b'{"id": "abc", "status": "exploded"}', "invalid_body"),
            (b'{"status": "starting"}', "invalid_body"),
            (b'{"id": "../../etc", "status": "starting"}', "invalid_body"),
            (b'{"id": "abc", "status": "starting", "created_at": "yesterday"}', "invalid_body"),
            (b"", "invalid_body"),
        ]
        for body, code in cases:
            with self.subTest(body=body):
                self.assert_rejected(self.jw.webhook(body), 400, code)

    def test_oversize_body_with_content_length(self):
        body = b'{"id": "big", "status": "starting", "logs": "' + b"x" * 70000 + b'"}'
        r = self.jw.webhook(body)
        self.assert_rejected(r, 413, "payload_too_large")

    def test_oversize_body_chunked(self):
        # Raw socket: http.client would send a Content-Length.
        with socket.create_connection(("127.0.0.1", self.jw.port), timeout=10) as s:
            head = (b"POST /api/webhooks/replicate HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\nwebhook-id: a\r\nwebhook-timestamp: 1\r\n"
                    b"webhook-signature: v1,x\r\n\r\n")
            s.sendall(head)
            chunk = b"x" * 8192
            try:
                for _ in range(20):
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass  # the server may close once it answered 413
            reply = s.recv(65536)
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:100])
        self.assertIn(b'"error":"payload_too_large"', reply)
        self.assertEqual(self.redis.cmd("XLEN", "jw:events"), 0)

    def test_get_is_not_allowed(self):
        r = self.jw.get("/api/webhooks/replicate")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json()["error"], "method_not_allowed")
        self.assertEqual(r.headers.get("allow"), "POST")


class WebhookNotConfiguredTest(ServiceTest):
    jobwire_env = {"REPLICATE_WEBHOOK_SECRET": None}

    def test_no_secret_gives_503(self):
        r = self.jw.webhook(fixture("training.starting.json"))
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"], "webhook_not_configured")
        self.assertEqual(self.redis.cmd("XLEN", "jw:events"), 0)
