#!/usr/bin/env python3
"""A fake Replicate HTTP API for jobwire's tests and demos.

It serves the parts of Replicate's v1 API that jobwire uses (trainings and
predictions with cursor pagination, cancel, account, the default webhook
secret, training creation), moves jobs through starting -> processing ->
a terminal status on a schedule or on request, injects faults, enforces a
rate limit, and sends signed Standard Webhooks deliveries like Replicate.
Everything is driven through a JSON control API under /_control/.

Standard library only. The server binds 127.0.0.1 and nothing else, and it
opens outgoing connections only to webhook URLs it is given: loopback URLs,
or any URL when started with --allow-remote-webhooks.

Run: python3 fake_replicate.py [--port N] [--token T] [--secret whsec_...]
The first stdout line is "listening on http://127.0.0.1:PORT", the second
the API base URL.
"""
import argparse
import base64
import copy
import datetime
import hashlib
import heapq
import hmac
import http
import http.client
import http.server
import ipaddress
import itertools
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES_DIR = os.path.join(os.path.dirname(HERE), "fixtures", "replicate")

ACTIVE_STATUSES = ("starting", "processing")
TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES
# Webhook event types, as accepted in webhook_events_filter.
EVENT_TYPES = ("start", "output", "logs", "completed")
# The webhook event a change to an active status sends; terminal ones send "completed".
STATUS_EVENTS = {"starting": "start", "processing": "logs"}
# Replicate ids are 26 characters of lowercase Crockford-style base32.
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# List items carry no logs and none of the per-job webhook settings.
LIST_OMITTED_FIELDS = ("logs", "webhook", "webhook_events_filter", "webhook_completed",
                       "destination")
MAX_REQUEST_BODY = 64 * 1024 * 1024
MAX_WEBHOOK_RESPONSE_BODY = 64 * 1024
TICK_SECONDS = 0.05

DEFAULT_SETTINGS = {
    "tokens": [],
    "secret": None,
    "account": {
        "type": "user",
        "username": "fake-user",
        "name": "Fake User",
        "github_url": "https://github.com/fake-user",
    },
    "page_size": 100,
    "phase_seconds": {"starting": 2.0, "processing": 6.0},
    "auto_advance": True,
    "outcome": "succeeded",
    "ts_digits": 6,
    "auto_webhooks": True,
    "webhook_retry_seconds": 60.0,
    "webhook_retry_initial": 1.0,
    "webhook_timeout": 10.0,
    "create_get_url_quirk": False,
    "trailing_empty_page": False,
    "trailing_newline": False,
}

DEFAULT_MODELS = {
    "training": ("fake-org/lora-trainer",
                 hashlib.sha256(b"fake-org/lora-trainer").hexdigest()),
    "prediction": ("fake-org/image-model",
                   hashlib.sha256(b"fake-org/image-model").hexdigest()),
}

# Used only when a fixture file cannot be read, so the fake still starts
# from a copy of this file that has no fixtures next to it.
FALLBACK_ERROR_BODIES = {
    "401": {"title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token", "status": 401},
    "402": {"title": "Insufficient credit",
            "detail": "You have insufficient credit to run this model.", "status": 402},
    "404-training-destination": {
        "detail": "The specified training destination does not exist", "status": 404},
    "429-documented": {"detail": "Request was throttled. Expected available in 1 second."},
    "429-low-credit-observed": {
        "detail": "Request was throttled. Your rate limit resets in ~5s.",
        "status": 429, "retry_after": 5},
}


class ControlError(Exception):
    """A rejected control or API request, sent back as a JSON error."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------
# Timestamps, ids, signing


TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp_ns(text):
    """Parse an ISO 8601 UTC timestamp with 0-9 fractional digits into Unix nanoseconds."""
    match = TIMESTAMP_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"invalid timestamp {text!r}: expected ISO 8601 like "
                         "2025-06-10T09:14:02.118304Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(9, "0")
    zone = match.group(8)
    offset_seconds = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset_seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        if zone[0] == "-":
            offset_seconds = -offset_seconds
    moment = datetime.datetime(year, month, day, hour, minute, second,
                               tzinfo=datetime.timezone.utc)
    return (int(moment.timestamp()) - offset_seconds) * 10**9 + int(fraction)


def format_timestamp(ns, digits=6):
    """Format Unix nanoseconds as Replicate does: UTC, `digits` fractional digits, Z."""
    seconds, fraction = divmod(ns, 10**9)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits > 0:
        text += "." + f"{fraction:09d}"[:digits]
    return text + "Z"


def new_job_id(rng):
    return "".join(rng.choice(ID_ALPHABET) for _ in range(26))


def new_webhook_id():
    return "msg_" + secrets.token_hex(12)


def decode_webhook_secret(secret):
    """Return the HMAC key of a whsec_ secret, or raise ValueError."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ValueError("webhook secret must be a string starting with whsec_")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except ValueError:
        raise ValueError("webhook secret after whsec_ is not valid base64") from None
    if not key:
        raise ValueError("webhook secret has an empty key")
    return key


def sign_webhook(secret, webhook_id, timestamp, body):
    """Return a Standard Webhooks v1 signature: HMAC-SHA256 over id.timestamp.body."""
    key = decode_webhook_secret(secret)
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def generate_webhook_secret():
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# ---------------------------------------------------------------------------
# Webhook URLs and delivery


def check_webhook_url(url, allow_remote):
    """Return why `url` must not be called, or None when it may be.

    Without allow_remote only loopback hosts pass: literal 127.0.0.0/8 or ::1
    addresses, or "localhost" when every address it resolves to is loopback.
    """
    if not isinstance(url, str) or not url:
        return "webhook URL must be a non-empty string"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"webhook URL {url!r} must use http or https"
    host = parts.hostname
    if not host:
        return f"webhook URL {url!r} has no host"
    try:
        parts.port
    except ValueError:
        return f"webhook URL {url!r} has an invalid port"
    if allow_remote:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host.lower() == "localhost":
            try:
                infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
            except OSError as e:
                return f"webhook host localhost does not resolve: {e}"
            if infos and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos):
                return None
    return (f"webhook URL {url!r} is not on loopback; start the fake with "
            "--allow-remote-webhooks to call other hosts")


def post_webhook(url, body, webhook_id, secret, *, allow_remote, timeout,
                 timestamp_offset=0, extra_secrets=(), corrupt_signature=False):
    """POST one signed delivery and return {"status", "body", "error"}.

    Redirects are not followed, like Replicate. `status` is None when no
    HTTP response arrived, and `error` then gives the reason.
    """
    rejection = check_webhook_url(url, allow_remote)
    if rejection:
        return {"status": None, "body": None, "error": rejection, "rejected": True}
    timestamp = int(time.time()) + int(timestamp_offset)
    signatures = [sign_webhook(s, webhook_id, timestamp, body) for s in extra_secrets]
    signature = sign_webhook(secret, webhook_id, timestamp, body)
    if corrupt_signature:
        signature = sign_webhook(secret, webhook_id, timestamp, body + b" ")
    signatures.append(signature)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fake-replicate-webhooks/1",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(MAX_WEBHOOK_RESPONSE_BODY)
        return {"status": response.status, "body": answer.decode("utf-8", "replace"),
                "error": None, "timestamp": timestamp}
    except (OSError, http.client.HTTPException) as e:
        return {"status": None, "body": None, "error": f"{type(e).__name__}: {e}",
                "timestamp": timestamp}
    finally:
        connection.close()


# ---------------------------------------------------------------------------
# Jobs


class Job:
    """One training or prediction and the schedule that moves it along."""

    def __init__(self, kind, job_id, created_ns, origin, options):
        self.kind = kind
        self.id = job_id
        self.origin = origin
        self.ts_digits = options.get("ts_digits", 6)
        self.created_ns = created_ns
        self.created_at = format_timestamp(created_ns, self.ts_digits)
        self.started_at = None
        self.completed_at = None

        default_model, default_version = DEFAULT_MODELS[kind]
        self.model = options.get("model", default_model)
        self.version = options.get("version", default_version)
        self.destination = options.get("destination")
        self.input = options.get("input", {})
        self.source = options.get("source", "api")
        self.webhook = options.get("webhook")
        self.webhook_events_filter = list(options.get("webhook_events_filter") or EVENT_TYPES)

        self.status = "starting"
        self.logs = None
        self.output = None
        self.error = None
        self.metrics = {}
        self.metrics_explicit = False
        self.output_explicit = False
        self.urls_extra = {}
        self.extra = {"data_removed": False} if kind == "prediction" else {
            "webhook_completed": None}

        # Schedule: with `auto` the job leaves each active status after
        # phase_seconds[status] seconds and ends in `outcome`.
        self.auto = options.get("auto", False)
        self.phase_seconds = dict(options.get("phase_seconds") or {})
        self.outcome = options.get("outcome", "succeeded")
        self.phase_started = time.monotonic()

        # Generated logs: a preamble, then `log_lines` progress lines of
        # which `log_index` are already in self.logs.
        if kind == "training":
            self.steps = options.get("steps", 300)
            self.log_lines = options.get("log_lines", 6)
        else:
            self.steps = options.get("steps", 30)
            self.log_lines = options.get("log_lines", 10)
        self.epochs = options.get("epochs", 3)
        self.error_message = options.get("error", "CUDA out of memory. Tried to allocate "
                                                  "2.50 GiB on GPU 0.")
        self.log_index = 0
        self.preamble_done = False

    # -- construction from an explicit object --------------------------------

    KNOWN_FIELDS = ("id", "model", "version", "destination", "input", "source", "urls",
                    "webhook", "webhook_events_filter", "created_at", "status", "started_at",
                    "completed_at", "output", "error", "logs", "metrics")

    @classmethod
    def from_object(cls, kind, obj, origin, options, rng, now_ns):
        """Build a job from a Replicate-shaped object, keeping its timestamp strings."""
        if not isinstance(obj, dict):
            raise ControlError(400, "invalid_body", "each job must be a JSON object")
        merged = dict(options)
        for field in ("model", "version", "destination", "input", "source", "webhook",
                      "webhook_events_filter"):
            if field in obj:
                merged[field] = obj[field]
        job_id = obj.get("id") or new_job_id(rng)
        if not isinstance(job_id, str):
            raise ControlError(400, "invalid_parameter", "job id must be a string")

        created_at = obj.get("created_at")
        if created_at is None:
            created_ns = now_ns
        else:
            created_ns = parse_timestamp_or_raise(created_at, "created_at")
        job = cls(kind, job_id, created_ns, origin, merged)
        if created_at is not None:
            job.created_at = created_at

        status = obj.get("status", "starting")
        if status not in STATUSES:
            raise ControlError(400, "invalid_parameter",
                               f"status {status!r} must be one of {', '.join(STATUSES)}")
        job.status = status
        for field in ("started_at", "completed_at"):
            value = obj.get(field)
            if value is not None:
                parse_timestamp_or_raise(value, field)
            setattr(job, field, value)

        job.logs = obj.get("logs")
        job.output = obj.get("output")
        job.output_explicit = job.output is not None
        job.error = obj.get("error")
        job.metrics = obj.get("metrics") or {}
        job.metrics_explicit = bool(job.metrics)
        job.preamble_done = job.logs is not None or status != "starting"

        urls = obj.get("urls") or {}
        job.urls_extra = {k: v for k, v in urls.items() if k not in ("get", "cancel", "web")}
        job.extra = {k: v for k, v in obj.items() if k not in cls.KNOWN_FIELDS and k != "kind"}
        return job

    # -- generated content ----------------------------------------------------

    def preamble_lines(self):
        if self.kind == "training":
            return ["Loading training data from input_images",
                    "Preprocessing 18 images",
                    "Warming up for 10 steps"]
        return ["Using seed: 4242", "Loading pipeline"]

    def progress_line(self, k):
        """Return progress line k of 1..log_lines."""
        step = max(1, round(k * self.steps / self.log_lines))
        if self.kind == "training":
            epoch = max(1, math.ceil(step * self.epochs / self.steps))
            loss = 0.45 * (0.85 ** (k - 1))
            return f"epoch {epoch}/{self.epochs} step {step}/{self.steps} loss {loss:.4f}"
        percent = step * 100 // self.steps
        bar = "\u2588" * (percent // 10) + " " * (10 - percent // 10)
        return (f"{percent:3d}%|{bar}| {step}/{self.steps} "
                f"[00:{k:02d}<00:{self.log_lines - k:02d}, 12.4{k % 10}it/s]")

    def epilogue_lines(self):
        if self.kind == "training":
            return ["Saving checkpoint to output/lora.safetensors", "Uploading weights"]
        return ["Generated image in 2.61s"]

    def failure_lines(self):
        source = "/src/train.py" if self.kind == "training" else "/src/predict.py"
        return ["Traceback (most recent call last):",
                f'  File "{source}", line 412, in run',
                f"RuntimeError: {self.error_message}"]

    def generated_output(self):
        if self.kind == "training":
            destination = self.destination or "fake-user/trained-model"
            digest = hashlib.sha256(self.id.encode()).hexdigest()
            return {"version": f"{destination}:{digest}",
                    "weights": f"{self.origin}/files/{self.id}/trained_model.tar"}
        return [f"{self.origin}/files/{self.id}/out-0.webp"]

    def append_lines(self, lines):
        if not lines:
            return
        self.logs = (self.logs or "") + "".join(line + "\n" for line in lines)

    def ensure_preamble(self):
        if not self.preamble_done:
            self.append_lines(self.preamble_lines())
            self.preamble_done = True
        if self.logs is None:
            self.logs = ""

    def add_progress_lines(self, upto):
        """Append progress lines until `upto` of them are in the logs; return True if any."""
        upto = min(upto, self.log_lines)
        if upto <= self.log_index:
            return False
        self.ensure_preamble()
        self.append_lines([self.progress_line(k) for k in range(self.log_index + 1, upto + 1)])
        self.log_index = upto
        return True

    def grow_logs(self, fraction):
        """Append the progress lines due at `fraction` (0-1) of the processing phase."""
        return self.add_progress_lines(math.floor(fraction * self.log_lines + 1e-9))

    # -- status changes -------------------------------------------------------

    def timestamp_ns(self, field):
        value = getattr(self, field)
        return None if value is None else parse_timestamp_ns(value)

    def compute_metrics(self):
        completed = self.timestamp_ns("completed_at")
        started = self.timestamp_ns("started_at")
        created = self.timestamp_ns("created_at")
        metrics = {}
        if started is not None and completed is not None:
            metrics["predict_time"] = round((completed - started) / 1e9, 6)
        if completed is not None:
            metrics["total_time"] = round((completed - created) / 1e9, 6)
        return metrics

    def transition(self, status, now_ns):
        """Move to `status` at `now_ns`, filling timestamps, logs, output and metrics.

        Returns True when the status changed. Backward moves (a terminal job
        set to an active status) are allowed so tests can build odd histories.
        """
        if status == self.status:
            return False
        now = format_timestamp(now_ns, self.ts_digits)
        if status == "starting":
            self.started_at = self.completed_at = None
            self.output = self.error = self.logs = None
            self.log_index = 0
            self.preamble_done = False
            if not self.metrics_explicit:
                self.metrics = {}
        elif status == "processing":
            self.started_at = self.started_at or now
            self.completed_at = None
            self.error = None
            if not self.output_explicit:
                self.output = None
            if not self.metrics_explicit:
                self.metrics = {}
            self.ensure_preamble()
        else:
            if status != "canceled" or self.status == "processing":
                self.started_at = self.started_at or now
            if self.started_at is not None:
                self.ensure_preamble()
            if status == "succeeded":
                self.add_progress_lines(self.log_lines)
                self.append_lines(self.epilogue_lines())
                if not self.output_explicit:
                    self.output = self.generated_output()
                self.error = None
            elif status == "failed":
                self.add_progress_lines(max(self.log_index, self.log_lines // 2))
                self.append_lines(self.failure_lines())
                self.error = self.error_message
            self.completed_at = now
            if not self.metrics_explicit:
                self.metrics = self.compute_metrics()
        self.status = status
        self.phase_started = time.monotonic()
        return True

    # -- rendering ------------------------------------------------------------

    def to_dict(self, api_base, list_item=False, get_url_quirk=False):
        """Return the job as Replicate's API shows it, with URLs under `api_base`."""
        collection = "trainings" if self.kind == "training" else "predictions"
        get_collection = "predictions" if get_url_quirk else collection
        origin = api_base[:-len("/v1")] if api_base.endswith("/v1") else api_base

        result = {"id": self.id, "model": self.model, "version": self.version}
        if self.kind == "training" and self.destination is not None:
            result["destination"] = self.destination
        result["input"] = self.input
        result["source"] = self.source

        urls = {"get": f"{api_base}/{get_collection}/{self.id}",
                "cancel": f"{api_base}/{collection}/{self.id}/cancel",
                "web": f"{origin}/p/{self.id}"}
        urls.update(self.urls_extra)
        result["urls"] = urls
        if self.webhook is not None:
            result["webhook"] = self.webhook
            result["webhook_events_filter"] = self.webhook_events_filter

        result.update({
            "created_at": self.created_at,
            "status": self.status,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "output": self.output,
            "error": self.error,
            "logs": self.logs,
            "metrics": self.metrics,
        })
        result.update(self.extra)
        if list_item:
            for field in LIST_OMITTED_FIELDS:
                result.pop(field, None)
        return copy.deepcopy(result)

    def control_view(self, api_base):
        return {"kind": self.kind, "auto": self.auto, "outcome": self.outcome,
                "phase_seconds": self.phase_seconds, "ts_digits": self.ts_digits,
                "object": self.to_dict(api_base)}

    def snapshot(self, status, api_base, fraction=1.0):
        """Return the object as it would look in `status`, without changing the job.

        The webhook sender uses it to send states the job has not reached.
        A processing snapshot carries the first `fraction` of the log lines.
        """
        if status == self.status and (status != "processing" or fraction >= 1.0):
            return self.to_dict(api_base)
        view = copy.deepcopy(self)
        if status in TERMINAL_STATUSES:
            view.transition(status, time.time_ns())
            return view.to_dict(api_base)
        if status == "starting":
            view.transition("starting", time.time_ns())
            return view.to_dict(api_base)
        if view.status == "starting":
            view.transition("processing", time.time_ns())
        lines = (view.logs or "").splitlines()
        if view.status == "processing":
            lines += [view.progress_line(k) for k in range(view.log_index + 1,
                                                            view.log_lines + 1)]
        result = view.to_dict(api_base)
        keep = max(1, math.ceil(len(lines) * fraction)) if lines else 0
        result.update({"status": "processing", "completed_at": None, "error": None,
                       "output": None, "metrics": {},
                       "logs": "".join(line + "\n" for line in lines[:keep])})
        if result["started_at"] is None:
            result["started_at"] = format_timestamp(time.time_ns(), self.ts_digits)
        return result


def parse_timestamp_or_raise(value, field):
    try:
        return parse_timestamp_ns(value)
    except ValueError as e:
        raise ControlError(400, "invalid_parameter", f"{field}: {e}") from None


# ---------------------------------------------------------------------------
# Validation helpers for control requests


def require_type(value, types, name):
    """Return `value` if it is an instance of `types`; a bool passes only as bool."""
    kinds = types if isinstance(types, tuple) else (types,)
    valid = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not valid:
        expected = " or ".join(t.__name__ for t in kinds)
        raise ControlError(400, "invalid_parameter",
                           f"{name} must be {expected}, got {json.dumps(value)}")
    return value


def require_number(value, name, minimum=0.0):
    require_type(value, (int, float), name)
    if value < minimum or value != value:
        raise ControlError(400, "invalid_parameter", f"{name} must be >= {minimum}")
    return float(value)


def require_int(value, name, minimum, maximum=None):
    require_type(value, int, name)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
        raise ControlError(400, "invalid_parameter", f"{name} must be {bound}, got {value}")
    return value


def require_status(value, name, allowed=STATUSES):
    if value not in allowed:
        raise ControlError(400, "invalid_parameter",
                           f"{name} {value!r} must be one of {', '.join(allowed)}")
    return value


def validate_events_filter(value, name="webhook_events_filter"):
    if not isinstance(value, list) or not all(v in EVENT_TYPES for v in value):
        raise ControlError(400, "invalid_parameter",
                           f"{name} must be a list of {', '.join(EVENT_TYPES)}")
    return value


def validate_phase_seconds(value, base):
    require_type(value, dict, "phase_seconds")
    result = dict(base)
    for phase, seconds in value.items():
        require_status(phase, "phase_seconds key", ACTIVE_STATUSES)
        result[phase] = require_number(seconds, f"phase_seconds.{phase}")
    return result


def validate_settings(patch, current):
    """Return `current` updated with the validated fields of `patch`."""
    require_type(patch, dict, "settings")
    result = copy.deepcopy(current)
    for key, value in patch.items():
        if key == "token":
            result["tokens"] = [] if value is None else [require_type(value, str, "token")]
        elif key == "tokens":
            require_type(value, list, "tokens")
            result["tokens"] = [require_type(t, str, "tokens[]") for t in value]
        elif key == "secret":
            try:
                decode_webhook_secret(value)
            except ValueError as e:
                raise ControlError(400, "invalid_parameter", str(e)) from None
            result["secret"] = value
        elif key == "account":
            result["account"] = require_type(value, dict, "account")
        elif key == "page_size":
            result["page_size"] = require_int(value, "page_size", 1, 1000)
        elif key == "phase_seconds":
            result["phase_seconds"] = validate_phase_seconds(value, result["phase_seconds"])
        elif key == "outcome":
            result["outcome"] = require_status(value, "outcome", TERMINAL_STATUSES)
        elif key == "ts_digits":
            result["ts_digits"] = require_int(value, "ts_digits", 0, 9)
        elif key in ("webhook_retry_seconds", "webhook_retry_initial", "webhook_timeout"):
            result[key] = require_number(value, key)
        elif key in ("auto_advance", "auto_webhooks", "create_get_url_quirk",
                     "trailing_empty_page", "trailing_newline"):
            result[key] = require_type(value, bool, key)
        else:
            raise ControlError(400, "invalid_parameter", f"unknown setting {key!r}")
    return result


# ---------------------------------------------------------------------------
# Faults and rate limit


class Fault:
    """A planned misbehaviour for the next `count` matching API requests."""

    def __init__(self, fault_id, spec):
        require_type(spec, dict, "fault")
        known = {"status", "count", "forever", "path_prefix", "method", "retry_after",
                 "body_retry_after", "body", "raw_body", "content_type", "delay", "drop"}
        unknown = set(spec) - known
        if unknown:
            raise ControlError(400, "invalid_parameter",
                               f"unknown fault field(s): {', '.join(sorted(unknown))}")

        self.id = fault_id
        self.status = spec.get("status")
        if self.status is not None:
            require_int(self.status, "status", 400, 599)
        self.count = require_int(spec.get("count", 1), "count", 1)
        self.forever = require_type(spec.get("forever", False), bool, "forever")

        self.path_prefix = require_type(spec.get("path_prefix", "/v1/"), str, "path_prefix")
        self.method = spec.get("method")
        if self.method is not None:
            self.method = require_type(self.method, str, "method").upper()

        self.retry_after = spec.get("retry_after")
        if self.retry_after is not None:
            require_type(self.retry_after, (int, float, str), "retry_after")
        self.body_retry_after = spec.get("body_retry_after")
        if self.body_retry_after is not None:
            require_number(self.body_retry_after, "body_retry_after")
        self.body = spec.get("body")
        self.raw_body = spec.get("raw_body")
        if self.raw_body is not None:
            require_type(self.raw_body, str, "raw_body")
        self.content_type = spec.get("content_type")

        self.delay = require_number(spec.get("delay", 0), "delay")
        self.drop = spec.get("drop")
        if self.drop is True:
            self.drop = "close"
        if self.drop not in (None, False, "close", "reset", "truncate"):
            raise ControlError(400, "invalid_parameter",
                               "drop must be true, \"close\", \"reset\" or \"truncate\"")
        if self.status is None and not self.delay and not self.drop:
            raise ControlError(400, "invalid_parameter",
                               "a fault needs a status, a delay or drop")
        self.used = 0

    def matches(self, method, path):
        return (path.startswith(self.path_prefix)
                and (self.method is None or self.method == method))

    def describe(self):
        return {"id": self.id, "status": self.status, "count": self.count,
                "forever": self.forever, "used": self.used, "path_prefix": self.path_prefix,
                "method": self.method, "retry_after": self.retry_after,
                "body_retry_after": self.body_retry_after, "delay": self.delay,
                "drop": self.drop or None}


class RateLimit:
    """A sliding-window limit of `per_window` requests per token."""

    def __init__(self, spec):
        require_type(spec, dict, "rate limit")
        self.per_window = require_int(spec.get("per_minute"), "per_minute", 1)
        self.window = require_number(spec.get("window_seconds", 60), "window_seconds", 0.001)
        self.body_retry_after = require_type(spec.get("body_retry_after", False), bool,
                                             "body_retry_after")
        self.count_rejected = require_type(spec.get("count_rejected", True), bool,
                                           "count_rejected")
        self.windows = {}

    def check(self, key, now):
        """Count one request by `key` at monotonic time `now`.

        Returns None when allowed, else the seconds until a request would be
        allowed again (at least 1, rounded up).
        """
        times = self.windows.setdefault(key, [])
        while times and times[0] <= now - self.window:
            times.pop(0)
        if len(times) < self.per_window:
            times.append(now)
            return None
        if self.count_rejected:
            times.append(now)
        # The next request passes once enough entries left the window that
        # it fits: len(times) - per_window + 1 of them must expire.
        expire_index = len(times) - self.per_window
        wait = times[expire_index] + self.window - now
        return max(1, math.ceil(wait))

    def describe(self):
        return {"per_minute": self.per_window, "window_seconds": self.window,
                "body_retry_after": self.body_retry_after,
                "count_rejected": self.count_rejected,
                "counts": {key: len(times) for key, times in self.windows.items()}}


# ---------------------------------------------------------------------------
# State


class State:
    """All mutable state of the fake. Callers take `lock` before any access."""

    def __init__(self, initial_settings, fixtures, seed=None):
        self.lock = threading.RLock()
        self.initial_settings = initial_settings
        self.fixtures = fixtures
        self.rng = random.Random(seed)
        self.origin = "http://127.0.0.1:0"
        self.allow_remote_webhooks = False
        self.webhook_worker = None
        self.release = threading.Event()
        self.generation = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.settings = copy.deepcopy(self.initial_settings)
            self.jobs = {}
            self.faults = []
            self.fault_ids = itertools.count(1)
            self.rate_limit = None
            self.requests = []
            self.deliveries = []
            self.generation += 1
            # Wake requests held by delay faults, then arm a fresh event.
            self.release.set()
            self.release = threading.Event()
        if self.webhook_worker:
            self.webhook_worker.clear()

    @property
    def api_base(self):
        return self.origin + "/v1"

    # -- request log, faults, auth, rate limit ----------------------------------

    def log_request(self, method, path, query, token_state):
        entry = {"time": time.time(), "method": method, "path": path, "query": query,
                 "token": token_state, "status": None}
        with self.lock:
            self.requests.append(entry)
        return entry

    def take_fault(self, method, path):
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.used += 1
                    if not fault.forever and fault.used >= fault.count:
                        self.faults.remove(fault)
                    return fault
        return None

    def token_state(self, authorization):
        """Return "none", "valid" or "invalid" for an Authorization header value."""
        if not authorization:
            return "none"
        scheme, _, token = authorization.partition(" ")
        with self.lock:
            tokens = self.settings["tokens"]
        if scheme.lower() == "bearer" and token.strip() in tokens:
            return "valid"
        return "invalid"

    def auth_required(self):
        with self.lock:
            return bool(self.settings["tokens"])

    def check_rate_limit(self, key):
        with self.lock:
            if self.rate_limit is None:
                return None
            return self.rate_limit.check(key, time.monotonic())

    # -- jobs -------------------------------------------------------------------

    def add_job(self, job, replace=False):
        with self.lock:
            if job.id in self.jobs and not replace:
                raise ControlError(409, "job_exists",
                                   f"job {job.id} already exists; pass \"replace\": true "
                                   "to overwrite it")
            self.jobs[job.id] = job
            if job.status == "starting":
                self.emit(job, "start")

    def get_job(self, job_id, kind=None):
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or (kind is not None and job.kind != kind):
                return None
            return job

    def set_status(self, job, status, now_ns=None):
        """Move `job` to `status` and queue the webhook delivery for the change."""
        with self.lock:
            changed = job.transition(status, now_ns or time.time_ns())
            if changed:
                self.emit(job, STATUS_EVENTS.get(status, "completed"))
            return changed

    def next_status(self, job):
        if job.status == "starting":
            return "processing"
        if job.status == "processing":
            return job.outcome
        return None

    def tick(self):
        """Advance every scheduled job whose phase has run out; grow logs of running ones."""
        now = time.monotonic()
        with self.lock:
            for job in list(self.jobs.values()):
                if job.auto and job.status in ACTIVE_STATUSES:
                    self.advance_scheduled(job, now)

    def advance_scheduled(self, job, now):
        while job.status in ACTIVE_STATUSES:
            duration = job.phase_seconds.get(job.status,
                                             self.settings["phase_seconds"][job.status])
            elapsed = now - job.phase_started
            if job.status == "processing":
                fraction = 1.0 if duration <= 0 else min(1.0, elapsed / duration)
                if job.grow_logs(fraction):
                    self.emit(job, "logs")
            if elapsed < duration:
                return
            phase_end = job.phase_started + duration
            self.set_status(job, self.next_status(job))
            # The next phase starts when this one ended, so a late tick does
            # not stretch the schedule.
            job.phase_started = phase_end

    def list_page(self, kind, cursor, api_base):
        """Return one page of `kind` jobs, newest first, as Replicate's list endpoints do."""
        with self.lock:
            jobs = sorted((j for j in self.jobs.values() if j.kind == kind),
                          key=lambda j: (j.created_ns, j.id), reverse=True)
            keys = [(j.created_ns, j.id) for j in jobs]
            size = self.settings["page_size"]
            trailing_empty_page = self.settings["trailing_empty_page"]
            direction = boundary = None
            if cursor:
                direction, boundary = decode_cursor(cursor)
                if direction == "next":
                    start = sum(1 for key in keys if key >= boundary)
                    end = start + size
                else:
                    newer = sum(1 for key in keys if key > boundary)
                    if direction == "previous-inclusive":
                        newer = sum(1 for key in keys if key >= boundary)
                    end = newer
                    start = max(0, end - size)
            else:
                start, end = 0, size
            end = min(end, len(jobs))
            page = jobs[start:end]
            collection = f"{api_base}/{kind}s"
            next_url = previous_url = None
            if page and (end < len(jobs) or (trailing_empty_page and len(page) == size)):
                next_url = f"{collection}?cursor={encode_cursor('n', keys[end - 1])}"
            if page and start > 0:
                previous_url = f"{collection}?cursor={encode_cursor('p', keys[start])}"
            elif not page and direction == "next" and boundary in keys:
                previous_url = f"{collection}?cursor={encode_cursor('P', boundary)}"
            return {"next": next_url, "previous": previous_url,
                    "results": [j.to_dict(api_base, list_item=True) for j in page]}

    # -- webhooks ---------------------------------------------------------------

    def emit(self, job, event):
        """Queue an automatic delivery of `job` for `event` if its webhook wants it."""
        if not job.webhook or not self.settings["auto_webhooks"]:
            return
        if event not in job.webhook_events_filter:
            return
        body = encode_json(job.to_dict(self.api_base))
        if self.webhook_worker:
            self.webhook_worker.enqueue({
                "url": job.webhook, "body": body, "webhook_id": new_webhook_id(),
                "job_id": job.id, "event": event, "job_status": job.status,
                "final": job.status in TERMINAL_STATUSES, "attempt": 1,
                "first_attempt": time.monotonic(), "generation": self.generation,
            })


CURSOR_DIRECTIONS = {"n": "next", "p": "previous", "P": "previous-inclusive"}


def encode_cursor(direction, key):
    created_ns, job_id = key
    raw = f"{direction}|{created_ns}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, created_ns, job_id = raw.split("|", 2)
        return CURSOR_DIRECTIONS[direction], (int(created_ns), job_id)
    except (ValueError, KeyError, UnicodeDecodeError):
        raise ControlError(400, "invalid_cursor", "Invalid cursor") from None


def encode_json(value, trailing_newline=False):
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text + ("\n" if trailing_newline else "")).encode("utf-8")


# ---------------------------------------------------------------------------
# Automatic webhook sender


class WebhookWorker(threading.Thread):
    """Sends queued automatic deliveries in due order, retrying final ones."""

    def __init__(self, fake):
        super().__init__(name="fake-replicate-webhooks", daemon=True)
        self.fake = fake
        self.condition = threading.Condition()
        self.queue = []
        self.sequence = itertools.count()
        self.stopping = False

    def enqueue(self, delivery, due=None):
        with self.condition:
            heapq.heappush(self.queue, (due or time.monotonic(), next(self.sequence), delivery))
            self.condition.notify()

    def clear(self):
        with self.condition:
            self.queue.clear()

    def stop(self):
        with self.condition:
            self.stopping = True
            self.condition.notify()

    def run(self):
        while True:
            with self.condition:
                while not self.stopping:
                    now = time.monotonic()
                    if self.queue and self.queue[0][0] <= now:
                        break
                    timeout = self.queue[0][0] - now if self.queue else None
                    self.condition.wait(timeout)
                if self.stopping:
                    return
                _, _, delivery = heapq.heappop(self.queue)
            try:
                self.deliver(delivery)
            except Exception:  # a bug here must not end automatic deliveries
                traceback.print_exc()

    def deliver(self, delivery):
        state = self.fake.state
        with state.lock:
            if delivery["generation"] != state.generation:
                return
            settings = state.settings
            secret = settings["secret"]
            timeout = settings["webhook_timeout"]
            retry_seconds = settings["webhook_retry_seconds"]
            retry_initial = settings["webhook_retry_initial"]

        result = post_webhook(delivery["url"], delivery["body"], delivery["webhook_id"], secret,
                              allow_remote=state.allow_remote_webhooks, timeout=timeout)
        ok = result["status"] is not None and 200 <= result["status"] < 300
        record = {"time": time.time(), "webhook_id": delivery["webhook_id"],
                  "job_id": delivery["job_id"], "event": delivery["event"],
                  "job_status": delivery["job_status"], "attempt": delivery["attempt"],
                  "status": result["status"], "body": result["body"], "error": result["error"]}
        self.fake.log(f"webhook {delivery['webhook_id']} job {delivery['job_id']} "
                      f"{delivery['job_status']} attempt {delivery['attempt']}: "
                      f"{result['status'] or result['error']}")
        with state.lock:
            if delivery["generation"] == state.generation:
                state.deliveries.append(record)
        if ok or not delivery["final"] or result.get("rejected"):
            return
        # Only final deliveries are retried, with doubling delays, until
        # webhook_retry_seconds after the first attempt.
        delay = retry_initial * (2 ** (delivery["attempt"] - 1))
        due = time.monotonic() + delay
        if due - delivery["first_attempt"] <= retry_seconds:
            retry = dict(delivery, attempt=delivery["attempt"] + 1)
            self.enqueue(retry, due)


# ---------------------------------------------------------------------------
# HTTP handler


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-replicate/1"

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format, *args):
        self.server.fake.log("%s %s" % (self.address_string(), format % args))

    # -- plumbing ---------------------------------------------------------------

    @property
    def fake(self):
        return self.server.fake

    @property
    def state(self):
        return self.server.fake.state

    def dispatch(self):
        self.entry = None
        try:
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path
            self.query = urllib.parse.parse_qs(parts.query)
            try:
                self.body = self.read_body()
            except ValueError as e:
                self.close_connection = True
                self.send_problem(400, {"title": "Bad Request", "detail": str(e), "status": 400})
                return
            if path == "/_control" or path.startswith("/_control/"):
                self.handle_control(path)
            elif path == "/v1" or path.startswith("/v1/"):
                self.handle_api(path, parts.query)
            else:
                self.send_problem(404, {"title": "Not Found", "detail": "Not found.",
                                        "status": 404})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # report the bug to the client instead of hanging it
            traceback.print_exc()
            try:
                self.send_problem(500, {"title": "Internal Server Error",
                                        "detail": f"fake-replicate bug: {e}", "status": 500})
            except OSError:
                self.close_connection = True

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ValueError("invalid chunked request body") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_REQUEST_BODY:
                    raise ValueError(f"request body larger than {MAX_REQUEST_BODY} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("invalid Content-Length") from None
        if length < 0 or length > MAX_REQUEST_BODY:
            raise ValueError(f"Content-Length must be 0-{MAX_REQUEST_BODY}")
        return self.rfile.read(length) if length else b""

    def json_body(self):
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ControlError(400, "invalid_body", f"request body is not valid JSON: {e}") \
                from None

    def send_bytes(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        if self.entry is not None:
            self.entry["status"] = status

    def send_api_json(self, status, value, headers=()):
        with self.state.lock:
            newline = self.state.settings["trailing_newline"]
        self.send_bytes(status, encode_json(value, newline), headers=headers)

    def send_problem(self, status, value, headers=()):
        self.send_bytes(status, encode_json(value), "application/problem+json", headers)

    def send_control(self, status, value):
        body = (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        self.send_bytes(status, body)

    def api_base(self):
        """Return the base URL the client used, from its Host header."""
        host = self.headers.get("Host", "")
        if not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?", host):
            return self.state.api_base
        return f"http://{host}/v1"

    # -- faults -------------------------------------------------------------------

    def apply_fault(self, fault, path):
        """Apply `fault` to this request. Return True when nothing else must be sent."""
        if self.entry is not None:
            self.entry["fault"] = fault.id
        if fault.delay:
            with self.state.lock:
                release = self.state.release
            release.wait(fault.delay)
        if fault.drop:
            self.drop_connection(fault.drop)
            if self.entry is not None:
                self.entry["status"] = "dropped"
            return True
        if fault.status is None:
            return False
        headers = []
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        if fault.raw_body is not None:
            self.send_bytes(fault.status, fault.raw_body.encode("utf-8"),
                            fault.content_type or "text/plain", headers)
            return True
        body = fault.body if fault.body is not None else self.fault_body(fault, path)
        self.send_bytes(fault.status, encode_json(body),
                        fault.content_type or "application/problem+json", headers)
        return True

    def fault_body(self, fault, path):
        fixtures = self.fake.fixtures
        status = fault.status
        if status == 401:
            return copy.deepcopy(fixtures["401"])
        if status == 402:
            return copy.deepcopy(fixtures["402"])
        if status == 404:
            if path.startswith("/v1/models/") and path.endswith("/trainings"):
                return copy.deepcopy(fixtures["404-training-destination"])
            return {"title": "Not found", "detail": "Not found.", "status": 404}
        if status == 429:
            if fault.body_retry_after is None:
                return copy.deepcopy(fixtures["429-documented"])
            body = copy.deepcopy(fixtures["429-low-credit-observed"])
            seconds = fault.body_retry_after
            seconds = int(seconds) if float(seconds).is_integer() else seconds
            body["detail"] = re.sub(r"resets in ~[0-9.]+s", f"resets in ~{seconds}s",
                                    body.get("detail", ""))
            body["retry_after"] = seconds
            return body
        phrase = http_phrase(status)
        body = {"title": phrase, "detail": f"{phrase} (injected by fake-replicate)",
                "status": status}
        if fault.body_retry_after is not None:
            body["retry_after"] = fault.body_retry_after
        return body

    def drop_connection(self, mode):
        self.close_connection = True
        connection = self.connection
        if mode == "truncate":
            body = encode_json({"detail": "this body is cut off before its end",
                                "padding": "x" * 256})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            connection.shutdown(socket.SHUT_RDWR)
        elif mode == "reset":
            # SO_LINGER with a zero timeout makes close() send RST. The
            # buffered reader holds a reference to the socket, so it is
            # closed first or close() would be deferred.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            connection.close()
        else:
            connection.shutdown(socket.SHUT_RDWR)

    # -- Replicate API ----------------------------------------------------------------

    def handle_api(self, path, query_string):
        token_state = self.state.token_state(self.headers.get("Authorization"))
        self.entry = self.state.log_request(self.command, path, query_string, token_state)
        fault = self.state.take_fault(self.command, path)
        if fault and self.apply_fault(fault, path):
            return
        if self.state.auth_required() and token_state != "valid":
            self.send_problem(401, copy.deepcopy(self.fake.fixtures["401"]))
            return
        rate_key = self.headers.get("Authorization") or "anonymous"
        wait = self.state.check_rate_limit(rate_key)
        if wait is not None:
            self.send_rate_limited(wait)
            return
        self.state.tick()
        try:
            self.route_api(path)
        except ControlError as e:
            self.send_problem(e.status, {"title": http_phrase(e.status), "detail": e.message,
                                         "status": e.status})

    def send_rate_limited(self, wait):
        unit = "second" if wait == 1 else "seconds"
        body = {"detail": f"Request was throttled. Expected available in {wait} {unit}.",
                "status": 429}
        with self.state.lock:
            if self.state.rate_limit and self.state.rate_limit.body_retry_after:
                body["retry_after"] = wait
        self.send_problem(429, body, headers=[("Retry-After", str(wait))])

    API_ROUTES = [
        (re.compile(r"/v1/account"), {"GET": "api_account"}),
        (re.compile(r"/v1/webhooks/default/secret"), {"GET": "api_webhook_secret"}),
        (re.compile(r"/v1/(trainings)"), {"GET": "api_list"}),
        (re.compile(r"/v1/(predictions)"), {"GET": "api_list", "POST": "api_create_prediction"}),
        (re.compile(r"/v1/(trainings|predictions)/([^/]+)"), {"GET": "api_get"}),
        (re.compile(r"/v1/(trainings|predictions)/([^/]+)/cancel"), {"POST": "api_cancel"}),
        (re.compile(r"/v1/models/([^/]+)/([^/]+)/versions/([^/]+)/trainings"),
         {"POST": "api_create_training"}),
    ]

    def route_api(self, path):
        for pattern, methods in self.API_ROUTES:
            match = pattern.fullmatch(path)
            if not match:
                continue
            name = methods.get(self.command)
            if name is None:
                allowed = ", ".join(methods)
                self.send_problem(405, {"title": "Method Not Allowed",
                                        "detail": f"{self.command} is not allowed on {path}",
                                        "status": 405}, headers=[("Allow", allowed)])
                return
            getattr(self, name)(*match.groups())
            return
        self.send_problem(404, {"title": "Not found", "detail": "Not found.", "status": 404})

    def api_account(self):
        with self.state.lock:
            account = copy.deepcopy(self.state.settings["account"])
        self.send_api_json(200, account)

    def api_webhook_secret(self):
        with self.state.lock:
            secret = self.state.settings["secret"]
        self.send_api_json(200, {"key": secret})

    def api_list(self, collection):
        cursor = (self.query.get("cursor") or [""])[0]
        page = self.state.list_page(collection[:-1], cursor, self.api_base())
        self.send_api_json(200, page)

    def lookup(self, collection, job_id):
        kind = collection[:-1]
        job = self.state.get_job(job_id, kind)
        if job is None and kind == "prediction":
            # Real training create responses can point urls.get at
            # /v1/predictions/{id}; with that quirk on, the URL must work.
            with self.state.lock:
                quirk = self.state.settings["create_get_url_quirk"]
            if quirk:
                job = self.state.get_job(job_id, "training")
        if job is None:
            raise ControlError(404, "not_found", f"No {kind} with id {job_id} was found.")
        return job

    def api_get(self, collection, job_id):
        with self.state.lock:
            job = self.lookup(collection, job_id)
            body = job.to_dict(self.api_base())
        self.send_api_json(200, body)

    def api_cancel(self, collection, job_id):
        with self.state.lock:
            job = self.lookup(collection, job_id)
            if job.status in ACTIVE_STATUSES:
                self.state.set_status(job, "canceled")
            body = job.to_dict(self.api_base())
        self.send_api_json(200, body)

    def validation_error(self, field, description):
        return {"title": "Input validation failed", "detail": f"- {field}: {description}",
                "status": 422,
                "invalid_fields": [{"type": "invalid", "field": field,
                                    "description": description}]}

    def api_request_fields(self):
        """Parse and check the webhook fields shared by the create endpoints."""
        try:
            body = self.json_body()
        except ControlError as e:
            self.send_problem(400, {"title": "Bad Request", "detail": e.message, "status": 400})
            return None
        if not isinstance(body, dict):
            self.send_problem(400, {"title": "Bad Request",
                                    "detail": "request body must be a JSON object",
                                    "status": 400})
            return None
        checks = [
            ("input", lambda v: isinstance(v, dict), "input must be an object"),
            ("webhook", lambda v: isinstance(v, str), "webhook must be a URL string"),
            ("webhook_events_filter",
             lambda v: isinstance(v, list) and all(e in EVENT_TYPES for e in v),
             f"webhook_events_filter must be a list of {', '.join(EVENT_TYPES)}"),
        ]
        for field, valid, description in checks:
            if body.get(field) is not None and not valid(body[field]):
                self.send_problem(422, self.validation_error(field, description))
                return None
        if body.get("webhook"):
            rejection = check_webhook_url(body["webhook"], self.state.allow_remote_webhooks)
            if rejection:
                self.send_problem(422, self.validation_error("webhook", rejection))
                return None
        return body

    def api_options(self, body):
        with self.state.lock:
            settings = self.state.settings
            return {"auto": settings["auto_advance"], "outcome": settings["outcome"],
                    "ts_digits": settings["ts_digits"],
                    "phase_seconds": dict(settings["phase_seconds"]),
                    "input": body.get("input") or {},
                    "webhook": body.get("webhook") or None,
                    "webhook_events_filter": body.get("webhook_events_filter")}

    def api_create_training(self, owner, name, version_id):
        body = self.api_request_fields()
        if body is None:
            return
        destination = body.get("destination")
        if not destination:
            self.send_problem(422, self.validation_error("destination",
                                                         "destination is required"))
            return
        if not isinstance(destination, str) or not re.fullmatch(
                r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", destination):
            self.send_problem(422, self.validation_error(
                "destination", "destination must be a model name like owner/name"))
            return
        options = self.api_options(body)
        options.update(model=f"{owner}/{name}", version=version_id, destination=destination)
        self.create_job("training", options)

    def api_create_prediction(self, collection):
        body = self.api_request_fields()
        if body is None:
            return
        version = body.get("version")
        if not isinstance(version, str) or not version:
            self.send_problem(422, self.validation_error("version", "version is required"))
            return
        options = self.api_options(body)
        model, _, version_id = version.rpartition(":")
        options["version"] = version_id
        if model:
            options["model"] = model
        self.create_job("prediction", options)

    def create_job(self, kind, options):
        with self.state.lock:
            now = time.time_ns()
            job = Job(kind, new_job_id(self.state.rng), now, self.state.origin, options)
            self.state.add_job(job)
            body = job.to_dict(self.api_base(),
                               get_url_quirk=(kind == "training"
                                              and self.state.settings["create_get_url_quirk"]))
        self.send_api_json(201, body)

    # -- control API ------------------------------------------------------------------

    CONTROL_ROUTES = [
        (re.compile(r"/_control/?"), {"GET": "control_state"}),
        (re.compile(r"/_control/state"), {"GET": "control_state"}),
        (re.compile(r"/_control/reset"), {"POST": "control_reset"}),
        (re.compile(r"/_control/settings"),
         {"GET": "control_settings", "POST": "control_settings", "PATCH": "control_settings"}),
        (re.compile(r"/_control/jobs"), {"GET": "control_jobs", "POST": "control_add_jobs"}),
        (re.compile(r"/_control/jobs/([^/]+)"),
         {"GET": "control_job", "POST": "control_set_job", "PATCH": "control_set_job",
          "DELETE": "control_delete_job"}),
        (re.compile(r"/_control/jobs/([^/]+)/advance"), {"POST": "control_advance_job"}),
        (re.compile(r"/_control/advance"), {"POST": "control_advance_all"}),
        (re.compile(r"/_control/faults"),
         {"GET": "control_faults", "POST": "control_add_faults",
          "DELETE": "control_clear_faults"}),
        (re.compile(r"/_control/faults/([^/]+)"), {"DELETE": "control_delete_fault"}),
        (re.compile(r"/_control/rate_limit"),
         {"GET": "control_rate_limit", "POST": "control_set_rate_limit",
          "DELETE": "control_clear_rate_limit"}),
        (re.compile(r"/_control/requests"),
         {"GET": "control_requests", "DELETE": "control_clear_requests"}),
        (re.compile(r"/_control/webhooks/send"), {"POST": "control_send_webhooks"}),
        (re.compile(r"/_control/webhooks/deliveries"),
         {"GET": "control_deliveries", "DELETE": "control_clear_deliveries"}),
    ]

    def handle_control(self, path):
        try:
            for pattern, methods in self.CONTROL_ROUTES:
                match = pattern.fullmatch(path)
                if not match:
                    continue
                name = methods.get(self.command)
                if name is None:
                    raise ControlError(405, "method_not_allowed",
                                       f"{self.command} is not allowed on {path}; "
                                       f"use {', '.join(methods)}")
                status, value = getattr(self, name)(*match.groups())
                self.send_control(status, value)
                return
            raise ControlError(404, "not_found", f"no control endpoint {path}")
        except ControlError as e:
            self.send_control(e.status, {"error": e.code, "message": e.message})

    def control_state(self):
        with self.state.lock:
            counts = {}
            for job in self.state.jobs.values():
                key = f"{job.kind}:{job.status}"
                counts[key] = counts.get(key, 0) + 1
            return 200, {"api_base": self.state.api_base, "jobs": counts,
                         "faults": len(self.state.faults),
                         "rate_limit": self.state.rate_limit is not None,
                         "requests": len(self.state.requests),
                         "deliveries": len(self.state.deliveries),
                         "allow_remote_webhooks": self.state.allow_remote_webhooks}

    def control_reset(self):
        self.state.reset()
        return 200, {"reset": True}

    def control_settings(self):
        with self.state.lock:
            if self.command != "GET":
                self.state.settings = validate_settings(self.json_body(), self.state.settings)
            return 200, {"settings": copy.deepcopy(self.state.settings)}

    def control_jobs(self):
        kind = (self.query.get("kind") or [None])[0]
        with self.state.lock:
            jobs = sorted(self.state.jobs.values(), key=lambda j: (j.created_ns, j.id),
                          reverse=True)
            return 200, {"jobs": [j.control_view(self.state.api_base) for j in jobs
                                  if kind is None or j.kind == kind]}

    def job_options(self, request, settings):
        """Parse the schedule and content options shared by the ways of adding jobs."""
        options = {"phase_seconds": dict(settings["phase_seconds"]),
                   "outcome": settings["outcome"], "auto": False}
        if "auto" in request:
            options["auto"] = require_type(request["auto"], bool, "auto")
        if "phase_seconds" in request:
            options["phase_seconds"] = validate_phase_seconds(request["phase_seconds"],
                                                              options["phase_seconds"])
        if "outcome" in request:
            options["outcome"] = require_status(request["outcome"], "outcome",
                                                TERMINAL_STATUSES)
        for field in ("steps", "epochs", "log_lines"):
            if field in request:
                options[field] = require_int(request[field], field, 1)
        for field in ("model", "version", "destination", "source", "error", "webhook"):
            if field in request:
                options[field] = require_type(request[field], str, field)
        if "input" in request:
            options["input"] = require_type(request["input"], dict, "input")
        if "webhook_events_filter" in request:
            options["webhook_events_filter"] = validate_events_filter(
                request["webhook_events_filter"])
        return options

    def ts_digits_cycle(self, request, settings):
        value = request.get("ts_digits", settings["ts_digits"])
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ControlError(400, "invalid_parameter", "ts_digits must not be empty")
        return itertools.cycle([require_int(v, "ts_digits", 0, 9) for v in values])

    def control_add_jobs(self):
        request = require_type(self.json_body(), dict, "request body")
        with self.state.lock:
            settings = self.state.settings
            options = self.job_options(request, settings)
            digits = self.ts_digits_cycle(request, settings)
            replace = require_type(request.get("replace", False), bool, "replace")
            if "count" in request:
                jobs = self.bulk_jobs(request, options, digits)
            elif "jobs" in request or "job" in request:
                objects = request["jobs"] if "jobs" in request else [request["job"]]
                require_type(objects, list, "jobs")
                jobs = []
                now = time.time_ns()
                for obj in objects:
                    require_type(obj, dict, "job")
                    kind = request.get("kind") or obj.get("kind") or (
                        "training" if "destination" in obj else "prediction")
                    require_status(kind, "kind", ("training", "prediction"))
                    job_options = dict(options, ts_digits=next(digits))
                    jobs.append(Job.from_object(kind, obj, self.state.origin, job_options,
                                                self.state.rng, now))
            else:
                raise ControlError(400, "invalid_body",
                                   "give \"count\" to generate jobs, or \"job\" / \"jobs\" "
                                   "with explicit objects")
            for job in jobs:
                if job.id in self.state.jobs and not replace:
                    raise ControlError(409, "job_exists",
                                       f"job {job.id} already exists; pass \"replace\": "
                                       "true to overwrite it")
            for job in jobs:
                self.state.add_job(job, replace=True)
            return 201, {"count": len(jobs), "ids": [j.id for j in jobs],
                         "jobs": [j.to_dict(self.state.api_base) for j in jobs]
                         if len(jobs) <= 20 else None}

    def bulk_jobs(self, request, options, digits):
        """Generate `count` jobs, oldest first, `spacing_seconds` apart."""
        count = require_int(request["count"], "count", 1, 100000)
        kind = require_status(request.get("kind", "training"), "kind",
                              ("training", "prediction"))
        statuses = request.get("status", "succeeded")
        statuses = statuses if isinstance(statuses, list) else [statuses]
        if not statuses:
            raise ControlError(400, "invalid_parameter", "status must not be empty")
        for status in statuses:
            require_status(status, "status")
        spacing = require_number(request.get("spacing_seconds", 60), "spacing_seconds")
        spacing_ns = int(spacing * 1e9)
        if "created_at_start" in request:
            start_ns = parse_timestamp_or_raise(request["created_at_start"], "created_at_start")
        else:
            start_ns = time.time_ns() - count * spacing_ns

        ids = request.get("ids")
        if ids is not None:
            require_type(ids, list, "ids")
            if len(ids) != count or len(set(ids)) != count:
                raise ControlError(400, "invalid_parameter",
                                   "ids must list `count` distinct ids")

        jobs = []
        for index in range(count):
            created_ns = start_ns + index * spacing_ns
            job_options = dict(options, ts_digits=next(digits))
            if kind == "training":
                job_options.setdefault("destination", f"fake-user/lora-{index + 1}")
                job_options.setdefault("input", {
                    "input_images": f"https://files.example.com/datasets/set-{index + 1}.zip",
                    "steps": job_options.get("steps", 300)})
            else:
                job_options.setdefault("input", {"prompt": f"test image {index + 1}"})
            job_id = ids[index] if ids is not None else new_job_id(self.state.rng)
            job = Job(kind, job_id, created_ns, self.state.origin, job_options)
            self.fast_forward(job, statuses[index % len(statuses)], created_ns)
            jobs.append(job)
        return jobs

    @staticmethod
    def fast_forward(job, status, created_ns):
        """Set the timestamps, logs and output of a job that reached `status` long ago."""
        if status == "starting":
            return
        started_ns = created_ns + 2 * 10**9
        job.transition("processing", started_ns)
        if status == "processing":
            job.grow_logs(0.5)
            return
        duration = 30 if job.kind == "training" else 3
        job.transition(status, started_ns + duration * 10**9 + 123456789)

    def job_or_404(self, job_id):
        job = self.state.get_job(job_id)
        if job is None:
            raise ControlError(404, "job_not_found", f"no job with id {job_id}")
        return job

    def control_job(self, job_id):
        with self.state.lock:
            return 200, self.job_or_404(job_id).control_view(self.state.api_base)

    def control_set_job(self, job_id):
        """Set a job's status and/or fields, then queue one delivery for the change.

        The status change comes first, so explicit fields (error, metrics,
        completed_at, ...) override what the change filled in, and the
        delivery shows the final object.
        """
        request = require_type(self.json_body(), dict, "request body")
        with self.state.lock:
            job = self.job_or_404(job_id)
            logs_before, output_before = job.logs, job.output
            status_changed = False
            if "status" in request:
                status = require_status(request["status"], "status")
                status_changed = job.transition(status, time.time_ns())
            for field, value in request.items():
                self.set_job_field(job, field, value)
            if status_changed:
                self.state.emit(job, STATUS_EVENTS.get(job.status, "completed"))
            else:
                if job.logs != logs_before:
                    self.state.emit(job, "logs")
                if job.output != output_before:
                    self.state.emit(job, "output")
            return 200, job.control_view(self.state.api_base)

    def set_job_field(self, job, field, value):
        if field == "status":
            return
        if field in ("created_at", "started_at", "completed_at"):
            if value is None and field == "created_at":
                raise ControlError(400, "invalid_parameter", "created_at must not be null")
            if value is not None:
                ns = parse_timestamp_or_raise(value, field)
                if field == "created_at":
                    job.created_ns = ns
            setattr(job, field, value)
        elif field == "logs":
            job.logs = None if value is None else require_type(value, str, "logs")
            job.preamble_done = True
        elif field == "append_logs":
            job.logs = (job.logs or "") + require_type(value, str, "append_logs")
            job.preamble_done = True
        elif field == "metrics":
            job.metrics = require_type(value, dict, "metrics")
            job.metrics_explicit = True
        elif field == "error":
            job.error = value
            if isinstance(value, str):
                job.error_message = value
        elif field == "output":
            job.output = value
            job.output_explicit = value is not None
        elif field in ("model", "version", "destination", "source"):
            setattr(job, field, value)
        elif field == "input":
            job.input = require_type(value, dict, "input")
        elif field == "webhook":
            job.webhook = None if value is None else require_type(value, str, "webhook")
        elif field == "webhook_events_filter":
            job.webhook_events_filter = validate_events_filter(value)
        elif field == "auto":
            job.auto = require_type(value, bool, "auto")
            job.phase_started = time.monotonic()
        elif field == "phase_seconds":
            job.phase_seconds = validate_phase_seconds(value, job.phase_seconds)
        elif field == "outcome":
            job.outcome = require_status(value, "outcome", TERMINAL_STATUSES)
        elif field == "ts_digits":
            job.ts_digits = require_int(value, "ts_digits", 0, 9)
        elif field == "urls":
            require_type(value, dict, "urls")
            job.urls_extra = {k: v for k, v in value.items() if k not in ("get", "cancel", "web")}
        elif value is None:
            job.extra.pop(field, None)
        else:
            job.extra[field] = value

    def control_delete_job(self, job_id):
        with self.state.lock:
            self.job_or_404(job_id)
            del self.state.jobs[job_id]
            return 200, {"deleted": job_id}

    def control_advance_job(self, job_id):
        request = require_type(self.json_body(), dict, "request body")
        with self.state.lock:
            job = self.job_or_404(job_id)
            changed = self.advance(job, request)
            return 200, {"changed": changed, **job.control_view(self.state.api_base)}

    def advance(self, job, request):
        """Apply one advance request: log lines, a target status, or the next status."""
        if "log_lines" in request:
            lines = require_int(request["log_lines"], "log_lines", 1)
            if job.status == "starting":
                self.state.set_status(job, "processing")
            if job.status != "processing":
                raise ControlError(409, "not_processing",
                                   f"job {job.id} is {job.status}; log lines are added "
                                   "only while processing")
            changed = job.add_progress_lines(job.log_index + lines)
            if changed:
                self.state.emit(job, "logs")
            return changed
        if "to" in request:
            return self.state.set_status(job, require_status(request["to"], "to"))
        following = self.state.next_status(job)
        return following is not None and self.state.set_status(job, following)

    def control_advance_all(self):
        request = require_type(self.json_body(), dict, "request body")
        kind = request.get("kind")
        with self.state.lock:
            advanced = []
            for job in list(self.state.jobs.values()):
                if job.status not in ACTIVE_STATUSES or (kind and job.kind != kind):
                    continue
                if self.advance(job, {k: v for k, v in request.items() if k != "kind"}):
                    advanced.append(job.id)
            return 200, {"advanced": advanced}

    def control_faults(self):
        with self.state.lock:
            return 200, {"faults": [f.describe() for f in self.state.faults]}

    def control_add_faults(self):
        request = self.json_body()
        if isinstance(request, list):
            specs = request
        elif isinstance(request, dict) and "faults" in request:
            specs = require_type(request["faults"], list, "faults")
        else:
            specs = [request]
        with self.state.lock:
            faults = [Fault(f"f{next(self.state.fault_ids)}", spec) for spec in specs]
            self.state.faults.extend(faults)
            return 201, {"faults": [f.describe() for f in faults]}

    def control_clear_faults(self):
        with self.state.lock:
            removed = len(self.state.faults)
            self.state.faults.clear()
            self.state.release.set()
            self.state.release = threading.Event()
            return 200, {"removed": removed}

    def control_delete_fault(self, fault_id):
        with self.state.lock:
            for fault in self.state.faults:
                if fault.id == fault_id:
                    self.state.faults.remove(fault)
                    return 200, {"removed": 1}
        raise ControlError(404, "fault_not_found", f"no pending fault with id {fault_id}")

    def control_rate_limit(self):
        with self.state.lock:
            limit = self.state.rate_limit
            return 200, {"rate_limit": limit.describe() if limit else None}

    def control_set_rate_limit(self):
        limit = RateLimit(self.json_body())
        with self.state.lock:
            self.state.rate_limit = limit
            return 200, {"rate_limit": limit.describe()}

    def control_clear_rate_limit(self):
        with self.state.lock:
            self.state.rate_limit = None
            return 200, {"rate_limit": None}

    def control_requests(self):
        method = (self.query.get("method") or [None])[0]
        prefix = (self.query.get("path_prefix") or [""])[0]
        with self.state.lock:
            entries = [dict(e) for e in self.state.requests
                       if e["path"].startswith(prefix)
                       and (method is None or e["method"] == method.upper())]
        counts = {}
        for entry in entries:
            key = f"{entry['method']} {entry['path']}"
            counts[key] = counts.get(key, 0) + 1
        return 200, {"total": len(entries), "counts": counts, "requests": entries}

    def control_clear_requests(self):
        with self.state.lock:
            removed = len(self.state.requests)
            self.state.requests.clear()
            return 200, {"removed": removed}

    def control_deliveries(self):
        job_id = (self.query.get("job_id") or [None])[0]
        with self.state.lock:
            return 200, {"deliveries": [dict(d) for d in self.state.deliveries
                                        if job_id is None or d["job_id"] == job_id]}

    def control_clear_deliveries(self):
        with self.state.lock:
            removed = len(self.state.deliveries)
            self.state.deliveries.clear()
            return 200, {"removed": removed}

    def control_send_webhooks(self):
        request = require_type(self.json_body(), dict, "request body")
        return 200, {"deliveries": self.fake.send_webhooks(request)}


def http_phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


# ---------------------------------------------------------------------------
# Server


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS
        # lookup. The fake sets the name itself so it never queries a resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]


def load_fixtures(directory):
    """Load the error bodies from the fixture files, falling back to built-in copies."""
    bodies = {}
    for name, fallback in FALLBACK_ERROR_BODIES.items():
        path = os.path.join(directory, f"api.error.{name}.json")
        try:
            with open(path, encoding="utf-8") as f:
                bodies[name] = json.load(f)
        except (OSError, ValueError):
            bodies[name] = copy.deepcopy(fallback)
    return bodies


class FakeReplicate:
    """The fake server: construct, start(), use base_url, stop().

    Keyword arguments override DEFAULT_SETTINGS (e.g. phase_seconds=...).
    """

    HOST = "127.0.0.1"

    def __init__(self, port=0, tokens=(), secret=None, allow_remote_webhooks=False,
                 fixtures_dir=DEFAULT_FIXTURES_DIR, verbose=False, seed=None, **settings):
        initial = copy.deepcopy(DEFAULT_SETTINGS)
        initial["secret"] = secret or generate_webhook_secret()
        initial["tokens"] = list(tokens)
        initial = validate_settings(settings, initial)
        validate_settings({"secret": initial["secret"]}, initial)
        self.fixtures = load_fixtures(fixtures_dir)
        self.state = State(initial, self.fixtures, seed)
        self.state.allow_remote_webhooks = allow_remote_webhooks
        self.verbose = verbose
        self.port = port
        self.server = None
        self.threads = []
        self.stopping = threading.Event()

    @property
    def origin(self):
        return f"http://{self.HOST}:{self.port}"

    @property
    def base_url(self):
        return self.origin + "/v1"

    @property
    def control_url(self):
        return self.origin + "/_control"

    def log(self, message):
        if self.verbose:
            print(f"fake-replicate: {message}", file=sys.stderr, flush=True)

    def start(self):
        self.server = Server((self.HOST, self.port), Handler)
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.state.origin = self.origin
        worker = WebhookWorker(self)
        self.state.webhook_worker = worker
        ticker = threading.Thread(target=self.run_ticker, name="fake-replicate-ticker",
                                  daemon=True)
        serving = threading.Thread(target=self.server.serve_forever, kwargs={
            "poll_interval": 0.1}, name="fake-replicate-http", daemon=True)
        self.threads = [worker, ticker, serving]
        for thread in self.threads:
            thread.start()
        return self

    def run_ticker(self):
        while not self.stopping.wait(TICK_SECONDS):
            try:
                self.state.tick()
            except Exception:  # a bug in one tick must not stop the schedule
                traceback.print_exc()

    def stop(self):
        self.stopping.set()
        with self.state.lock:
            self.state.release.set()
        if self.state.webhook_worker:
            self.state.webhook_worker.stop()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- control-driven webhook sender -----------------------------------------

    def send_webhooks(self, request):
        """Sign and POST the deliveries a /_control/webhooks/send request describes.

        Returns one record per attempt: webhook_id, status, body, error, event.
        """
        state = self.state
        url = require_type(request.get("url"), str, "url")
        rejection = check_webhook_url(url, state.allow_remote_webhooks)
        if rejection:
            raise ControlError(400, "webhook_url_rejected", rejection)
        with state.lock:
            secret = request.get("secret") or state.settings["secret"]
            default_timeout = state.settings["webhook_timeout"]
        extra_secrets = request.get("extra_secrets") or []
        for candidate in [secret, *extra_secrets]:
            try:
                decode_webhook_secret(candidate)
            except ValueError as e:
                raise ControlError(400, "invalid_parameter", str(e)) from None
        duplicates = require_int(request.get("duplicates", 0), "duplicates", 0, 100)
        retry_final = require_int(request.get("retry_final", 0), "retry_final", 0, 100)
        retry_interval = require_number(request.get("retry_interval", 0.2), "retry_interval")
        interval = require_number(request.get("interval", 0), "interval")
        timeout = require_number(request.get("timeout", default_timeout), "timeout", 0.001)
        timestamp_offset = require_type(request.get("timestamp_offset", 0), int,
                                        "timestamp_offset")
        corrupt = require_type(request.get("corrupt_signature", False), bool,
                               "corrupt_signature")
        newline = require_type(request.get("trailing_newline", False), bool,
                               "trailing_newline")
        deliveries = []
        for event, obj in self.webhook_snapshots(request):
            delivery = {"webhook_id": new_webhook_id(), "event": event,
                        "job_status": obj.get("status") if isinstance(obj, dict) else None,
                        "body": encode_json(obj, newline)}
            deliveries.extend([delivery] * (duplicates + 1))
        if require_type(request.get("shuffle", False), bool, "shuffle"):
            random.Random(request.get("seed")).shuffle(deliveries)
        results = []
        for index, delivery in enumerate(deliveries):
            if index and interval:
                time.sleep(interval)
            final = delivery["job_status"] in TERMINAL_STATUSES
            attempt = 1
            while True:
                outcome = post_webhook(url, delivery["body"], delivery["webhook_id"], secret,
                                       allow_remote=state.allow_remote_webhooks,
                                       timeout=timeout, timestamp_offset=timestamp_offset,
                                       extra_secrets=extra_secrets, corrupt_signature=corrupt)
                results.append({"webhook_id": delivery["webhook_id"], "event": delivery["event"],
                                "job_status": delivery["job_status"], "attempt": attempt,
                                "status": outcome["status"], "body": outcome["body"],
                                "error": outcome["error"]})
                ok = outcome["status"] is not None and 200 <= outcome["status"] < 300
                if ok or not final or attempt > retry_final:
                    break
                attempt += 1
                time.sleep(retry_interval)
        return results

    def webhook_snapshots(self, request):
        """Return [(event, object)] for the bodies or job events a send request names."""
        if "bodies" in request:
            bodies = require_type(request["bodies"], list, "bodies")
            return [(None, body) for body in bodies]
        job_id = require_type(request.get("job_id"), str, "job_id")
        events = request.get("events", ["start", "logs", "completed"])
        require_type(events, list, "events")
        if not events:
            raise ControlError(400, "invalid_parameter", "events must not be empty")
        processing_total = sum(1 for e in events if e in ("logs", "output", "processing"))
        snapshots = []
        processing_seen = 0
        with self.state.lock:
            job = self.state.get_job(job_id)
            if job is None:
                raise ControlError(404, "job_not_found", f"no job with id {job_id}")
            for event in events:
                if event == "start" or event == "starting":
                    snapshots.append((event, job.snapshot("starting", self.state.api_base)))
                elif event in ("logs", "output", "processing"):
                    processing_seen += 1
                    fraction = processing_seen / processing_total
                    snapshots.append((event, job.snapshot("processing", self.state.api_base,
                                                          fraction)))
                elif event == "completed":
                    final = job.status if job.status in TERMINAL_STATUSES else job.outcome
                    snapshots.append((event, job.snapshot(final, self.state.api_base)))
                elif event in TERMINAL_STATUSES:
                    snapshots.append((event, job.snapshot(event, self.state.api_base)))
                else:
                    raise ControlError(400, "invalid_parameter",
                                       f"event {event!r} must be one of "
                                       f"{', '.join(EVENT_TYPES + STATUSES)}")
        return snapshots


# ---------------------------------------------------------------------------
# Command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="fake-replicate",
        description="Serve a fake Replicate API on 127.0.0.1 for jobwire's tests and demos.")

    parser.add_argument("--port", type=int, default=0,
                        help="TCP port on 127.0.0.1 (default 0: a free port, printed)")
    parser.add_argument("--token", action="append", default=[],
                        help="API token clients must send as 'Authorization: Bearer T'; "
                             "repeat for several; none means no authentication")
    parser.add_argument("--secret", help="webhook signing secret (whsec_ + base64); "
                                         "default: a random one, served at "
                                         "/v1/webhooks/default/secret")
    parser.add_argument("--allow-remote-webhooks", action="store_true",
                        help="allow webhook URLs that are not on loopback")

    parser.add_argument("--starting-seconds", type=float,
                        default=DEFAULT_SETTINGS["phase_seconds"]["starting"],
                        help="seconds a new job stays starting (default %(default)s)")
    parser.add_argument("--processing-seconds", type=float,
                        default=DEFAULT_SETTINGS["phase_seconds"]["processing"],
                        help="seconds a job stays processing (default %(default)s)")
    parser.add_argument("--webhook-retry-seconds", type=float,
                        default=DEFAULT_SETTINGS["webhook_retry_seconds"],
                        help="how long a failed final delivery is retried "
                             "(default %(default)s)")
    parser.add_argument("--ts-digits", type=int, default=DEFAULT_SETTINGS["ts_digits"],
                        help="fractional digits in generated timestamps, 0-9 "
                             "(default %(default)s)")

    parser.add_argument("--fixtures", default=DEFAULT_FIXTURES_DIR,
                        help="directory of api.error.*.json bodies (default %(default)s)")
    parser.add_argument("--seed", type=int, help="seed for generated ids")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request and webhook delivery to stderr")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        fake = FakeReplicate(
            port=args.port, tokens=args.token, secret=args.secret,
            allow_remote_webhooks=args.allow_remote_webhooks, fixtures_dir=args.fixtures,
            verbose=args.verbose, seed=args.seed,
            phase_seconds={"starting": args.starting_seconds,
                           "processing": args.processing_seconds},
            webhook_retry_seconds=args.webhook_retry_seconds, ts_digits=args.ts_digits)
        fake.start()
    except ControlError as e:
        print(f"fake-replicate: {e.message}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"fake-replicate: cannot listen on 127.0.0.1:{args.port}: {e}", file=sys.stderr)
        return 1
    print(f"listening on {fake.origin}", flush=True)
    print(fake.base_url, flush=True)
    print(f"fake-replicate: control API {fake.control_url}/, authentication "
          f"{'required' if args.token else 'off'}, webhook secret "
          f"{'given' if args.secret else 'generated'} "
          f"(GET {fake.base_url}/webhooks/default/secret)", file=sys.stderr, flush=True)
    done = threading.Event()

    def request_stop(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not done.wait(1.0):
        pass
    fake.stop()
    print("fake-replicate: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
