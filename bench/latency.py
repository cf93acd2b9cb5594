#!/usr/bin/env python3
"""Save-to-live latency of `lamb sync --watch`: a file is written, then Lambda (the emulator) is
polled until GetFunctionConfiguration reports a new CodeSha256. Run by bench/run with the
emulator venv's python (it needs boto3); prints one JSON object.

    latency.py --lamb BIN --endpoint URL --project DIR --stack NAME --mode watch|trigger --edits N
    latency.py --lamb BIN --endpoint URL --project DIR --stack NAME --rss
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

import boto3


def start_daemon(args, env, extra):
    tmp = tempfile.mkdtemp(prefix="lamb-latency-")
    notify_path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(120)
    env = dict(env, NOTIFY_SOCKET=notify_path, XDG_RUNTIME_DIR=tmp)
    proc = subprocess.Popen([args.lamb, "sync", "--watch", "--yes", "--stack-name", args.stack, "-q"] + extra,
                            cwd=args.project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        msg = sock.recv(4096).decode()
        if msg.startswith("READY=1"):
            return proc, env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamb", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--stack", required=True)
    ap.add_argument("--mode", choices=["watch", "trigger"], default="watch")
    ap.add_argument("--edits", type=int, default=25)
    ap.add_argument("--file", default="functions/hello_node/index.js")
    ap.add_argument("--function", default="HelloNode")
    ap.add_argument("--rss", action="store_true", help="report the idle daemon's RSS instead")
    args = ap.parse_args()
    env = dict(os.environ, AWS_ENDPOINT_URL=args.endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")

    if args.rss:
        proc, _ = start_daemon(args, env, [])
        time.sleep(2)
        rss_kb = 0
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        proc.terminate()
        proc.wait()
        print(json.dumps({"rss_mb": rss_kb / 1024}))
        return

    cfn = boto3.client("cloudformation", endpoint_url=args.endpoint, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    lam = boto3.client("lambda", endpoint_url=args.endpoint, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    name = cfn.describe_stack_resource(StackName=args.stack, LogicalResourceId=args.function)[
        "StackResourceDetail"]["PhysicalResourceId"]
    extra = ["--debounce-ms", "60000"] if args.mode == "trigger" else []
    proc, denv = start_daemon(args, env, extra)
    path = os.path.join(args.project, args.file)
    original = open(path).read()
    times = []
    try:
        for i in range(args.edits):
            before = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
            with open(path, "w") as f:
                f.write(original + f"// latency edit {i} {time.time_ns()}\n")
            t0 = time.perf_counter()
            if args.mode == "trigger":
                subprocess.run([args.lamb, "trigger", args.file], cwd=args.project, env=denv, check=True)
            while lam.get_function_configuration(FunctionName=name)["CodeSha256"] == before:
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"edit {i} never went live")
                time.sleep(0.002)
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.15)
    finally:
        with open(path, "w") as f:
            f.write(original)
        proc.terminate()
        proc.wait()
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(json.dumps({"p50": statistics.median(times), "p95": p95, "max": times[-1], "n": len(times)}))


if __name__ == "__main__":
    main()
