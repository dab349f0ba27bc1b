#!/usr/bin/env python3
"""Builds the kustomize base and overlay and checks them against the
binary's own `jobwire --help`. It checks the container port and probe ports, probe paths,
every environment variable name, Secret references, the mounted ConfigMap
(whose YAML `jobwire --check-config` must accept), the grace period against
the drain, the PodDisruptionBudget and Service selectors, and in the
overlay a Redis StatefulSet with AOF on that JOBWIRE_REDIS_URL points at.

Builds with `kubectl kustomize` when kubectl is installed; otherwise with a
small resolver here that handles what these kustomizations use (resources,
labels, configMapGenerator without hash, images, strategic-merge patches of
a container's env). Ends with "kubernetes: N passed, N failed".
"""
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUSTOMIZE = os.path.join(ROOT, "deploy", "kubernetes")
BINARY = os.environ.get("JOBWIRE_RELEASE_BIN", os.path.join(ROOT, "build", "jobwire"))


# --- a minimal kustomize, used only without kubectl ------------------------

def merge_by_name(base, patch):
    out = list(base)
    for item in patch:
        for i, existing in enumerate(out):
            if existing.get("name") == item.get("name"):
                out[i] = merge(existing, item)
                break
        else:
            out.append(item)
    return out


def merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
            isinstance(x, dict) and "name" in x for x in base + patch):
        return merge_by_name(base, patch)
    return patch


def add_labels(doc, pairs, selectors):
    doc.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if not selectors:
        return
    spec = doc.get("spec", {})
    if doc["kind"] == "Service":
        spec.setdefault("selector", {}).update(pairs)
    elif "selector" in spec:
        spec["selector"].setdefault("matchLabels", {}).update(pairs)
    if "template" in spec:
        spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def resolve(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    docs = []
    for res in k.get("resources", []):
        path = os.path.join(directory, res)
        if os.path.isdir(path):
            docs += resolve(path)
        else:
            with open(path) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    for gen in k.get("configMapGenerator", []):
        data = {}
        for name in gen.get("files", []):
            with open(os.path.join(directory, name)) as f:
                data[os.path.basename(name)] = f.read()
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": data})
    for group in k.get("labels", []):
        for d in docs:
            add_labels(d, group["pairs"], group.get("includeSelectors", False))
    for image in k.get("images", []):
        for d in docs:
            for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if c["image"] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    for p in k.get("patches", []):
        with open(os.path.join(directory, p["path"])) as f:
            patch = yaml.safe_load(f)
        target = p.get("target", {"kind": patch["kind"], "name": patch["metadata"]["name"]})
        for i, d in enumerate(docs):
            if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]:
                docs[i] = merge(d, {k: v for k, v in patch.items() if k not in
                                    ("apiVersion", "kind", "metadata")})
    return docs


def build(directory):
    if shutil.which("kubectl"):
        p = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True,
                           timeout=60)
        if p.returncode != 0:
            raise SystemExit(f"kubectl kustomize {directory} failed:\n{p.stderr}")
        return [d for d in yaml.safe_load_all(p.stdout) if d], "kubectl kustomize"
    return resolve(directory), "the resolver in this script (kubectl not installed)"


# --- checks ------------------------------------------------------------------

class Checker:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def help_facts():
    text = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=10).stdout
    names = set(re.findall(r"^  ([A-Z][A-Z0-9_]+) ", text, re.M))
    m = re.search(r"JOBWIRE_LISTEN\s.*\(default: [^)]*:(\d+)\)", text)
    return names, int(m.group(1)) if m else None


def drain_seconds():
    """The drain limit from src/main.c plus the consumer's longest wait."""
    with open(os.path.join(ROOT, "src", "main.c")) as f:
        grace = int(re.search(r"#define SHUTDOWN_GRACE_MS (\d+)", f.read()).group(1))
    with open(os.path.join(ROOT, "src", "store.c")) as f:
        text = f.read()
    command = int(re.search(r"#define COMMAND_TIMEOUT_MS (\d+)", text).group(1))
    blocking = command + 5000
    return (grace + blocking) / 1000.0


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or
                                                       d["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None


def check_base(c, docs, label, names, port):
    dep = one(docs, "Deployment", "jobwire")
    c.check(dep is not None, f"{label}: one Deployment jobwire")
    if dep is None:
        return None
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    c.check(spec.get("replicas") == 3, f"{label}: 3 replicas")
    c.check(all(pod_labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
            f"{label}: the Deployment selector matches its pod labels")
    ct = [x for x in pod["containers"] if x["name"] == "jobwire"][0]
    ports = {p.get("name"): p["containerPort"] for p in ct.get("ports", [])}
    c.check(port in ports.values(), f"{label}: containerPort {port} = JOBWIRE_LISTEN's default "
                                    f"in jobwire --help")
    env = {e["name"]: e for e in ct.get("env", [])}
    listen = env.get("JOBWIRE_LISTEN", {}).get("value", f"0.0.0.0:{port}")
    c.check(listen.endswith(f":{ports.get('http')}"),
            f"{label}: JOBWIRE_LISTEN {listen} matches the http port")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = ct.get(probe, {}).get("httpGet", {})
        target = ports.get(get.get("port"), get.get("port"))
        c.check(get.get("path") == path and target == ports.get("http"),
                f"{label}: {probe} GET {path} on the http port ({get.get('path')}, {target})")
    for name in env:
        c.check(name in names, f"{label}: env {name} is listed by jobwire --help")
    for name, key in (("REPLICATE_API_TOKEN", "api-token"),
                      ("REPLICATE_WEBHOOK_SECRET", "webhook-secret")):
        ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
        c.check(ref.get("key") == key and bool(ref.get("name")),
                f"{label}: {name} comes from Secret {ref.get('name')} key {ref.get('key')}")
        c.check("value" not in env.get(name, {}), f"{label}: {name} has no literal value")
    ref = env.get("JOBWIRE_SESSION_SECRET", {}).get("valueFrom", {}).get("secretKeyRef", {})
    c.check(bool(ref.get("name")) and bool(ref.get("key")),
            f"{label}: JOBWIRE_SESSION_SECRET comes from a Secret ({ref.get('name')})")
    check_key_file(c, pod, ct, env, label)
    res = ct.get("resources", {})
    c.check(bool(res.get("requests", {}).get("cpu")) and bool(res.get("requests", {})
                                                               .get("memory")),
            f"{label}: cpu and memory requests")
    drain = drain_seconds()
    pre = ct.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    c.check(grace > drain + pause,
            f"{label}: terminationGracePeriodSeconds {grace} > drain {drain:.0f} s + "
            f"preStop {pause} s")
    sc = pod.get("securityContext", {})
    c.check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 10001,
            f"{label}: runs as non-root user 10001 (the image's)")

    # --config names a file in a mounted ConfigMap, and jobwire accepts it.
    args = ct.get("args", [])
    path = args[args.index("--config") + 1] if "--config" in args else None
    c.check(path is not None, f"{label}: --config is passed ({path})")
    mount = [m for m in ct.get("volumeMounts", []) if path and
             os.path.dirname(path) == m["mountPath"].rstrip("/")]
    vol = [v for v in pod.get("volumes", []) if mount and v["name"] == mount[0]["name"]]
    cm_name = vol[0].get("configMap", {}).get("name") if vol else None
    cm = one(docs, "ConfigMap", cm_name) if cm_name else None
    key = os.path.basename(path) if path else None
    c.check(cm is not None and key in cm.get("data", {}),
            f"{label}: {path} is key {key} of ConfigMap {cm_name}")
    if cm is not None and key in cm.get("data", {}):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(cm["data"][key])
            f.flush()
            p = subprocess.run([BINARY, "--check-config", "--config", f.name],
                               env={"PATH": os.environ.get("PATH", "")},
                               capture_output=True, text=True, timeout=10)
        c.check(p.returncode == 0, f"{label}: jobwire --check-config accepts the ConfigMap's "
                                   f"YAML {p.stdout.strip()}{p.stderr.strip()}")

    pdb = one(docs, "PodDisruptionBudget")
    c.check(pdb is not None and all(pod_labels.get(k) == v for k, v in
                                    pdb["spec"]["selector"]["matchLabels"].items())
            and (pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 2),
            f"{label}: PodDisruptionBudget keeps 2 of 3 replicas")
    svc = one(docs, "Service", "jobwire")
    ok = svc is not None and all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    ok = ok and all(ports.get(p["targetPort"], p["targetPort"]) == ports.get("http")
                    for p in svc["spec"]["ports"])
    c.check(ok, f"{label}: Service jobwire selects the pods and targets the http port")
    return env


def check_key_file(c, pod, ct, env, label):
    """JOBWIRE_API_KEYS_FILE names a file of a mounted Secret volume."""
    path = env.get("JOBWIRE_API_KEYS_FILE", {}).get("value", "")
    mount = [m for m in ct.get("volumeMounts", [])
             if path and os.path.dirname(path) == m["mountPath"].rstrip("/")]
    vol = [v for v in pod.get("volumes", []) if mount and v["name"] == mount[0]["name"]]
    items = vol[0].get("secret", {}).get("items", []) if vol else []
    ok = any(i.get("path") == os.path.basename(path) for i in items)
    c.check(ok, f"{label}: JOBWIRE_API_KEYS_FILE {path or '(unset)'} is a file of a mounted "
                f"Secret volume")


def check_overlay(c, docs, env, label):
    sts = one(docs, "StatefulSet", "jobwire-redis")
    c.check(sts is not None, f"{label}: a StatefulSet jobwire-redis")
    if sts is None:
        return
    ct = sts["spec"]["template"]["spec"]["containers"][0]
    args = ct.get("args", []) + ct.get("command", [])
    flat = " ".join(str(a) for a in args)
    c.check("--appendonly yes" in flat, f"{label}: Redis runs with AOF on")
    c.check("--appendfsync always" in flat, f"{label}: AOF fsync on every write")
    c.check(bool(sts["spec"].get("volumeClaimTemplates")), f"{label}: Redis data on a volume")
    url = env.get("JOBWIRE_REDIS_URL", {}).get("value", "")
    m = re.match(r"redis://([^:/]+):(\d+)/\d+$", url)
    c.check(m is not None, f"{label}: JOBWIRE_REDIS_URL is set ({url})")
    if m is None:
        return
    svc = one(docs, "Service", m.group(1))
    sts_labels = sts["spec"]["template"]["metadata"]["labels"]
    redis_ports = {p.get("name"): p["containerPort"] for p in ct.get("ports", [])}
    ok = svc is not None and all(sts_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    ok = ok and any(p["port"] == int(m.group(2)) and
                    redis_ports.get(p["targetPort"], p["targetPort"]) == 6379
                    for p in svc["spec"]["ports"])
    c.check(ok, f"{label}: JOBWIRE_REDIS_URL points at Service {m.group(1)} port "
                f"{m.group(2)}, which reaches the Redis pod")


def main():
    c = Checker()
    names, port = help_facts()
    c.check(bool(names) and port is not None, f"jobwire --help lists {len(names)} variables, "
                                              f"default port {port}")
    base, how = build(os.path.join(KUSTOMIZE, "base"))
    print(f"built with {how}")
    check_base(c, base, "base", names, port)
    overlay, _ = build(os.path.join(KUSTOMIZE, "overlays", "with-redis"))
    env = check_overlay_env = check_base(c, overlay, "with-redis", names, port)
    if check_overlay_env is not None:
        check_overlay(c, overlay, env, "with-redis")
    print(f"kubernetes: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
