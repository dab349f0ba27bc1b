#!/usr/bin/env python3
"""Offline lint of the Dockerfile (no Docker engine and no hadolint here).

Checks the rules that matter for this image: pinned Debian bookworm bases,
a multi-stage build, a non-root USER, HEALTHCHECK on /healthz, EXPOSE of
the binary's default port, no piping downloads into a shell, every RUN
calling scripts that exist in the repository, COPY sources that exist, the
runtime package list covering every library the binary links, and ENV
names that `jobwire --help` lists. With --build it also runs scripts/docker-build into
a temporary DESTDIR and starts the installed binary.

Prints one line per check and ends with "dockerfile: N passed, N failed".
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse(path):
    """Returns [(lineno, INSTRUCTION, arguments)] with continuations joined."""
    out, buf, start = [], "", 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            stripped = line.strip()
            if not buf and (not stripped or stripped.startswith("#")):
                continue
            if buf and stripped.startswith("#"):
                continue
            if not buf:
                start = n
            if stripped.endswith("\\"):
                buf += stripped[:-1] + " "
                continue
            buf += stripped
            word, _, rest = buf.partition(" ")
            out.append((start, word.upper(), rest.strip()))
            buf = ""
    return out


def help_text(binary):
    try:
        return subprocess.run([binary, "--help"], capture_output=True, text=True,
                              timeout=10).stdout
    except OSError:
        return ""


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def stages(instructions):
    """Splits into stages: [(from_args, [(lineno, instr, args)])]."""
    result = []
    for item in instructions:
        if item[1] == "FROM":
            result.append((item[2], []))
        elif result:
            result[-1][1].append(item)
    return result


def run_commands(args):
    """Splits a shell-form RUN into its simple commands."""
    parts = re.split(r"&&|\|\||;", args)
    return [p.strip() for p in parts if p.strip()]


def main(argv):
    dockerfile = os.path.join(ROOT, "Dockerfile")
    binary = os.environ.get("JOBWIRE_RELEASE_BIN", os.path.join(ROOT, "build", "jobwire"))
    c = Checker()
    ins = parse(dockerfile)
    st = stages(ins)
    names = set()

    c.check(len(st) >= 2, "multi-stage build (%d stages)" % len(st))
    for from_args, _ in st:
        words = from_args.split()
        image = [w for w in words if not w.startswith("--")][0]
        if len(words) >= 3 and words[-2].upper() == "AS":
            names.add(words[-1])
        if image in names:
            continue
        repo, _, tag = image.partition(":")
        digest = "@sha256:" in image
        pinned = digest or (tag and tag != "latest" and re.search(r"\d", tag))
        c.check(repo == "debian" and (tag.startswith("12.") or tag.startswith("bookworm")
                                      or digest),
                f"base {image} is Debian bookworm")
        c.check(bool(pinned), f"base {image} is pinned to a version or digest")

    final = st[-1][1]
    users = [a for _, i, a in final if i == "USER"]
    c.check(bool(users) and users[-1].split(":")[0] not in ("root", "0"),
            f"final stage runs as a non-root USER ({users[-1] if users else 'none'})")

    health = [a for _, i, a in final if i == "HEALTHCHECK"]
    health_target = ""
    if health:
        health_target = health[-1]
        for word in re.findall(r"/usr/local/lib/jobwire/[\w.-]+", health[-1]):
            local = os.path.join(ROOT, "scripts", os.path.basename(word))
            if os.path.exists(local):
                health_target += open(local).read()
    c.check("/healthz" in health_target, "HEALTHCHECK probes /healthz")

    help_out = help_text(binary)
    m = re.search(r"JOBWIRE_LISTEN\s.*\(default: [^)]*:(\d+)\)", help_out)
    default_port = m.group(1) if m else "8001"
    exposes = [a for _, i, a in final if i == "EXPOSE"]
    c.check(any(default_port in a.split() for a in exposes),
            f"EXPOSE {default_port} (the binary's default port)")

    whole = open(dockerfile).read()
    c.check(not re.search(r"(curl|wget)[^\n|]*\|\s*(ba|da)?sh", whole),
            "no download piped into a shell")
    c.check(not any(i == "ADD" and re.search(r"https?://", a) for _, i, a in ins),
            "no ADD of a URL")

    # Where COPY put repository files, per stage: destination path -> source.
    for from_args, body in st:
        workdir = "/"
        copied = {}
        whole_repo_at = None
        for lineno, instr, args in body:
            if instr == "WORKDIR":
                workdir = os.path.join(workdir, args)
            elif instr == "COPY":
                words = shlex.split(args)
                if any(w.startswith("--from") for w in words):
                    continue
                words = [w for w in words if not w.startswith("--")]
                srcs, dest = words[:-1], os.path.join(workdir, words[-1])
                for src in srcs:
                    exists = os.path.exists(os.path.join(ROOT, src))
                    c.check(exists, f"line {lineno}: COPY source {src} exists")
                    if src == ".":
                        whole_repo_at = dest
                    elif dest.endswith("/"):
                        copied[os.path.join(dest, os.path.basename(src))] = src
                    else:
                        copied[dest] = src
            elif instr == "RUN":
                if args.startswith("["):
                    c.check(False, f"line {lineno}: RUN uses the shell form with scripts")
                    continue
                for cmd in run_commands(args):
                    prog = shlex.split(cmd)[0]
                    src = None
                    if prog in copied:
                        src = copied[prog]
                    elif whole_repo_at is not None and not prog.startswith("/"):
                        src = prog
                    ok = src is not None and os.access(os.path.join(ROOT, src), os.X_OK)
                    c.check(ok, f"line {lineno}: RUN {prog} is an executable script "
                                f"of the repository ({src})")
    for _, instr, args in final:
        if instr in ("ENTRYPOINT", "CMD"):
            c.check(args.startswith("["), f"{instr} uses the exec form")

    env_names = set()
    for _, instr, args in ins:
        if instr == "ENV":
            env_names.update(re.findall(r"([A-Z_][A-Z0-9_]*)=", args))
    for name in sorted(env_names):
        c.check(name in help_out, f"ENV {name} is listed by jobwire --help")

    # The runtime packages cover every library the binary links directly.
    listed = subprocess.run([os.path.join(ROOT, "scripts", "install-runtime-deps"), "--list"],
                            capture_output=True, text=True).stdout.split()
    try:
        needed = [line.split()[1] for line in subprocess.run(
            ["objdump", "-p", binary], capture_output=True, text=True).stdout.splitlines()
            if line.strip().startswith("NEEDED")]
    except OSError:
        needed = []
    c.check(bool(needed), f"read the NEEDED libraries of {binary}")
    for lib in needed:
        found = subprocess.run(["dpkg", "-S", "*/" + lib], capture_output=True, text=True).stdout
        pkgs = {line.split(":")[0] for line in found.splitlines() if ":" in line}
        ok = bool(pkgs & set(listed)) or bool(pkgs & {"libc6"})
        c.check(ok, f"{lib} ({', '.join(sorted(pkgs)) or 'no package'}) is installed "
                    f"by install-runtime-deps or the base image")

    if "--build" in argv:
        with tempfile.TemporaryDirectory() as dest:
            env = dict(os.environ, DESTDIR=dest, SKIP_SETUP="1")
            p = subprocess.run([os.path.join(ROOT, "scripts", "docker-build")], env=env,
                               capture_output=True, text=True)
            installed = os.path.join(dest, "usr/local/bin/jobwire")
            c.check(p.returncode == 0 and os.access(installed, os.X_OK),
                    "scripts/docker-build installs usr/local/bin/jobwire" +
                    ("" if p.returncode == 0 else "\n" + p.stdout + p.stderr))
            v = subprocess.run([installed, "--version"], capture_output=True, text=True) \
                if os.access(installed, os.X_OK) else None
            c.check(v is not None and v.returncode == 0 and v.stdout.startswith("jobwire "),
                    f"the installed binary runs: {v.stdout.strip() if v else 'missing'}")
            c.check(os.path.isdir(os.path.join(dest, "usr/local/share/jobwire")),
                    "the dashboard files are installed under usr/local/share/jobwire")

    print(f"dockerfile: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
