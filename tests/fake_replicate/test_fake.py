"""Tests of the fake Replicate server itself.

Run from this folder with `python3 -m unittest`. Every test starts its own
fake on 127.0.0.1 with a port the kernel picks; webhook tests start a small
http.server receiver on loopback too.
"""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_replicate  # noqa: E402
from fake_replicate import FakeReplicate  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TOKEN = "r8_fake_test_token"
OTHER_TOKEN = "r8_fake_other_token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def fixture_json(name):
    with open(os.path.join(FIXTURES, "replicate", name), encoding="utf-8") as f:
        return json.load(f)


def wait_until(predicate, timeout=10.0, description="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {description}")


def verify_signature(secret, headers, body):
    """Check a Standard Webhooks signature independently of the fake's own code."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = [entry.split(",", 1)[1] for entry in headers["webhook-signature"].split()
                  if entry.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in signatures)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on loopback that records deliveries.

    `statuses` lists the status codes of the first responses; later ones get 200.
    """

    def __init__(self, statuses=()):
        self.deliveries = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        receiver = self

        class ReceiverHandler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.deliveries.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = json.dumps({"received": len(receiver.deliveries)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ReceiverHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/replicate?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self):
        with self.lock:
            return [json.loads(body) for _, body in self.deliveries]


class FakeTestCase(unittest.TestCase):
    settings = {}

    def setUp(self):
        options = {"phase_seconds": {"starting": 0.2, "processing": 0.6},
                   "webhook_retry_initial": 0.1, "webhook_retry_seconds": 3.0}
        options.update(self.settings)
        self.fake = FakeReplicate(tokens=[TOKEN], secret=SECRET, **options).start()
        self.addCleanup(self.fake.stop)

    def request(self, method, target, body=None, token=TOKEN, headers=None, timeout=10):
        """Send one request to a path on the fake or an absolute URL; return a Response."""
        parts = urllib.parse.urlsplit(target)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or self.fake.port
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = dict(headers or {})
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def control(self, method, path, body=None):
        response = self.request(method, "/_control/" + path, body=body, token=None)
        self.assertLess(response.status, 300, response.body)
        return response.json()

    def add_trainings(self, **request):
        request.setdefault("kind", "training")
        return self.control("POST", "jobs", request)["ids"]

    def receiver(self, statuses=()):
        receiver = Receiver(statuses)
        self.addCleanup(receiver.stop)
        return receiver


class PaginationTest(FakeTestCase):
    def test_250_jobs_span_three_pages(self):
        ids = self.add_trainings(count=250, spacing_seconds=1,
                                 status=["succeeded", "failed", "processing", "starting"])
        url = "/v1/trainings"
        pages = []
        while url:
            response = self.request("GET", url)
            self.assertEqual(response.status, 200, response.body)
            page = response.json()
            pages.append(page)
            url = page["next"]
        self.assertEqual([len(p["results"]) for p in pages], [100, 100, 50])
        seen = [item["id"] for page in pages for item in page["results"]]
        self.assertEqual(seen, list(reversed(ids)))
        self.assertEqual(len(set(seen)), 250)
        created = [fake_replicate.parse_timestamp_ns(item["created_at"])
                   for page in pages for item in page["results"]]
        self.assertEqual(created, sorted(created, reverse=True))
        self.assertIsNone(pages[0]["previous"])
        self.assertIsNotNone(pages[1]["previous"])

    def test_next_is_absolute_url_from_host(self):
        self.add_trainings(count=120, spacing_seconds=1)
        host = f"localhost:{self.fake.port}"
        page = self.request("GET", "/v1/trainings", headers={"Host": host}).json()
        self.assertTrue(page["next"].startswith(f"http://{host}/v1/trainings?cursor="),
                        page["next"])

    def test_previous_returns_prior_page(self):
        self.add_trainings(count=230, spacing_seconds=1)
        first = self.request("GET", "/v1/trainings").json()
        second = self.request("GET", first["next"]).json()
        back = self.request("GET", second["previous"]).json()
        self.assertEqual([r["id"] for r in back["results"]],
                         [r["id"] for r in first["results"]])
        self.assertIsNone(back["previous"])
        self.assertEqual(back["next"], first["next"])

    def test_list_items_carry_no_logs(self):
        self.add_trainings(count=3, status="succeeded", webhook=self.receiver().url)
        page = self.request("GET", "/v1/trainings").json()
        for item in page["results"]:
            self.assertNotIn("logs", item)
            self.assertNotIn("webhook", item)
            self.assertIn("metrics", item)
        full = self.request("GET", f"/v1/trainings/{page['results'][0]['id']}").json()
        self.assertIn("epoch 3/3 step 300/300", full["logs"])

    def test_trainings_and_predictions_are_separate(self):
        self.add_trainings(count=2)
        self.control("POST", "jobs", {"count": 5, "kind": "prediction"})
        self.assertEqual(len(self.request("GET", "/v1/trainings").json()["results"]), 2)
        predictions = self.request("GET", "/v1/predictions").json()["results"]
        self.assertEqual(len(predictions), 5)
        self.assertFalse(predictions[0]["data_removed"])

    def test_invalid_cursor_is_400(self):
        response = self.request("GET", "/v1/trainings?cursor=not-a-cursor")
        self.assertEqual(response.status, 400)
        self.assertEqual(response.json()["status"], 400)

    def test_trailing_empty_page_quirk(self):
        self.control("POST", "settings", {"trailing_empty_page": True})
        self.add_trainings(count=200, spacing_seconds=1)
        second = self.request("GET", self.request("GET", "/v1/trainings").json()["next"]).json()
        self.assertEqual(len(second["results"]), 100)
        last = self.request("GET", second["next"]).json()
        self.assertEqual(last["results"], [])
        self.assertIsNone(last["next"])
        self.assertIsNotNone(last["previous"])

    def test_empty_list(self):
        page = self.request("GET", "/v1/predictions").json()
        self.assertEqual(page, {"next": None, "previous": None, "results": []})


class AuthTest(FakeTestCase):
    def test_missing_token_gets_fixture_401(self):
        response = self.request("GET", "/v1/account", token=None)
        self.assertEqual(response.status, 401)
        self.assertEqual(response.json(), fixture_json("api.error.401.json"))
        self.assertIn("problem+json", response.headers["Content-Type"])

    def test_wrong_token_is_401(self):
        self.assertEqual(self.request("GET", "/v1/trainings", token="r8_wrong").status, 401)

    def test_token_scheme_is_not_bearer(self):
        response = self.request("GET", "/v1/account", token=None,
                                headers={"Authorization": f"Token {TOKEN}"})
        self.assertEqual(response.status, 401)

    def test_valid_token_reads_account(self):
        response = self.request("GET", "/v1/account")
        self.assertEqual(response.status, 200)
        account = response.json()
        self.assertEqual(account["type"], "user")
        self.assertEqual(set(account), {"type", "username", "name", "github_url"})

    def test_no_token_configured_allows_all(self):
        self.control("POST", "settings", {"token": None})
        self.assertEqual(self.request("GET", "/v1/account", token=None).status, 200)

    def test_webhook_default_secret(self):
        response = self.request("GET", "/v1/webhooks/default/secret")
        self.assertEqual(response.json(), {"key": SECRET})
        self.assertEqual(set(response.json()),
                         set(fixture_json("api.webhook-default-secret.json")))


class FaultTest(FakeTestCase):
    def test_429_with_retry_after_header_and_body(self):
        self.control("POST", "faults", {"status": 429, "count": 2, "retry_after": 3,
                                        "body_retry_after": 4})
        for _ in range(2):
            response = self.request("GET", "/v1/trainings")
            self.assertEqual(response.status, 429)
            self.assertEqual(response.headers["Retry-After"], "3")
            self.assertEqual(response.json()["retry_after"], 4)
            self.assertIn("~4s", response.json()["detail"])
        self.assertEqual(self.request("GET", "/v1/trainings").status, 200)

    def test_429_without_retry_after(self):
        self.control("POST", "faults", {"status": 429})
        response = self.request("GET", "/v1/account")
        self.assertEqual(response.status, 429)
        self.assertIsNone(response.headers["Retry-After"])
        self.assertEqual(response.json(), fixture_json("api.error.429-documented.json"))

    def test_fixture_bodies_for_402_and_404(self):
        self.control("POST", "faults", {"faults": [
            {"status": 402},
            {"status": 404, "path_prefix": "/v1/models/"},
        ]})
        response = self.request("GET", "/v1/account")
        self.assertEqual(response.json(), fixture_json("api.error.402.json"))
        response = self.request("POST", "/v1/models/o/n/versions/v/trainings",
                                {"destination": "me/lora"})
        self.assertEqual(response.status, 404)
        self.assertEqual(response.json(),
                         fixture_json("api.error.404-training-destination.json"))

    def test_path_prefix_and_method_select_requests(self):
        self.control("POST", "faults", {"status": 503, "path_prefix": "/v1/predictions",
                                        "method": "GET", "retry_after": 1})
        self.assertEqual(self.request("GET", "/v1/trainings").status, 200)
        response = self.request("GET", "/v1/predictions")
        self.assertEqual(response.status, 503)
        self.assertEqual(response.headers["Retry-After"], "1")
        self.assertEqual(response.json()["status"], 503)
        self.assertEqual(self.request("GET", "/v1/predictions").status, 200)

    def test_forever_fault_until_cleared(self):
        self.control("POST", "faults", {"status": 500, "forever": True})
        for _ in range(3):
            self.assertEqual(self.request("GET", "/v1/account").status, 500)
        self.control("DELETE", "faults")
        self.assertEqual(self.request("GET", "/v1/account").status, 200)

    def test_drop_closes_without_answer(self):
        self.control("POST", "faults", {"drop": True})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.request("GET", "/v1/account")
        self.assertEqual(self.request("GET", "/v1/account").status, 200)

    def test_drop_reset_sends_rst(self):
        self.control("POST", "faults", {"drop": "reset"})
        with self.assertRaises(ConnectionResetError):
            self.request("GET", "/v1/account")

    def test_drop_truncate_cuts_body(self):
        self.control("POST", "faults", {"drop": "truncate"})
        with self.assertRaises(http.client.IncompleteRead):
            self.request("GET", "/v1/account")

    def test_delay_outlasts_client_timeout(self):
        self.control("POST", "faults", {"delay": 30})
        started = time.monotonic()
        with self.assertRaises(socket.timeout):
            self.request("GET", "/v1/account", timeout=0.5)
        self.assertLess(time.monotonic() - started, 5)
        # Reset wakes the held request and removes the fault.
        self.control("POST", "reset")
        self.assertEqual(self.request("GET", "/v1/account", timeout=2).status, 200)

    def test_short_delay_then_normal_answer(self):
        self.control("POST", "faults", {"delay": 0.3})
        started = time.monotonic()
        self.assertEqual(self.request("GET", "/v1/account").status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_raw_body_fault(self):
        self.control("POST", "faults", {"status": 502, "raw_body": "<html>bad gateway</html>",
                                        "content_type": "text/html"})
        response = self.request("GET", "/v1/account")
        self.assertEqual(response.status, 502)
        self.assertEqual(response.body, b"<html>bad gateway</html>")

    def test_control_api_is_never_faulted(self):
        self.control("POST", "faults", {"status": 500, "forever": True, "path_prefix": "/"})
        self.assertEqual(self.control("GET", "faults")["faults"][0]["status"], 500)

    def test_invalid_fault_is_400(self):
        response = self.request("POST", "/_control/faults", {"count": 2}, token=None)
        self.assertEqual(response.status, 400)
        self.assertEqual(response.json()["error"], "invalid_parameter")


class RateLimitTest(FakeTestCase):
    def test_limit_per_token_with_retry_after(self):
        self.control("POST", "rate_limit", {"per_minute": 3})
        for _ in range(3):
            self.assertEqual(self.request("GET", "/v1/trainings").status, 200)
        response = self.request("GET", "/v1/account")
        self.assertEqual(response.status, 429)
        retry_after = int(response.headers["Retry-After"])
        self.assertGreaterEqual(retry_after, 1)
        self.assertLessEqual(retry_after, 60)
        self.assertIn("throttled", response.json()["detail"])
        self.control("POST", "settings", {"tokens": [TOKEN, OTHER_TOKEN]})
        self.assertEqual(self.request("GET", "/v1/account", token=OTHER_TOKEN).status, 200)

    def test_window_slides(self):
        self.control("POST", "rate_limit", {"per_minute": 2, "window_seconds": 1,
                                            "body_retry_after": True})
        self.assertEqual(self.request("GET", "/v1/account").status, 200)
        self.assertEqual(self.request("GET", "/v1/account").status, 200)
        response = self.request("GET", "/v1/account")
        self.assertEqual(response.status, 429)
        self.assertEqual(response.json()["retry_after"], int(response.headers["Retry-After"]))
        time.sleep(int(response.headers["Retry-After"]) + 0.05)
        self.assertEqual(self.request("GET", "/v1/account").status, 200)

    def test_rejected_requests_count(self):
        self.control("POST", "rate_limit", {"per_minute": 1, "window_seconds": 0.5})
        self.assertEqual(self.request("GET", "/v1/account").status, 200)
        time.sleep(0.3)
        self.assertEqual(self.request("GET", "/v1/account").status, 429)
        time.sleep(0.3)
        # The first request left the window but the rejected one did not.
        self.assertEqual(self.request("GET", "/v1/account").status, 429)

    def test_cleared_limit(self):
        self.control("POST", "rate_limit", {"per_minute": 1})
        self.request("GET", "/v1/account")
        self.control("DELETE", "rate_limit")
        self.assertEqual(self.request("GET", "/v1/account").status, 200)


class CancelTest(FakeTestCase):
    def test_cancel_active_training(self):
        job_id = self.add_trainings(count=1, status="processing")[0]
        response = self.request("POST", f"/v1/trainings/{job_id}/cancel")
        self.assertEqual(response.status, 200)
        job = response.json()
        self.assertEqual(job["status"], "canceled")
        self.assertIsNotNone(job["completed_at"])
        self.assertIn("total_time", job["metrics"])
        again = self.request("GET", f"/v1/trainings/{job_id}").json()
        self.assertEqual(again["status"], "canceled")

    def test_cancel_terminal_returns_it_unchanged(self):
        job_id = self.add_trainings(count=1, status="succeeded")[0]
        before = self.request("GET", f"/v1/trainings/{job_id}").json()
        after = self.request("POST", f"/v1/trainings/{job_id}/cancel").json()
        self.assertEqual(after, before)

    def test_cancel_prediction(self):
        job_id = self.control("POST", "jobs", {"count": 1, "kind": "prediction",
                                               "status": "starting"})["ids"][0]
        job = self.request("POST", f"/v1/predictions/{job_id}/cancel").json()
        self.assertEqual(job["status"], "canceled")
        self.assertIsNone(job["started_at"])

    def test_unknown_job_is_404(self):
        for method, path in (("GET", "/v1/trainings/nope"),
                             ("POST", "/v1/trainings/nope/cancel"),
                             ("GET", "/v1/predictions/nope")):
            response = self.request(method, path)
            self.assertEqual(response.status, 404, path)
            self.assertIn("problem+json", response.headers["Content-Type"])
            self.assertEqual(response.json()["status"], 404)

    def test_training_id_is_not_a_prediction(self):
        job_id = self.add_trainings(count=1)[0]
        self.assertEqual(self.request("GET", f"/v1/predictions/{job_id}").status, 404)


class CreateTrainingTest(FakeTestCase):
    PATH = "/v1/models/acme/trainer/versions/abc123/trainings"

    def test_create_then_advance_to_succeeded(self):
        response = self.request("POST", self.PATH, {"destination": "me/my-lora",
                                                    "input": {"steps": 300}})
        self.assertEqual(response.status, 201, response.body)
        job = response.json()
        self.assertEqual(job["status"], "starting")
        self.assertEqual(job["model"], "acme/trainer")
        self.assertEqual(job["version"], "abc123")
        self.assertEqual(job["destination"], "me/my-lora")
        self.assertEqual(job["metrics"], {})
        self.assertTrue(job["urls"]["get"].endswith(f"/v1/trainings/{job['id']}"))
        processing = wait_until(
            lambda: self.status_is(job["id"], "processing"), description="processing")
        self.assertIsNotNone(processing["started_at"])
        done = wait_until(lambda: self.status_is(job["id"], "succeeded"), description="succeeded")
        self.assertIn("epoch 1/3 step 50/300 loss", done["logs"])
        self.assertIn("epoch 3/3 step 300/300", done["logs"])
        self.assertGreater(done["metrics"]["predict_time"], 0)
        self.assertTrue(done["output"]["version"].startswith("me/my-lora:"))
        self.assertIsNotNone(done["completed_at"])

    def status_is(self, job_id, status):
        job = self.request("GET", f"/v1/trainings/{job_id}").json()
        return job if job["status"] == status else None

    def test_logs_grow_while_processing(self):
        self.control("POST", "settings", {"phase_seconds": {"starting": 0,
                                                            "processing": 1.5}})
        job_id = self.request("POST", self.PATH, {"destination": "me/lora"}).json()["id"]
        lengths = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            job = self.request("GET", f"/v1/trainings/{job_id}").json()
            if job["status"] != "processing":
                break
            lengths.add(len(job["logs"]))
            time.sleep(0.05)
        self.assertGreaterEqual(len(lengths), 3, lengths)

    def test_missing_destination_is_422(self):
        response = self.request("POST", self.PATH, {"input": {}})
        self.assertEqual(response.status, 422)
        self.assertEqual(response.json()["status"], 422)
        self.assertIn("destination", response.json()["detail"])

    def test_rejection_via_fault(self):
        self.control("POST", "faults", {"status": 422, "path_prefix": "/v1/models/",
                                        "body": {"detail": "quota exceeded", "status": 422}})
        response = self.request("POST", self.PATH, {"destination": "me/lora"})
        self.assertEqual(response.status, 422)
        self.assertEqual(response.json()["detail"], "quota exceeded")
        self.assertEqual(self.request("POST", self.PATH, {"destination": "me/lora"}).status,
                         201)

    def test_remote_webhook_is_rejected(self):
        response = self.request("POST", self.PATH, {"destination": "me/lora",
                                                    "webhook": "https://192.0.2.7/hook"})
        self.assertEqual(response.status, 422)
        self.assertIn("loopback", response.json()["detail"])

    def test_get_url_quirk(self):
        self.control("POST", "settings", {"create_get_url_quirk": True})
        job = self.request("POST", self.PATH, {"destination": "me/lora"}).json()
        self.assertTrue(job["urls"]["get"].endswith(f"/v1/predictions/{job['id']}"))
        self.assertEqual(self.request("GET", job["urls"]["get"]).json()["id"], job["id"])

    def test_manual_schedule(self):
        self.control("POST", "settings", {"auto_advance": False})
        job_id = self.request("POST", self.PATH, {"destination": "me/lora"}).json()["id"]
        time.sleep(0.4)
        self.assertEqual(self.status_is(job_id, "starting")["logs"], None)
        self.control("POST", f"jobs/{job_id}/advance")
        job = self.control("POST", f"jobs/{job_id}/advance", {"log_lines": 2})["object"]
        self.assertEqual(job["status"], "processing")
        self.assertTrue(job["logs"].rstrip("\n").endswith("epoch 1/3 step 100/300 loss 0.3825"),
                        job["logs"])
        job = self.control("POST", f"jobs/{job_id}/advance", {"to": "failed"})["object"]
        self.assertEqual(job["status"], "failed")
        self.assertIn("CUDA out of memory", job["error"])


class TimestampTest(FakeTestCase):
    def test_digits_per_job(self):
        ids = self.add_trainings(count=3, ts_digits=[3, 6, 9], status="succeeded")
        patterns = {3: r"\.\d{3}Z$", 6: r"\.\d{6}Z$", 9: r"\.\d{9}Z$"}
        for job_id, digits in zip(ids, (3, 6, 9)):
            job = self.request("GET", f"/v1/trainings/{job_id}").json()
            for field in ("created_at", "started_at", "completed_at"):
                self.assertRegex(job[field], patterns[digits], f"{field} of {digits}")

    def test_parse_and_format_round_trip(self):
        ns = fake_replicate.parse_timestamp_ns("2025-06-10T10:02:13.551207888Z")
        self.assertEqual(fake_replicate.format_timestamp(ns, 9), "2025-06-10T10:02:13.551207888Z")
        self.assertEqual(fake_replicate.format_timestamp(ns, 3), "2025-06-10T10:02:13.551Z")
        self.assertEqual(fake_replicate.format_timestamp(ns, 0), "2025-06-10T10:02:13Z")

    def test_explicit_object_keeps_its_strings(self):
        obj = fixture_json("prediction.processing.json")
        obj["webhook"] = None
        self.control("POST", "jobs", {"job": obj})
        served = self.request("GET", f"/v1/predictions/{obj['id']}").json()
        self.assertEqual(served["created_at"], "2025-06-10T10:02:11.407Z")
        self.assertEqual(served["started_at"], "2025-06-10T10:02:13.551207888Z")
        self.assertEqual(served["logs"], obj["logs"])
        self.assertEqual(served["urls"]["stream"], obj["urls"]["stream"])


class ControlTest(FakeTestCase):
    def test_set_status_logs_metrics_error(self):
        job_id = self.add_trainings(count=1, status="processing")[0]
        self.control("PATCH", f"jobs/{job_id}", {
            "status": "failed", "error": "disk full", "metrics": {"predict_time": 3e-06,
                                                                  "total_time": 1e-06},
            "append_logs": "step 7/10\n", "version": "hidden"})
        job = self.request("GET", f"/v1/trainings/{job_id}").json()
        self.assertEqual(job["status"], "failed")
        self.assertEqual(job["error"], "disk full")
        self.assertEqual(job["metrics"], {"predict_time": 3e-06, "total_time": 1e-06})
        self.assertTrue(job["logs"].endswith("step 7/10\n"))
        self.assertEqual(job["version"], "hidden")
        raw = self.request("GET", f"/v1/trainings/{job_id}").body
        self.assertIn(b'"predict_time":3e-06', raw)

    def test_advance_all(self):
        self.add_trainings(count=4, status="starting")
        advanced = self.control("POST", "advance", {})["advanced"]
        self.assertEqual(len(advanced), 4)
        self.control("POST", "advance", {"to": "succeeded"})
        statuses = {r["status"] for r in self.request("GET", "/v1/trainings").json()["results"]}
        self.assertEqual(statuses, {"succeeded"})

    def test_request_log_counts_and_times(self):
        self.request("GET", "/v1/account")
        self.request("GET", "/v1/account")
        self.request("GET", "/v1/trainings?cursor=")
        self.request("GET", "/v1/account", token=None)
        log = self.control("GET", "requests")
        self.assertEqual(log["counts"], {"GET /v1/account": 3, "GET /v1/trainings": 1})
        self.assertEqual(log["total"], 4)
        self.assertEqual([r["status"] for r in log["requests"]], [200, 200, 200, 401])
        self.assertEqual(log["requests"][3]["token"], "none")
        times = [r["time"] for r in log["requests"]]
        self.assertEqual(times, sorted(times))
        filtered = self.control("GET", "requests?path_prefix=/v1/trainings")
        self.assertEqual(filtered["total"], 1)
        self.control("DELETE", "requests")
        self.assertEqual(self.control("GET", "requests")["total"], 0)

    def test_reset_clears_everything(self):
        self.add_trainings(count=5)
        self.control("POST", "faults", {"status": 500, "forever": True})
        self.control("POST", "rate_limit", {"per_minute": 1})
        self.control("POST", "settings", {"page_size": 2})
        self.control("POST", "reset")
        state = self.control("GET", "state")
        self.assertEqual(state["jobs"], {})
        self.assertEqual(state["faults"], 0)
        self.assertFalse(state["rate_limit"])
        self.assertEqual(self.control("GET", "settings")["settings"]["page_size"], 100)
        self.assertEqual(self.request("GET", "/v1/trainings").status, 200)

    def test_duplicate_id_is_409(self):
        self.control("POST", "jobs", {"job": {"id": "dup1", "destination": "me/lora"}})
        response = self.request("POST", "/_control/jobs",
                                {"job": {"id": "dup1", "destination": "me/lora"}}, token=None)
        self.assertEqual(response.status, 409)

    def test_unknown_setting_is_400(self):
        response = self.request("POST", "/_control/settings", {"page_sise": 5}, token=None)
        self.assertEqual(response.status, 400)
        self.assertIn("page_sise", response.json()["message"])


class WebhookSenderTest(FakeTestCase):
    def test_signature_matches_standard_vectors(self):
        with open(os.path.join(FIXTURES, "standard-webhooks-vectors.json"),
                  encoding="utf-8") as f:
            vectors = json.load(f)["official_sign_vectors"]
        self.assertTrue(vectors)
        for vector in vectors:
            signature = fake_replicate.sign_webhook(vector["secret"], vector["msg_id"],
                                                    vector["timestamp"],
                                                    vector["payload"].encode())
            self.assertEqual(signature, vector["expected_signature"], vector["id"])

    def test_sender_signs_and_posts(self):
        receiver = self.receiver()
        job_id = self.add_trainings(count=1, status="starting")[0]
        result = self.control("POST", "webhooks/send", {
            "url": receiver.url, "job_id": job_id,
            "events": ["start", "logs", "logs", "completed"]})
        deliveries = result["deliveries"]
        self.assertEqual([d["status"] for d in deliveries], [200, 200, 200, 200])
        self.assertEqual([d["job_status"] for d in deliveries],
                         ["starting", "processing", "processing", "succeeded"])
        self.assertEqual(deliveries[0]["body"], '{"received": 1}')
        self.assertEqual(len(receiver.deliveries), 4)
        for (headers, body), delivery in zip(receiver.deliveries, deliveries):
            self.assertEqual(headers["webhook-id"], delivery["webhook_id"])
            self.assertTrue(verify_signature(SECRET, headers, body))
            self.assertLess(abs(int(headers["webhook-timestamp"]) - time.time()), 5)
            self.assertEqual(headers["content-type"], "application/json")
        bodies = receiver.bodies()
        self.assertIsNone(bodies[0]["logs"])
        self.assertLess(len(bodies[1]["logs"]), len(bodies[2]["logs"]))
        self.assertEqual(bodies[3]["metrics"].keys(), {"predict_time", "total_time"})
        # Sending snapshots does not change the job itself.
        self.assertEqual(self.request("GET", f"/v1/trainings/{job_id}").json()["status"],
                         "starting")

    def test_explicit_secret_and_bodies(self):
        receiver = self.receiver()
        secret = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
        body = fixture_json("training.succeeded.json")
        self.control("POST", "webhooks/send", {"url": receiver.url, "secret": secret,
                                               "bodies": [body], "trailing_newline": True})
        headers, raw = receiver.deliveries[0]
        self.assertTrue(verify_signature(secret, headers, raw))
        self.assertFalse(verify_signature(SECRET, headers, raw))
        self.assertTrue(raw.endswith(b"\n"))
        self.assertEqual(json.loads(raw), body)

    def test_duplicates_share_webhook_id(self):
        receiver = self.receiver()
        job_id = self.add_trainings(count=1, status="succeeded")[0]
        self.control("POST", "webhooks/send", {"url": receiver.url, "job_id": job_id,
                                               "events": ["completed"], "duplicates": 2})
        ids = [headers["webhook-id"] for headers, _ in receiver.deliveries]
        self.assertEqual(len(ids), 3)
        self.assertEqual(len(set(ids)), 1)
        for headers, body in receiver.deliveries:
            self.assertTrue(verify_signature(SECRET, headers, body))

    def test_retry_final_until_2xx(self):
        receiver = self.receiver(statuses=[200, 500, 503])
        job_id = self.add_trainings(count=1, status="processing")[0]
        deliveries = self.control("POST", "webhooks/send", {
            "url": receiver.url, "job_id": job_id, "events": ["logs", "completed"],
            "retry_final": 5, "retry_interval": 0.01})["deliveries"]
        self.assertEqual([(d["job_status"], d["attempt"], d["status"]) for d in deliveries],
                         [("processing", 1, 200), ("succeeded", 1, 500),
                          ("succeeded", 2, 503), ("succeeded", 3, 200)])
        self.assertEqual(len({d["webhook_id"] for d in deliveries[1:]}), 1)

    def test_shuffle_keeps_every_delivery(self):
        receiver = self.receiver()
        job_id = self.add_trainings(count=1)[0]
        events = ["start", "logs", "logs", "logs", "logs", "completed"]
        deliveries = self.control("POST", "webhooks/send", {
            "url": receiver.url, "job_id": job_id, "events": events, "shuffle": True,
            "seed": 3})["deliveries"]
        self.assertEqual(sorted(d["event"] for d in deliveries), sorted(events))
        self.assertNotEqual([d["event"] for d in deliveries], events)

    def test_bad_signature_and_stale_timestamp(self):
        receiver = self.receiver()
        job_id = self.add_trainings(count=1)[0]
        self.control("POST", "webhooks/send", {"url": receiver.url, "job_id": job_id,
                                               "events": ["start"], "corrupt_signature": True,
                                               "timestamp_offset": -600})
        headers, body = receiver.deliveries[0]
        self.assertFalse(verify_signature(SECRET, headers, body))
        self.assertLess(int(headers["webhook-timestamp"]), time.time() - 590)

    def test_remote_url_is_rejected(self):
        job_id = self.add_trainings(count=1)[0]
        response = self.request("POST", "/_control/webhooks/send",
                                {"url": "http://192.0.2.1/hook", "job_id": job_id}, token=None)
        self.assertEqual(response.status, 400)
        self.assertEqual(response.json()["error"], "webhook_url_rejected")

    def test_unreachable_receiver_reports_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        job_id = self.add_trainings(count=1)[0]
        deliveries = self.control("POST", "webhooks/send", {
            "url": f"http://127.0.0.1:{port}/", "job_id": job_id,
            "events": ["start"]})["deliveries"]
        self.assertIsNone(deliveries[0]["status"])
        self.assertIn("Connection", deliveries[0]["error"])


class AutomaticWebhookTest(FakeTestCase):
    PATH = "/v1/models/acme/trainer/versions/abc123/trainings"

    def test_deliveries_follow_the_job(self):
        receiver = self.receiver()
        job = self.request("POST", self.PATH, {"destination": "me/lora",
                                               "webhook": receiver.url}).json()
        wait_until(lambda: any(b["status"] == "succeeded" for b in receiver.bodies()),
                   description="final delivery")
        bodies = receiver.bodies()
        self.assertEqual(bodies[0]["status"], "starting")
        self.assertIn("processing", [b["status"] for b in bodies])
        self.assertEqual(bodies[-1]["status"], "succeeded")
        self.assertTrue(all(b["id"] == job["id"] for b in bodies))
        for headers, body in receiver.deliveries:
            self.assertTrue(verify_signature(SECRET, headers, body))
        recorded = self.control("GET", f"webhooks/deliveries?job_id={job['id']}")["deliveries"]
        self.assertEqual(len(recorded), len(bodies))

    def test_events_filter(self):
        receiver = self.receiver()
        self.request("POST", self.PATH, {"destination": "me/lora", "webhook": receiver.url,
                                         "webhook_events_filter": ["completed"]})
        wait_until(lambda: receiver.deliveries, description="a delivery")
        time.sleep(0.2)
        self.assertEqual([b["status"] for b in receiver.bodies()], ["succeeded"])

    def test_only_final_delivery_is_retried(self):
        receiver = self.receiver(statuses=[500, 500, 500, 500, 500, 500, 500, 500, 500, 500])
        self.control("POST", "settings", {"phase_seconds": {"starting": 0.1,
                                                            "processing": 0.1}})
        job_id = self.request("POST", self.PATH, {
            "destination": "me/lora", "webhook": receiver.url,
            "webhook_events_filter": ["start", "completed"]}).json()["id"]
        wait_until(lambda: len(receiver.deliveries) >= 3, description="a retried final delivery")
        statuses = [b["status"] for b in receiver.bodies()]
        self.assertEqual(statuses.count("starting"), 1)
        finals = [h["webhook-id"] for h, b in receiver.deliveries
                  if json.loads(b)["status"] == "succeeded"]
        self.assertGreaterEqual(len(finals), 2)
        self.assertEqual(len(set(finals)), 1)
        recorded = self.control("GET", f"webhooks/deliveries?job_id={job_id}")["deliveries"]
        self.assertEqual(recorded[-1]["attempt"], len(finals))

    def test_control_change_delivers_final_object(self):
        receiver = self.receiver()
        job_id = self.add_trainings(count=1, status="processing", webhook=receiver.url,
                                    webhook_events_filter=["completed"])[0]
        self.control("PATCH", f"jobs/{job_id}", {"status": "failed", "error": "disk full",
                                                  "metrics": {"predict_time": 1.5}})
        wait_until(lambda: receiver.deliveries, description="the failed delivery")
        body = receiver.bodies()[0]
        self.assertEqual(body["status"], "failed")
        self.assertEqual(body["error"], "disk full")
        self.assertEqual(body["metrics"], {"predict_time": 1.5})

    def test_cancel_sends_final_delivery(self):
        receiver = self.receiver()
        self.control("POST", "settings", {"auto_advance": False})
        job_id = self.request("POST", self.PATH, {
            "destination": "me/lora", "webhook": receiver.url,
            "webhook_events_filter": ["completed"]}).json()["id"]
        self.request("POST", f"/v1/trainings/{job_id}/cancel")
        wait_until(lambda: receiver.deliveries, description="the canceled delivery")
        self.assertEqual(receiver.bodies()[0]["status"], "canceled")


class CommandLineTest(unittest.TestCase):
    def test_script_prints_port_and_base_url(self):
        script = os.path.join(ROOT, "scripts", "fake-replicate")
        process = subprocess.Popen([script, "--port", "0", "--token", TOKEN],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(process.wait, 10)
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.stderr.close)
        try:
            first = process.stdout.readline().strip()
            match = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)", first)
            self.assertIsNotNone(match, first)
            port = int(match.group(1))
            self.assertGreater(port, 0)
            self.assertEqual(process.stdout.readline().strip(), f"http://127.0.0.1:{port}/v1")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v1/account",
                               headers={"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(connection.getresponse().status, 200)
            connection.close()
        finally:
            process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(10), 0)

    def test_invalid_secret_exits_2(self):
        script = os.path.join(ROOT, "scripts", "fake-replicate")
        result = subprocess.run([script, "--secret", "not-a-secret"], capture_output=True,
                                text=True, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertIn("whsec_", result.stderr)


if __name__ == "__main__":
    unittest.main()
