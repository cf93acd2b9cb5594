#!/usr/bin/env python3
"""Save-to-live latency of a watcher: a file is written, then Lambda (the emulator) is polled
until GetFunctionConfiguration reports a new CodeSha256. Run by bench/run with the emulator
venv's python (it needs boto3); prints one JSON object.

    latency.py --lamb BIN --endpoint URL --project DIR --stack NAME --mode watch|trigger --edits N
    latency.py --sam BIN --endpoint URL --project DIR --stack NAME --mode sam --edits N
    latency.py --lamb BIN --endpoint URL --project DIR --stack NAME --rss

Modes: `watch` is `lamb sync --watch` (ready when it tells systemd READY=1, after its first
sync); `trigger` is the same daemon told by `lamb trigger` (file watching off by a long
debounce); `sam` is `sam sync --watch --code` (ready once it logs "Sync watch started." and
its file watcher had a second to start). `--file` (relative to the project) and `--function`
(logical id) say what to edit and which function to poll.
"""
import argparse
import atexit
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import shutil
import sys
import tempfile
import time

import boto3

# The access key id the polls sign with.
POLL_KEY = "benchpoll"


def requests_log(endpoint, method="GET"):
    """The emulator's request log (GET), or clears it (DELETE)."""
    import urllib.request
    with urllib.request.urlopen(urllib.request.Request(endpoint + "/_lamb/requests", method=method)) as r:
        return json.loads(r.read())


# Scratch space (the daemon's notify socket and XDG_RUNTIME_DIR, sam's log), removed on exit.
SCRATCH = tempfile.mkdtemp(prefix="lamb-latency-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


def die_with_parent():
    """preexec_fn: the watcher gets SIGKILL if this script dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop(proc, sig=signal.SIGTERM):
    """Stops a watcher started in its own process group: `sig` (SIGINT for sam, which shuts
    down on Ctrl+C), then SIGKILL for anything left in the group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def start_daemon(args, env, extra):
    tmp = tempfile.mkdtemp(dir=SCRATCH)
    notify_path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(120)
    env = dict(env, NOTIFY_SOCKET=notify_path, XDG_RUNTIME_DIR=tmp)
    proc = subprocess.Popen([args.lamb, "sync", "--watch", "--yes", "--stack-name", args.stack, "-q"] + extra,
                            cwd=args.project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=die_with_parent)
    try:
        while True:
            msg = sock.recv(4096).decode()
            if msg.startswith("READY=1"):
                return proc, env
    except BaseException:
        stop(proc)
        raise


def start_sam(args, env):
    """`sam sync --watch --code`, ready once its watcher runs. Its output goes to --log (the
    tail is shown if it exits or never gets ready)."""
    log_path = args.log or os.path.join(SCRATCH, "sam-watch.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([args.sam, "sync", "--watch", "--code", "--stack-name", args.stack, "--region",
                             env["AWS_DEFAULT_REGION"], "--no-dependency-layer"],
                            cwd=args.project, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent)
    # The development-stack confirmation (asked once per stack and SAM config dir).
    proc.stdin.write(b"y\n")
    proc.stdin.close()
    deadline = time.monotonic() + 120
    try:
        while True:
            text = open(log_path, errors="replace").read()
            if "Sync watch started." in text:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {proc.returncode}" if proc.returncode is not None else "not ready after 120 s"
                raise SystemExit(f"sam sync --watch {why}:\n" + "\n".join(text.splitlines()[-15:]))
            time.sleep(0.05)
        # The watchdog observer starts right after that line; give it time to set its inotify watches.
        time.sleep(1.0)
    except BaseException:
        stop(proc, signal.SIGINT)
        raise
    return proc, env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamb", help="lamb binary (modes watch, trigger, --rss)")
    ap.add_argument("--sam", help="sam binary (mode sam)")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--stack", required=True)
    ap.add_argument("--mode", choices=["watch", "trigger", "sam"], default="watch")
    ap.add_argument("--edits", type=int, default=25)
    ap.add_argument("--file", default="functions/hello_node/index.js")
    ap.add_argument("--function", default="HelloNode")
    ap.add_argument("--poll-ms", type=float, default=2, help="GetFunctionConfiguration interval while waiting")
    ap.add_argument("--log", help="mode sam: where sam's output goes (default: a temporary file)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds an edit may take to go live")
    ap.add_argument("--rss", action="store_true", help="report the idle daemon's RSS instead")
    args = ap.parse_args()
    if args.mode == "sam" and not args.rss and not args.sam:
        ap.error("--mode sam needs --sam")
    if (args.mode != "sam" or args.rss) and not args.lamb:
        ap.error("--mode watch/trigger and --rss need --lamb")
    env = dict(os.environ, AWS_ENDPOINT_URL=args.endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    # bench/run's SIGTERM, like Ctrl+C, goes through the `finally`s below and stops the watcher.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.rss:
        proc, _ = start_daemon(args, env, [])
        try:
            time.sleep(2)
            rss_kb = 0
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss_kb = int(line.split()[1])
        finally:
            stop(proc)
        print(json.dumps({"rss_mb": rss_kb / 1024}))
        return

    # The polls sign with a key of their own, so the emulator's request log tells them from
    # the watcher's calls.
    cfn = boto3.client("cloudformation", endpoint_url=args.endpoint, region_name="us-east-1",
                       aws_access_key_id=POLL_KEY, aws_secret_access_key="bench")
    lam = boto3.client("lambda", endpoint_url=args.endpoint, region_name="us-east-1",
                       aws_access_key_id=POLL_KEY, aws_secret_access_key="bench")
    name = cfn.describe_stack_resource(StackName=args.stack, LogicalResourceId=args.function)[
        "StackResourceDetail"]["PhysicalResourceId"]
    if args.mode == "sam":
        proc, denv = start_sam(args, env)
    else:
        extra = ["--debounce-ms", "60000"] if args.mode == "trigger" else []
        proc, denv = start_daemon(args, env, extra)
    path = os.path.join(args.project, args.file)
    original = open(path).read()
    comment = "#" if path.endswith((".py", ".sh", ".rb")) or "." not in os.path.basename(path) else "//"
    times = []
    on_path = []
    try:
        for i in range(args.edits):
            before = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
            requests_log(args.endpoint, "DELETE")
            with open(path, "w") as f:
                f.write(original + f"{comment} latency edit {i} {time.time_ns()}\n")
            t0 = time.perf_counter()
            if args.mode == "trigger":
                subprocess.run([args.lamb, "trigger", args.file], cwd=args.project, env=denv, check=True)
            while lam.get_function_configuration(FunctionName=name)["CodeSha256"] == before:
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"edit {i} never went live (waited {args.timeout:.0f} s)")
                if proc.poll() is not None:
                    raise SystemExit(f"the watcher exited with {proc.returncode} during edit {i}")
                time.sleep(args.poll_ms / 1000)
            times.append((time.perf_counter() - t0) * 1000)
            # The watcher's calls up to and including the one that pushed the code.
            calls = [e["action"] for e in requests_log(args.endpoint) if e.get("key") != POLL_KEY]
            if "UpdateFunctionCode" in calls:
                on_path.append(calls.index("UpdateFunctionCode") + 1)
            time.sleep(0.15)
    finally:
        with open(path, "w") as f:
            f.write(original)
        stop(proc, signal.SIGINT if args.mode == "sam" else signal.SIGTERM)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    calls = statistics.median(on_path) if on_path else None
    print(json.dumps({"p50": statistics.median(times), "p95": p95, "max": times[-1], "n": len(times),
                      "calls_per_save": calls}))


if __name__ == "__main__":
    main()
