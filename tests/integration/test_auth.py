"""Access control: API keys and roles, the loopback-only default, dashboard
sessions with CSRF tokens across replicas, CORS, rate limits counted in
Redis, and the audit trail."""
import hashlib
import hmac
import json
import os
import subprocess
import time

from harness import JOBWIRE, SSEStream, ServiceTest, wait_until

KEYS = {
    "reader": ("read", "reader-key-5f1c0a9e7b2d4c68"),
    "operator": ("operate", "operator-key-93a1e6d0c4b27f5e"),
    "submitter": ("submit", "submitter-key-0d8e2b7a41c9f356"),
    "admin": ("read,operate,submit", "admin-key-7c2f9d14e8a0b63d"),
}
SESSION_SECRET = "test-session-secret-3b9f0c1e7a5d2468-shared"


def key_hash(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def write_key_file(directory, keys=KEYS, raw=()):
    path = os.path.join(directory, "api-keys")
    with open(path, "w") as f:
        f.write("# test keys\n")
        for name, (roles, key) in keys.items():
            f.write(f"{name} {roles} {key if name in raw else key_hash(key)}\n")
    return path


def bearer(name):
    return {"Authorization": f"Bearer {KEYS[name][1]}"}


def signed_cookie(name, expires_at, secret=SESSION_SECRET, nonce="0" * 32):
    """A session cookie made the way jobwire makes one, to test expiry."""
    payload = f"v1:{name}:{expires_at}:{nonce}"
    mac = hmac.new(hashlib.sha256(secret.encode()).digest(),
                   payload.encode() + b"\0" + hashlib.sha256(KEYS[name][1].encode()).digest(),
                   hashlib.sha256).hexdigest()
    return f"{payload}:{mac}"


# Every endpoint that needs a role, with a request and what the handler
# returns once access is granted (status and "error" code or body key).
ENDPOINTS = [
    ("GET", "/api/cloud/jobs", None, "read", 200, "jobs"),
    ("GET", "/api/cloud/jobs/job-x1", None, "read", 404, "job_not_found"),
    ("GET", "/api/cloud/jobs/job-x1/inline-progress", None, "read", 404, "job_not_found"),
    ("GET", "/api/cloud/jobs/job-x1/logs", None, "read", 404, "job_not_found"),
    ("GET", "/api/cloud/metrics", None, "read", 200, "jobs_by_status"),
    ("GET", "/api/cloud/polling/status", None, "read", 200, "is_active"),
    ("GET", "/api/cloud/providers/replicate/validate", None, "read", 200, "valid"),
    ("POST", "/api/cloud/jobs/sync", None, "operate", 503, "provider_not_configured"),
    ("POST", "/api/cloud/jobs/job-x1/cancel", None, "operate", 404, "job_not_found"),
    ("DELETE", "/api/cloud/jobs/job-x1", None, "operate", 404, "job_not_found"),
    ("PUT", "/api/cloud/polling/setting", b'{"enabled": null}', "operate", 200, "override"),
    ("GET", "/api/cloud/audit", None, "operate", 200, "entries"),
    ("GET", "/api/cloud/queue", None, "read", 200, "slots_used"),
    # A submission is queued (202) whatever the provider, which is not called yet.
    ("POST", "/api/cloud/jobs", json.dumps({
        "model": "acme/flux-trainer", "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b662",
        "destination": "acme/my-lora", "input": {"steps": 10}}).encode(), "submit", 202, "job"),
]


class KeyedTest(ServiceTest):
    """One jobwire with the four test keys (the queue off, so submissions
    stay pending)."""

    extra_env = {}

    def setUp(self):
        self.key_dir = self._tmpdir()
        self.jobwire_env = dict(self.base_env(), **self.extra_env)
        super().setUp()

    def _tmpdir(self):
        import tempfile
        return tempfile.mkdtemp(prefix="jobwire-keys-")

    def base_env(self):
        return {"JOBWIRE_API_KEYS_FILE": write_key_file(self.key_dir),
                "JOBWIRE_SESSION_SECRET": SESSION_SECRET,
                "JOBWIRE_RATE_LIMIT": "1000", "JOBWIRE_LOGIN_RATE_LIMIT": "1000",
                "JOBWIRE_QUEUE_ENABLED": "false"}

    def call(self, method, path, body=None, headers=None, service=None):
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("content-type", "application/json")
        return (service or self.jw).request(method, path, body=body, headers=headers)


class RoleTableTest(KeyedTest):
    def check_granted(self, r, status, marker, where):
        self.assertEqual(r.status, status, f"{where}: {r}")
        body = r.json()
        if status >= 400:
            self.assertEqual(body["error"], marker, where)
        else:
            self.assertIn(marker, body, where)

    def test_every_role_against_every_endpoint(self):
        cells = 0
        for method, path, body, role, status, marker in ENDPOINTS:
            for name, (roles, _) in KEYS.items():
                where = f"{name} {method} {path}"
                r = self.call(method, path, body, bearer(name))
                if role in roles.split(","):
                    self.check_granted(r, status, marker, where)
                else:
                    self.assertEqual(r.status, 403, where)
                    self.assertEqual(r.json(), {
                        "error": "forbidden",
                        "message": f"the key {name} does not have the {role} role"}, where)
                cells += 1
        self.assertEqual(cells, len(ENDPOINTS) * len(KEYS))

    def test_missing_and_unknown_keys_get_401(self):
        for method, path, body, _, _, _ in ENDPOINTS:
            r = self.call(method, path, body)
            self.assertEqual(r.status, 401, path)
            self.assertEqual(r.json()["error"], "unauthorized", path)
            self.assertEqual(r.headers["www-authenticate"], 'Bearer realm="jobwire"')

            r = self.call(method, path, body, {"Authorization": "Bearer not-a-key-4f0e"})
            self.assertEqual((r.status, r.json()["error"]), (401, "invalid_api_key"), path)
            self.assertEqual(r.json()["message"], "the API key is not known")

        r = self.call("GET", "/api/cloud/jobs", headers={"Authorization": "Basic YTpi"})
        self.assertEqual(r.json(), {"error": "invalid_api_key",
                                    "message": 'the Authorization header must be "Bearer <key>"'})

        # /metrics counts the refusals by code.
        text = self.call("GET", "/metrics", headers=bearer("reader")).body.decode()
        n = len(ENDPOINTS)
        self.assertIn(f'jobwire_auth_refusals_total{{code="unauthorized"}} {n}\n', text)
        self.assertIn(f'jobwire_auth_refusals_total{{code="invalid_api_key"}} {n + 1}\n', text)
        self.assertIn('jobwire_auth_refusals_total{code="forbidden"} 0\n', text)

    def test_keys_never_logged(self):
        self.call("GET", "/api/cloud/jobs", headers=bearer("reader"))
        self.call("POST", "/api/cloud/jobs/sync", headers=bearer("reader"))
        self.call("POST", "/api/auth/login", json.dumps({"key": KEYS["admin"][1]}).encode())
        self.call("GET", "/api/cloud/jobs", headers={"Authorization": "Bearer wrong-key-77aa"})
        log = self.jw.log()
        for _, key in KEYS.values():
            self.assertNotIn(key, log)
        self.assertNotIn("wrong-key-77aa", log)
        self.assertIn("login key=admin ip=127.0.0.1", log)

    def test_open_endpoints_need_no_key(self):
        self.assertEqual(self.call("GET", "/healthz").status, 200)
        self.assertEqual(self.call("GET", "/readyz").status, 200)
        # The webhook keeps its own check: a bad signature, not a missing key.
        r = self.jw.webhook({"id": "abc"}, headers={"webhook-signature": "v1,AAAA"})
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_signature"))
        # With a key file, /metrics needs a read key unless JOBWIRE_METRICS_AUTH=false.
        self.assertEqual(self.call("GET", "/metrics").status, 401)
        r = self.call("GET", "/metrics", headers=bearer("reader"))
        self.assertEqual(r.status, 200)
        self.assertIn(b"jobwire_webhooks_total", r.body)

    def test_event_stream_needs_read(self):
        stream = SSEStream(self.jw, headers=bearer("reader"))
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.next_event()["event"], "connected")
        stream.close()
        stream = SSEStream(self.jw, headers=bearer("operator"))
        self.assertEqual(stream.status, 403)
        self.assertEqual(stream.body_json()["error"], "forbidden")
        stream.close()
        stream = SSEStream(self.jw)
        self.assertEqual(stream.status, 401)
        stream.close()


class MetricsAuthTest(KeyedTest):
    def test_metrics_need_a_read_key(self):
        self.assertEqual(self.call("GET", "/metrics").status, 401)
        self.assertEqual(self.call("GET", "/metrics", headers=bearer("operator")).status, 403)
        r = self.call("GET", "/metrics", headers=bearer("reader"))
        self.assertEqual(r.status, 200)
        self.assertIn(b"jobwire_webhooks_total", r.body)


class MetricsOpenTest(KeyedTest):
    extra_env = {"JOBWIRE_METRICS_AUTH": "false"}

    def test_metrics_open_when_asked(self):
        r = self.call("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn(b"jobwire_auth_refusals_total", r.body)


class SessionTest(KeyedTest):
    """Login on one replica, use the cookie on another; CSRF; logout."""

    def setUp(self):
        super().setUp()
        self.jw2 = self.start_jobwire(self.jobwire_env, name="replica2")

    def login(self, name, service=None):
        r = self.call("POST", "/api/auth/login", json.dumps({"key": KEYS[name][1]}).encode(),
                      service=service)
        self.assertEqual(r.status, 200, r)
        cookie = r.headers["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertIn("Max-Age=43200", cookie)
        self.assertIn("Path=/", cookie)
        self.assertNotIn("Secure", cookie)  # the public URL is not https here
        value = cookie.split(";")[0].split("=", 1)[1]
        return value, r.json()

    def test_login_cookie_works_on_another_replica(self):
        cookie, body = self.login("admin")
        self.assertEqual(body["name"], "admin")
        self.assertEqual(body["via"], "session")
        self.assertEqual(body["roles"], ["read", "operate", "submit"])
        self.assertEqual(len(body["csrf_token"]), 64)
        self.assertTrue(body["keys_configured"])

        headers = {"Cookie": f"jw_session={cookie}"}
        r = self.call("GET", "/api/auth/session", headers=headers, service=self.jw2)
        self.assertEqual(r.json()["csrf_token"], body["csrf_token"])
        r = self.call("GET", "/api/cloud/jobs", headers=headers, service=self.jw2)
        self.assertEqual((r.status, r.json()["total"]), (200, 0))

        # The event stream accepts the cookie, as EventSource sends it.
        stream = SSEStream(self.jw2, headers=headers)
        self.assertEqual(stream.status, 200)
        stream.close()

    def test_changes_need_the_csrf_token(self):
        cookie, body = self.login("admin")
        headers = {"Cookie": f"jw_session={cookie}"}
        setting = b'{"enabled": false}'

        r = self.call("PUT", "/api/cloud/polling/setting", setting, headers, service=self.jw2)
        self.assertEqual((r.status, r.json()["error"]), (403, "csrf_token_invalid"))
        r = self.call("PUT", "/api/cloud/polling/setting", setting,
                      dict(headers, **{"X-CSRF-Token": "0" * 64}), service=self.jw2)
        self.assertEqual((r.status, r.json()["error"]), (403, "csrf_token_invalid"))
        status = self.call("GET", "/api/cloud/polling/status", headers=headers).json()
        self.assertNotEqual(status.get("override"), False)

        r = self.call("PUT", "/api/cloud/polling/setting", setting,
                      dict(headers, **{"X-CSRF-Token": body["csrf_token"]}), service=self.jw2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["override"], False)

    def test_forged_and_expired_cookies_are_refused_elsewhere(self):
        cookie, _ = self.login("reader")
        parts = cookie.split(":")
        longer = ":".join([parts[0], parts[1], str(int(parts[2]) + 86400)] + parts[3:])
        promoted = ":".join([parts[0], "admin"] + parts[2:])
        expired = signed_cookie("reader", int(time.time()) - 5)
        cases = [(longer, "the session cookie is not valid for any configured key"),
                 (promoted, "the session cookie is not valid for any configured key"),
                 (expired, "the session has expired"),
                 ("v1:reader:garbage", "the session cookie is malformed"),
                 (signed_cookie("reader", int(time.time()) + 600, secret="x" * 40),
                  "the session cookie is not valid for any configured key")]
        for value, message in cases:
            r = self.call("GET", "/api/cloud/jobs", headers={"Cookie": f"jw_session={value}"},
                          service=self.jw2)
            self.assertEqual(r.status, 401, value)
            self.assertEqual(r.json(), {"error": "invalid_session", "message": message})
            # The response clears a cookie that can never pass.
            self.assertIn("jw_session=; Path=/; Max-Age=0", r.headers["set-cookie"])

        # A cookie signed right and not expired passes on the other replica.
        fresh = signed_cookie("reader", int(time.time()) + 600)
        r = self.call("GET", "/api/cloud/jobs", headers={"Cookie": f"jw_session={fresh}"},
                      service=self.jw2)
        self.assertEqual(r.status, 200)

    def test_replica_with_another_secret_refuses_the_cookie(self):
        env = dict(self.jobwire_env, JOBWIRE_SESSION_SECRET="another-secret-9d0c7e11a2b3f4a5b6")
        other = self.start_jobwire(env, name="other-secret")
        cookie, _ = self.login("reader")
        r = self.call("GET", "/api/cloud/jobs", headers={"Cookie": f"jw_session={cookie}"},
                      service=other)
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_session"))

    def test_bad_logins_and_logout(self):
        r = self.call("POST", "/api/auth/login", b'{"key": "nope-0000"}')
        self.assertEqual(r.json(), {"error": "invalid_api_key",
                                    "message": "the API key is not known"})
        self.assertNotIn("set-cookie", r.headers)
        r = self.call("POST", "/api/auth/login", b'{"token": "x"}')
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_body"))
        r = self.call("POST", "/api/auth/login", b'{"key": ')
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_body"))

        cookie, body = self.login("reader")
        headers = {"Cookie": f"jw_session={cookie}"}
        # Another site cannot log the browser out: logout needs the CSRF token.
        r = self.call("POST", "/api/auth/logout", headers=headers)
        self.assertEqual((r.status, r.json()["error"]), (403, "csrf_token_invalid"))
        r = self.call("POST", "/api/auth/logout",
                      headers=dict(headers, **{"X-CSRF-Token": body["csrf_token"]}))
        self.assertEqual((r.status, r.json()), (200, {"logged_out": True}))
        self.assertIn("jw_session=; Path=/; Max-Age=0", r.headers["set-cookie"])

    def test_session_endpoint_without_credentials(self):
        r = self.call("GET", "/api/auth/session")
        self.assertEqual((r.status, r.json()["error"]), (401, "unauthorized"))
        r = self.call("GET", "/api/auth/session", headers=bearer("submitter"))
        body = r.json()
        self.assertEqual((body["name"], body["via"], body["roles"]), ("submitter", "key", ["submit"]))
        self.assertIsNone(body["csrf_token"])


class RateLimitTest(KeyedTest):
    def base_env(self):
        return dict(super().base_env(), JOBWIRE_RATE_LIMIT="3", JOBWIRE_LOGIN_RATE_LIMIT="2")

    def test_limit_holds_across_two_replicas(self):
        jw2 = self.start_jobwire(self.jobwire_env, name="replica2")
        body = b'{"enabled": null}'
        statuses = []
        for i in range(4):
            service = self.jw if i % 2 == 0 else jw2
            statuses.append(self.call("PUT", "/api/cloud/polling/setting", body,
                                      bearer("operator"), service=service))
        self.assertEqual([r.status for r in statuses], [200, 200, 200, 429])
        limited = statuses[3]
        self.assertEqual(limited.json()["error"], "rate_limited")
        # Three a minute: the next call is allowed in about 20 s.
        self.assertTrue(15 <= int(limited.headers["retry-after"]) <= 21, limited.headers)

        # Another key has its own allowance; reads are never limited.
        r = self.call("PUT", "/api/cloud/polling/setting", body, bearer("admin"), service=jw2)
        self.assertEqual(r.status, 200)
        for _ in range(5):
            self.assertEqual(self.call("GET", "/api/cloud/jobs", headers=bearer("admin")).status, 200)

    def test_login_attempts_are_limited_per_address(self):
        for _ in range(2):
            r = self.call("POST", "/api/auth/login", b'{"key": "guess-0001"}')
            self.assertEqual(r.status, 401)
        r = self.call("POST", "/api/auth/login", json.dumps({"key": KEYS["admin"][1]}).encode())
        self.assertEqual((r.status, r.json()["error"]), (429, "rate_limited"))
        self.assertNotIn("set-cookie", r.headers)


class AuditTest(KeyedTest):
    def audit(self, query=""):
        r = self.call("GET", "/api/cloud/audit" + query, headers=bearer("operator"))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_each_mutating_call_is_recorded(self):
        self.call("POST", "/api/cloud/jobs/job-a1/cancel", headers=bearer("operator"))
        self.call("DELETE", "/api/cloud/jobs/job-a2", headers=bearer("reader"))
        self.call("POST", "/api/cloud/jobs/sync", headers=bearer("admin"))
        self.call("PUT", "/api/cloud/polling/setting", b'{"enabled": true}', bearer("admin"))
        self.call("POST", "/api/cloud/jobs/sync")
        self.call("POST", "/api/auth/login", json.dumps({"key": KEYS["reader"][1]}).encode())
        self.call("GET", "/api/cloud/jobs", headers=bearer("admin"))  # a read: not recorded
        submitted = self.call("POST", "/api/cloud/jobs", ENDPOINTS[-1][2], bearer("submitter"))
        self.assertEqual(submitted.status, 202, submitted)
        job_id = submitted.json()["job"]["job_id"]

        entries = wait_until(lambda: (lambda e: e if len(e) >= 6 else None)(
            self.audit()["entries"]), what="six audit entries")
        got = [(e["action"], e["key"], e["via"], e["job_id"], e["status"], e["result"])
               for e in entries]
        # The keyless sync is counted in /metrics, not audited (anyone could flood those).
        self.assertEqual(got, [
            ("job.submit", "submitter", "key", job_id, 202, "ok"),
            ("auth.login", "reader", "session", None, 200, "ok"),
            ("polling.setting", "admin", "key", None, 200, "ok"),
            ("jobs.sync", "admin", "key", None, 503, "failed"),
            ("job.delete", "reader", "key", "job-a2", 403, "refused"),
            ("job.cancel", "operator", "key", "job-a1", 404, "rejected"),
        ])
        for e in entries:
            self.assertEqual(e["ip"], "127.0.0.1")
            self.assertTrue(e["time"].endswith("Z"))

        # Paging: two at a time, following next_before.
        page = self.audit("?limit=2")
        self.assertEqual([e["action"] for e in page["entries"]], ["job.submit", "auth.login"])
        page = self.audit("?limit=2&before=" + page["next_before"])
        self.assertEqual([e["action"] for e in page["entries"]], ["polling.setting", "jobs.sync"])

    def test_audit_needs_operate_and_checks_its_query(self):
        r = self.call("GET", "/api/cloud/audit", headers=bearer("reader"))
        self.assertEqual(r.status, 403)
        for query, message in [("?limit=0", "limit must be 1-1000"),
                               ("?limit=abc", "limit must be 1-1000"),
                               ("?before=yesterday",
                                "before must be an entry id such as 1733300000000-0")]:
            r = self.call("GET", "/api/cloud/audit" + query, headers=bearer("operator"))
            self.assertEqual(r.json(), {"error": "invalid_parameter", "message": message})


class LoopbackDefaultTest(ServiceTest):
    """No key file: loopback clients only. A trusted proxy on loopback
    forwards a remote client's address, which is how a stranger looks."""

    jobwire_env = {"JOBWIRE_TRUSTED_PROXIES": "127.0.0.1/32"}
    remote = {"X-Forwarded-For": "203.0.113.7"}

    def test_strangers_are_refused_and_loopback_served(self):
        r = self.jw.request("GET", "/api/cloud/jobs", headers=self.remote)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"], "loopback_only")
        self.assertIn("JOBWIRE_API_KEYS_FILE", r.json()["message"])
        r = self.jw.request("POST", "/api/cloud/jobs/sync", headers=self.remote)
        self.assertEqual((r.status, r.json()["error"]), (403, "loopback_only"))
        r = self.jw.request("GET", "/metrics", headers=self.remote)
        self.assertEqual(r.status, 403)

        # Health checks and the signed webhook stay open to everyone.
        self.assertEqual(self.jw.request("GET", "/healthz", headers=self.remote).status, 200)
        self.assertEqual(self.jw.request("GET", "/readyz", headers=self.remote).status, 200)
        r = self.jw.webhook({"id": "abc"}, headers=dict(self.remote, **{"webhook-signature": "v1,AA"}))
        self.assertEqual(r.json()["error"], "invalid_signature")

        # A loopback client is served, and a Bearer header changes nothing.
        r = self.jw.request("GET", "/api/cloud/jobs")
        self.assertEqual((r.status, r.json()["total"]), (200, 0))
        body = self.jw.request("GET", "/api/auth/session").json()
        self.assertEqual((body["via"], body["keys_configured"]), ("loopback", False))
        r = self.jw.request("POST", "/api/auth/login", body=b'{"key": "x"}')
        self.assertEqual((r.status, r.json()["error"]), (400, "auth_not_configured"))

        self.assertEqual(self.jw.log().count("answers loopback clients only"), 1)

    def test_untrusted_local_proxy_does_not_make_clients_local(self):
        jw2 = self.start_jobwire({}, name="no-trusted-proxy")
        r = jw2.request("GET", "/api/cloud/jobs", headers=self.remote)
        self.assertEqual((r.status, r.json()["error"]), (403, "loopback_only"))
        r = jw2.request("GET", "/api/cloud/jobs", headers={"Forwarded": "for=203.0.113.9"})
        self.assertEqual(r.status, 403)
        self.assertEqual(jw2.request("GET", "/api/cloud/jobs").status, 200)
        # Through a trusted proxy, a loopback client is still local.
        r = self.jw.request("GET", "/api/cloud/jobs", headers={"X-Forwarded-For": "127.0.0.1"})
        self.assertEqual(r.status, 200, r)

    def test_allow_anonymous_serves_everyone_with_a_warning(self):
        jw2 = self.start_jobwire(dict(self.jobwire_env, JOBWIRE_ALLOW_ANONYMOUS="true"),
                                 name="anonymous")
        r = jw2.request("GET", "/api/cloud/jobs", headers=self.remote)
        self.assertEqual(r.status, 200)
        self.assertIn("warn auth: access control: off (JOBWIRE_ALLOW_ANONYMOUS=true)", jw2.log())


class KeyFileErrorTest(ServiceTest):
    def setUp(self):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="jobwire-keys-")

    def tearDown(self):
        pass

    def check(self, text):
        path = os.path.join(self.dir, "keys")
        with open(path, "w") as f:
            f.write(text)
        env = {"PATH": os.environ.get("PATH", ""), "JOBWIRE_API_KEYS_FILE": path,
               "ASAN_OPTIONS": "detect_leaks=0"}
        p = subprocess.run([JOBWIRE, "--check-config"], env=env, capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout + p.stderr, path

    def test_bad_lines_name_the_line(self):
        cases = [
            ("ok read sha256:" + "a" * 64 + "\nbroken read\n",
             "line 2: expected NAME ROLES KEY, found fewer fields"),
            ("# c\n\nx admin key-12345678\n",
             'line 3: unknown role "admin" (roles are read, operate, submit)'),
            ("x read sha256:1234\n", "line 1: sha256: must be followed by 64 hex digits"),
            ("a read k1-aaaaaaaa\nb read k1-aaaaaaaa\n",
             "line 2: key b is the same key as a on line 1"),
        ]
        for text, message in cases:
            code, out, path = self.check(text)
            self.assertEqual(code, 1, out)
            self.assertIn(f"invalid configuration: JOBWIRE_API_KEYS_FILE: {path}: {message}", out)
            self.assertNotIn("k1-aaaaaaaa", out)

        code, out, path = self.check("a read,submit sha256:" + "b" * 64 + "\nc read raw-key-0123\n")
        self.assertEqual(code, 0, out)
        self.assertIn("configuration is valid\n", out)
        # --check-config also logs who would be served and which keys are raw.
        self.assertIn(f"access control: 2 API keys from {path}", out)
        self.assertIn("key c (line 2) is stored as plain text", out)
        self.assertNotIn("raw-key-0123", out)

    def test_hash_key_command(self):
        p = subprocess.run([JOBWIRE, "hash-key"], input="my-key-123\n", capture_output=True,
                           text=True, env={"ASAN_OPTIONS": "detect_leaks=0"}, timeout=30)
        self.assertEqual(p.stdout.strip(), key_hash("my-key-123"))
        p = subprocess.run([JOBWIRE, "hash-key", "abc"], capture_output=True, text=True,
                           env={"ASAN_OPTIONS": "detect_leaks=0"}, timeout=30)
        self.assertEqual(p.stdout.strip(), key_hash("abc"))


class RawKeyWarningTest(KeyedTest):
    def base_env(self):
        env = super().base_env()
        env["JOBWIRE_API_KEYS_FILE"] = write_key_file(self.key_dir, raw=("reader",))
        return env

    def test_raw_key_works_and_is_warned_about(self):
        r = self.call("GET", "/api/cloud/jobs", headers=bearer("reader"))
        self.assertEqual(r.status, 200)
        log = self.jw.log()
        self.assertIn("key reader (line 2) is stored as plain text", log)
        self.assertNotIn(KEYS["reader"][1], log)


class CorsTest(KeyedTest):
    extra_env = {"JOBWIRE_CORS_ORIGINS": "https://ops.example.com"}

    def test_preflight_and_responses(self):
        pre = {"Origin": "https://ops.example.com", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization"}
        r = self.call("OPTIONS", "/api/cloud/jobs/job-1/cancel", headers=pre)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers["access-control-allow-origin"], "https://ops.example.com")
        self.assertEqual(r.headers["access-control-allow-methods"], "POST, OPTIONS")
        self.assertIn("Authorization", r.headers["access-control-allow-headers"])
        self.assertNotIn("access-control-allow-credentials", r.headers)

        r = self.call("OPTIONS", "/api/cloud/jobs/sync", headers=dict(pre, Origin="https://evil.example"))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"], "origin_not_allowed")
        self.assertNotIn("access-control-allow-origin", r.headers)

        r = self.call("GET", "/api/cloud/jobs",
                      headers=dict(bearer("reader"), Origin="https://ops.example.com"))
        self.assertEqual(r.headers["access-control-allow-origin"], "https://ops.example.com")
        self.assertEqual(r.headers["vary"], "Origin")
        # Refusals carry it too, so the page can read why.
        r = self.call("GET", "/api/cloud/jobs", headers={"Origin": "https://ops.example.com"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["access-control-allow-origin"], "https://ops.example.com")
        r = self.call("GET", "/api/cloud/jobs",
                      headers=dict(bearer("reader"), Origin="https://evil.example"))
        self.assertNotIn("access-control-allow-origin", r.headers)

    def test_plain_options_lists_methods(self):
        r = self.call("OPTIONS", "/api/cloud/jobs/job-1")
        self.assertEqual((r.status, r.headers["allow"]), (204, "GET, DELETE, OPTIONS"))


class CorsOffTest(KeyedTest):
    def test_no_cors_headers_by_default(self):
        r = self.call("GET", "/api/cloud/jobs",
                      headers=dict(bearer("reader"), Origin="https://ops.example.com"))
        self.assertEqual(r.status, 200)
        self.assertNotIn("access-control-allow-origin", r.headers)
        r = self.call("OPTIONS", "/api/cloud/jobs", headers={
            "Origin": "https://ops.example.com", "Access-Control-Request-Method": "GET"})
        self.assertEqual(r.json()["error"], "origin_not_allowed")


class KeyReloadTest(KeyedTest):
    def test_sighup_reload_and_bad_file(self):
        import signal
        path = self.jobwire_env["JOBWIRE_API_KEYS_FILE"]
        with open(path, "w") as f:
            f.write(f"reader read {key_hash('rotated-key-6e1d90c2')}\n")
        self.jw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP: reloaded 1 API keys" in self.jw.log(), what="reload")
        self.assertEqual(self.call("GET", "/api/cloud/jobs", headers=bearer("reader")).status, 401)
        new = {"Authorization": "Bearer rotated-key-6e1d90c2"}
        self.assertEqual(self.call("GET", "/api/cloud/jobs", headers=new).status, 200)

        with open(path, "w") as f:
            f.write("reader read\n")
        self.jw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "the key file was not reloaded" in self.jw.log(), what="refusal")
        self.assertIn("line 1: expected NAME ROLES KEY", self.jw.log())
        self.assertEqual(self.call("GET", "/api/cloud/jobs", headers=new).status, 200)


class SecureCookieTest(KeyedTest):
    extra_env = {"JOBWIRE_COOKIE_SECURE": "true"}

    def test_secure_cookie_takes_the_host_prefix(self):
        r = self.call("POST", "/api/auth/login", json.dumps({"key": KEYS["reader"][1]}).encode())
        cookie = r.headers["set-cookie"]
        self.assertTrue(cookie.startswith("__Host-jw_session=v1:reader:"), cookie)
        self.assertIn("; Secure", cookie)
        self.assertIn("Path=/", cookie)
        self.assertNotIn("Domain", cookie)
        value = cookie.split(";")[0].split("=", 1)[1]
        r = self.call("GET", "/api/cloud/jobs", headers={"Cookie": f"__Host-jw_session={value}"})
        self.assertEqual(r.status, 200)
        # Without the prefix, the cookie is not read: it may come from a sibling domain.
        r = self.call("GET", "/api/cloud/jobs", headers={"Cookie": f"jw_session={value}"})
        self.assertEqual((r.status, r.json()["error"]), (401, "unauthorized"))


class SubmitScopeTest(KeyedTest):
    def test_idempotency_keys_are_scoped_per_api_key(self):
        body = ENDPOINTS[-1][2]
        first = self.call("POST", "/api/cloud/jobs", body,
                          dict(bearer("submitter"), **{"Idempotency-Key": "nightly-1"}))
        again = self.call("POST", "/api/cloud/jobs", body,
                          dict(bearer("submitter"), **{"Idempotency-Key": "nightly-1"}))
        other = self.call("POST", "/api/cloud/jobs", body,
                          dict(bearer("admin"), **{"Idempotency-Key": "nightly-1"}))
        self.assertEqual((first.status, again.status, other.status), (202, 200, 202))
        self.assertEqual(again.json()["job"]["job_id"], first.json()["job"]["job_id"])
        self.assertTrue(again.json()["replayed"])
        # Another key's same Idempotency-Key is another submission.
        self.assertNotEqual(other.json()["job"]["job_id"], first.json()["job"]["job_id"])
        self.assertFalse(other.json()["replayed"])


class RetriedOldKeyTest(KeyedTest):
    def base_env(self):
        return dict(super().base_env(), JOBWIRE_LOGIN_RATE_LIMIT="2")

    def test_retried_old_key_no_lockout(self):
        # A job still sending a rotated key from this address: one failure, counted once.
        old = {"Authorization": "Bearer rotated-away-key-0d1e2f3a4b5c"}
        for _ in range(6):
            r = self.call("GET", "/api/cloud/jobs", headers=old)
            self.assertEqual((r.status, r.json()["error"]), (401, "invalid_api_key"))
        r = self.call("GET", "/api/cloud/jobs", headers=bearer("reader"))
        self.assertEqual(r.status, 200)
        # New guesses still count: the second one fills the limit of 2.
        statuses = [self.call("GET", "/api/cloud/jobs",
                              headers={"Authorization": f"Bearer guess-{i}-77f0"}).status
                    for i in range(3)]
        self.assertEqual(statuses, [401, 429, 429])
