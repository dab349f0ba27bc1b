"""Attacks on access control that succeed today. Each test asserts the
secure behaviour, so it fails until the hole is closed.

The attacks: forged or unparsable client addresses behind a trusted
proxy, key guessing without a limit, audit trails flushed or
misattributed, event streams that outlive their key or session, and
login details that help an attacker."""
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import tempfile
import time

from harness import JOBWIRE, SSEStream, ServiceTest, wait_until

KEYS = {
    "reader": ("read", "reader-key-5f1c0a9e7b2d4c68"),
    "operator": ("operate", "operator-key-93a1e6d0c4b27f5e"),
    "admin": ("read,operate,submit", "admin-key-7c2f9d14e8a0b63d"),
}
SESSION_SECRET = "test-session-secret-3b9f0c1e7a5d2468-shared"

# What a proxy on the same host appends for the client it relays.
REMOTE = "203.0.113.7"


def key_hash(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def write_key_file(directory, keys):
    path = os.path.join(directory, "api-keys")
    with open(path, "w") as f:
        for name, (roles, key) in keys.items():
            f.write(f"{name} {roles} {key_hash(key)}\n")
    return path


def bearer(name):
    return [("Authorization", f"Bearer {KEYS[name][1]}")]


def signed_cookie(name, expires_at, nonce="0" * 32):
    """A session cookie signed the way jobwire signs one."""
    payload = f"v1:{name}:{expires_at}:{nonce}"
    mac = hmac.new(hashlib.sha256(SESSION_SECRET.encode()).digest(),
                   payload.encode() + b"\0" + hashlib.sha256(KEYS[name][1].encode()).digest(),
                   hashlib.sha256).hexdigest()
    return f"{payload}:{mac}"


def raw_request(service, method, path, headers=(), body=None):
    """Sends headers as a list of (name, value), so one name may repeat,
    and the path exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class BreakTest(ServiceTest):
    """One jobwire; keys_env adds a key file and a session secret."""

    keys_env = False
    extra_env = {}

    def setUp(self):
        self.key_dir = tempfile.mkdtemp(prefix="jobwire-breakit-")
        env = {}
        if self.keys_env:
            env = {"JOBWIRE_API_KEYS_FILE": write_key_file(self.key_dir, KEYS),
                   "JOBWIRE_SESSION_SECRET": SESSION_SECRET}
        self.jobwire_env = dict(env, **self.extra_env)
        super().setUp()

    def send(self, method, path, headers=(), body=None, service=None):
        return raw_request(service or self.jw, method, path, headers, body)

    def audit_entries(self):
        status, _, body = self.send("GET", "/api/cloud/audit?limit=1000", bearer("operator"))
        self.assertEqual(status, 200, body)
        return json.loads(body)["entries"]

    def login(self, key, address_headers=()):
        body = json.dumps({"key": key}).encode()
        return self.send("POST", "/api/auth/login",
                         [("Content-Type", "application/json")] + list(address_headers), body)


class TrustedProxyKeylessTest(BreakTest):
    """No key file and a trusted proxy on loopback: a remote client must
    never pass for a local one."""

    extra_env = {"JOBWIRE_TRUSTED_PROXIES": "127.0.0.1/32"}

    def assert_loopback_only(self, headers, where):
        status, _, body = self.send("GET", "/api/cloud/jobs", headers)
        self.assertEqual(status, 403, f"{where}: {body!r}")
        self.assertEqual(json.loads(body)["error"], "loopback_only", where)

    def test_second_forwarded_header_is_read(self):
        # HAProxy 2.6 with "option forwardfor" (deploy/haproxy) keeps the
        # client's X-Forwarded-For line and adds its own line after it.
        # HTTP reads repeated lines as one comma-separated list.
        for forged in ("127.0.0.1", "127.0.0.2", "::1"):
            headers = [("X-Forwarded-For", forged), ("X-Forwarded-For", REMOTE)]
            self.assert_loopback_only(headers, f"forged {forged} before {REMOTE}")

    def test_unparsable_client_entry_is_not_loopback(self):
        # The rightmost entry is what the trusted proxy wrote. When it is not
        # an address, the client is unknown, not the proxy itself.
        for value in (f"{REMOTE}:51234", "unknown", "[2001:db8::1]", f"{REMOTE},", " "):
            self.assert_loopback_only([("X-Forwarded-For", value)], repr(value))

    def test_forwarded_header_relay_is_not_loopback(self):
        # A trusted proxy that names its client only in the Forwarded header.
        self.assert_loopback_only([("Forwarded", f"for={REMOTE}")], "Forwarded only")
        self.assert_loopback_only([("Forwarded", 'for="[2001:db8::1]:4711"')], "Forwarded v6")


class UntrustedLocalProxyTest(BreakTest):
    """No key file and no trusted proxy: a proxy on this host that names its
    client in another common header is still relaying a stranger."""

    def test_other_relay_headers_are_not_loopback(self):
        for name, value in (("X-Real-IP", REMOTE), ("Via", "1.1 edge-proxy"),
                            ("X-Forwarded-Host", "jobwire.example.com")):
            status, _, body = self.send("GET", "/api/cloud/jobs", [(name, value)])
            self.assertEqual(status, 403, f"{name}: {body!r}")
            self.assertEqual(json.loads(body)["error"], "loopback_only", name)
        status, _, _ = self.send("GET", "/api/cloud/jobs")
        self.assertEqual(status, 200)


class TrustedProxyKeyedTest(BreakTest):
    """Keys and a trusted proxy on loopback: the client address feeds the
    login limit and the audit trail."""

    keys_env = True
    extra_env = {"JOBWIRE_TRUSTED_PROXIES": "127.0.0.1/32", "JOBWIRE_LOGIN_RATE_LIMIT": "2"}

    def test_forged_header_keeps_login_limit(self):
        statuses = []
        for i in range(4):
            headers = [("X-Forwarded-For", f"198.51.100.{i + 1}"), ("X-Forwarded-For", REMOTE)]
            statuses.append(self.login(f"guess-{i}", headers)[0])
        self.assertEqual(statuses, [401, 401, 429, 429])

    def test_audit_records_proxy_appended_address(self):
        headers = [("X-Forwarded-For", "10.9.9.9"), ("X-Forwarded-For", REMOTE)]
        status, _, _ = self.send("POST", "/api/cloud/jobs/sync", headers + bearer("reader"))
        self.assertEqual(status, 403)
        entries = wait_until(self.audit_entries, what="an audit entry")
        self.assertEqual(entries[0]["action"], "jobs.sync")
        self.assertEqual(entries[0]["ip"], REMOTE)

    def test_ipv6_login_limit_covers_the_prefix(self):
        # An IPv6 host is often assigned a whole /64, so a per-address
        # limit lets it guess without end.
        statuses = []
        for i in range(4):
            headers = [("X-Forwarded-For", f"2001:db8:0:1::{i + 1:x}")]
            statuses.append(self.login(f"guess-{i}", headers)[0])
        self.assertEqual(statuses, [401, 401, 429, 429])


class KeyGuessingTest(BreakTest):
    keys_env = True
    extra_env = {"JOBWIRE_LOGIN_RATE_LIMIT": "2"}

    def test_bearer_guesses_share_login_limit(self):
        # The login limit exists to slow key guessing. Every API route
        # checks a Bearer key as well, so guesses there must count too.
        results = []
        for i in range(5):
            status, headers, body = self.send(
                "GET", "/api/cloud/jobs", [("Authorization", f"Bearer guess-{i:04d}")])
            results.append((status, json.loads(body)["error"], "retry-after" in headers))
        self.assertEqual(results[:2], [(401, "invalid_api_key", False)] * 2)
        self.assertEqual(results[2:], [(429, "rate_limited", True)] * 3)

    def test_login_limit_while_redis_down(self):
        self.redis.stop()
        statuses = [self.login(f"guess-{i}")[0] for i in range(4)]
        self.assertIn(statuses[0], (401, 503))
        self.assertIn(statuses[1], (401, 503))
        # Without a counter, guesses past the limit must not reach the key check.
        self.assertIn(statuses[2], (429, 503))
        self.assertIn(statuses[3], (429, 503))


class AuditFloodTest(BreakTest):
    keys_env = True
    extra_env = {"JOBWIRE_AUDIT_MAXLEN": "100"}

    def test_refused_calls_cannot_evict_entries(self):
        status, _, _ = self.send("PUT", "/api/cloud/polling/setting", bearer("operator"),
                                 b'{"enabled": null}')
        self.assertEqual(status, 200)
        wait_until(lambda: any(e["action"] == "polling.setting" for e in self.audit_entries()),
                   what="the operator's audit entry")

        # A stranger without a key sends refused changes on one connection.
        conn = http.client.HTTPConnection("127.0.0.1", self.jw.port, timeout=10)
        rejected = 0
        for _ in range(300):
            conn.request("POST", "/api/cloud/jobs/sync")
            r = conn.getresponse()
            r.read()
            rejected += r.status in (401, 429)
        conn.close()
        self.assertEqual(rejected, 300)

        time.sleep(0.3)
        entries = self.audit_entries()
        operator_entries = [e for e in entries if (e["action"], e["key"]) == ("polling.setting", "operator")]
        anonymous = sum(1 for e in entries if e["key"] == "-")
        self.assertEqual(len(operator_entries), 1, f"{len(entries)} entries, {anonymous} of them anonymous")


class AuditJobIdTest(BreakTest):
    keys_env = True

    def delete_and_audit(self, path):
        status, _, _ = self.send("DELETE", path, bearer("admin"))
        self.assertEqual(status, 404)
        entries = wait_until(lambda: [e for e in self.audit_entries()
                                      if e["action"] == "job.delete"], what="a job.delete entry")
        return entries[0]["job_id"]

    def test_nul_in_id_names_no_other_job(self):
        job_id = self.delete_and_audit("/api/cloud/jobs/real-job%00other")
        self.assertNotEqual(job_id, "real-job")

    def test_control_characters_are_not_stored(self):
        job_id = self.delete_and_audit(
            "/api/cloud/jobs/x%0A2026-12-04T00:00:00.000Z%20info%20auth:%20login%20key=admin")
        self.assertNotIn("\n", job_id)
        self.assertNotIn("\r", job_id)


class LoginDetailTest(BreakTest):
    keys_env = True
    extra_env = {"JOBWIRE_LOGIN_RATE_LIMIT": "100"}

    def test_key_with_nul_is_not_the_key(self):
        body = json.dumps({"key": KEYS["admin"][1] + "\u0000anything"}).encode()
        status, headers, reply = self.send("POST", "/api/auth/login",
                                           [("Content-Type", "application/json")], body)
        self.assertEqual(status, 400, reply)
        self.assertEqual(json.loads(reply), {"error": "invalid_body",
                                             "message": "the key must not contain a NUL character"})
        self.assertNotIn("set-cookie", headers)

    def test_form_content_type_cannot_log_in(self):
        # A cross-site <form enctype="text/plain"> can send this body
        # without a preflight, which logs the victim into the attacker's key.
        body = json.dumps({"key": KEYS["reader"][1]}).encode()
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            status, headers, _ = self.send("POST", "/api/auth/login",
                                           [("Content-Type", content_type)], body)
            self.assertEqual(status, 415, content_type)
            self.assertNotIn("set-cookie", headers, content_type)

    def test_forged_cookie_hides_key_names(self):
        messages = {}
        for name in ("admin", "no-such-key"):
            value = f"v1:{name}:9999999999:{'0' * 32}:{'0' * 64}"
            status, _, body = self.send("GET", "/api/cloud/jobs",
                                        [("Cookie", f"jw_session={value}")])
            self.assertEqual(status, 401)
            messages[name] = json.loads(body)["message"]
        self.assertEqual(messages["admin"], messages["no-such-key"])


class StreamRevocationTest(BreakTest):
    keys_env = True
    extra_env = {"JOBWIRE_SSE_HEARTBEAT": "1"}

    def assert_stream_ends(self, stream, within, reason):
        """The stream may give its reason in one reset event, then must end."""
        deadline = time.monotonic() + within
        reason_seen = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"the event stream is still open after {within} s")
            try:
                event = stream.next_change(timeout=left)
            except EOFError:
                return
            except TimeoutError:
                continue
            if event["event"] == "reset" and event["data"] == {"reason": reason} and not reason_seen:
                reason_seen = True
                continue
            self.fail(f"the event stream delivered {event}")

    def test_stream_ends_when_key_is_removed(self):
        stream = SSEStream(self.jw, headers=dict(bearer("reader")))
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.next_event()["event"], "connected")

        path = self.jobwire_env["JOBWIRE_API_KEYS_FILE"]
        write_key_file(self.key_dir, {k: v for k, v in KEYS.items() if k != "reader"})
        self.assertTrue(os.path.exists(path))
        self.jw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP: reloaded 2 API keys" in self.jw.log(), what="reload")
        status, _, _ = self.send("GET", "/api/cloud/jobs", bearer("reader"))
        self.assertEqual(status, 401)

        self.jw.webhook({"id": "after-revoke", "status": "processing",
                         "created_at": "2025-07-01T10:00:00.000Z",
                         "destination": "example-org/model", "logs": ""})
        self.assert_stream_ends(stream, within=3, reason="key_revoked")

    def test_stream_ends_when_session_expires(self):
        cookie = signed_cookie("reader", int(time.time()) + 2)
        stream = SSEStream(self.jw, headers={"Cookie": f"jw_session={cookie}"})
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.next_event()["event"], "connected")
        time.sleep(3)
        status, _, _ = self.send("GET", "/api/cloud/jobs", [("Cookie", f"jw_session={cookie}")])
        self.assertEqual(status, 401)
        self.assert_stream_ends(stream, within=3, reason="session_expired")


class KeyFileLeakTest(BreakTest):
    keys_env = True

    # A key written in the ROLES column, as in "NAME KEY ROLES".
    SWAPPED = "ops r8_live_Zq81mP0vXw3kT6yB2nH9cLr4 read,operate\n"
    LEAKED = "r8_live_Zq81mP0vXw3kT6yB2nH9cLr4"

    def test_check_config_hides_swapped_key(self):
        path = os.path.join(self.key_dir, "swapped")
        with open(path, "w") as f:
            f.write(self.SWAPPED)
        env = {"PATH": os.environ.get("PATH", ""), "JOBWIRE_API_KEYS_FILE": path,
               "ASAN_OPTIONS": "detect_leaks=0"}
        p = subprocess.run([JOBWIRE, "--check-config"], env=env, capture_output=True, text=True,
                           timeout=30)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assertIn(f"{path}: line 1:", out)
        self.assertNotIn(self.LEAKED, out)
        self.assertNotIn(self.LEAKED[:16], out)

    def test_reload_log_hides_swapped_key(self):
        with open(self.jobwire_env["JOBWIRE_API_KEYS_FILE"], "w") as f:
            f.write(self.SWAPPED)
        self.jw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP: the key file was not reloaded" in self.jw.log(),
                   what="the failed reload")
        self.assertEqual(self.jw.log().count(self.LEAKED[:16]), 0, "the key is in the log")
