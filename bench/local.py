#!/usr/bin/env python3
"""lamb local, measured: `bench/local.py LAMB TMPDIR RUNS` prints one JSON list of table rows
(benchmark, lamb, reference, comparison, target, met) on stdout; bench/run puts them in its table.

  * cold start of a python hello handler: process spawn to first response, from the REPORT
    line of `lamb local invoke` (Init Duration + Duration), median of RUNS;
  * one-shot `lamb local invoke` wall time against the peers, on the same handler and event,
    side by side: python-lambda-local (PyPI) for python, lambda-local (npm) for node; they are
    installed into <tmp> by this script (never in CI); a peer that cannot be installed is
    reported as such;
  * warm invoke through `lamb local start-api`: one keep-alive HTTP client, GET /hello,
    p50/p95 over 1000 requests after a warm-up;
  * requests per second through start-api with keep-alive: wrk when installed (2 threads,
    16 connections), else 4 python clients;
  * save-to-new-response through hot reload: the handler file rewritten, then GET /hello
    polled until the new body comes back; p50/p95 over 20 edits.
"""
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HELLO_PY = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hello %s'}\n"
HELLO_JS = "exports.handler = async () => ({ statusCode: 200, body: 'hello' });\n"
TEMPLATE = """Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello
      Handler: app.handler
      Runtime: python%s
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /hello, Method: get}
  HelloNode:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: node, Handler: index.handler, Runtime: nodejs20.x}
"""


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def project(tmp):
    d = os.path.join(tmp, "local-bench")
    os.makedirs(os.path.join(d, "hello"), exist_ok=True)
    os.makedirs(os.path.join(d, "node"), exist_ok=True)
    ver = "%d.%d" % sys.version_info[:2]
    open(os.path.join(d, "template.yaml"), "w").write(TEMPLATE % ver)
    open(os.path.join(d, "hello", "app.py"), "w").write(HELLO_PY % "v0")
    open(os.path.join(d, "node", "index.js"), "w").write(HELLO_JS)
    open(os.path.join(d, "event.json"), "w").write("{}")
    return d


def wall(args, cwd, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_starts(lamb, d, runs):
    """Init Duration + Duration of REPORT lines, in ms."""
    out = []
    for _ in range(runs):
        p = subprocess.run([lamb, "local", "invoke", "Hello"], cwd=d, capture_output=True, text=True, check=True)
        m = re.search(r"Duration: ([\d.]+) ms\t.*Init Duration: ([\d.]+) ms", p.stderr)
        if m:
            out.append(float(m.group(1)) + float(m.group(2)))
    return out


def install_peers(tmp):
    """python-lambda-local and lambda-local, each from its registry; (py_cmd, node_cmd, notes)."""
    notes = []
    py_cmd = node_cmd = None
    venv = os.path.join(tmp, "peer-venv")
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "python-lambda-local==0.1.13"],
                       check=True, capture_output=True, timeout=300)
        py_cmd = os.path.join(venv, "bin", "python-lambda-local")
    except (subprocess.SubprocessError, OSError) as e:
        notes.append(f"python-lambda-local not installed ({e.__class__.__name__})")
    npm_dir = os.path.join(tmp, "peer-npm")
    try:
        os.makedirs(npm_dir, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-audit", "--no-fund", "-s", "lambda-local@2.2.0"],
                       check=True, capture_output=True, timeout=300)
        node_cmd = os.path.join(npm_dir, "node_modules", ".bin", "lambda-local")
    except (subprocess.SubprocessError, OSError) as e:
        notes.append(f"lambda-local not installed ({e.__class__.__name__})")
    return py_cmd, node_cmd, notes


class Server:
    def __init__(self, lamb, d):
        self.log = open(os.path.join(d, "server.log"), "w+")
        self.proc = subprocess.Popen([lamb, "local", "start-api", "--port", "0"], cwd=d, stdout=subprocess.DEVNULL,
                                     stderr=self.log, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            text = open(self.log.name).read()
            m = re.search(r"http://([\d.]+):(\d+) ", text)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                return
            if self.proc.poll() is not None:
                raise RuntimeError("start-api exited: " + text)
            time.sleep(0.02)
        raise RuntimeError("start-api did not start")

    def conn(self):
        c = http.client.HTTPConnection(self.host, self.port)
        c.connect()
        import socket
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def get(conn, path="/hello"):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def main():
    lamb, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    d = project(tmp)
    rows = []
    subprocess.run([lamb, "build", "-q"], cwd=d, check=True)

    colds = cold_starts(lamb, d, max(runs, 5))
    c50 = statistics.median(colds)
    rows.append(["local: cold start, python hello (ms)", f"{c50:.0f}", "SAM local (Docker): ~1000-10000 (published)",
                 f"spawn to first response; max {max(colds):.0f} ms", "<= 100 ms", c50 <= 100])

    py_cmd, node_cmd, notes = install_peers(tmp)
    lamb_py = wall([lamb, "local", "invoke", "Hello", "-e", "event.json"], d, runs)
    if py_cmd:
        peer = wall([py_cmd, "-f", "handler", "-t", "3", "hello/app.py", "event.json"], d, runs)
        rows.append(["local: one-shot invoke, python (ms)", f"{lamb_py * 1000:.0f}", f"python-lambda-local {peer * 1000:.0f}",
                     f"{peer / lamb_py:.1f}x; lamb includes its no-change build", "(reported)", True])
    else:
        rows.append(["local: one-shot invoke, python (ms)", f"{lamb_py * 1000:.0f}", "-", "; ".join(notes), "(reported)", True])
    lamb_node = wall([lamb, "local", "invoke", "HelloNode", "-e", "event.json"], d, runs)
    if node_cmd:
        peer = wall([node_cmd, "-l", "node/index.js", "-h", "handler", "-e", "event.json", "--verboselevel", "0"], d, runs)
        rows.append(["local: one-shot invoke, node (ms)", f"{lamb_node * 1000:.0f}", f"lambda-local {peer * 1000:.0f}",
                     f"{peer / lamb_node:.1f}x; lamb includes its no-change build", "(reported)", True])
    else:
        rows.append(["local: one-shot invoke, node (ms)", f"{lamb_node * 1000:.0f}", "-", "; ".join(notes), "(reported)", True])

    server = Server(lamb, d)
    try:
        conn = server.conn()
        for _ in range(50):
            assert get(conn)[0] == 200
        lat = []
        for _ in range(1000):
            t0 = time.perf_counter()
            status, _ = get(conn)
            lat.append((time.perf_counter() - t0) * 1000)
            assert status == 200
        p50, p95 = pct(lat, 50), pct(lat, 95)
        rows.append(["local: warm invoke via start-api, p50 / p95 (ms)", f"{p50:.2f} / {p95:.2f}",
                     "SAM local (Docker): ~1000 per request (published)", "python hello, one keep-alive client, 1000 requests",
                     "p50 <= 2 ms", p50 <= 2])

        if shutil.which("wrk"):
            out = subprocess.run(["wrk", "-t2", "-c16", "-d5s", f"http://{server.host}:{server.port}/hello"],
                                 capture_output=True, text=True).stdout
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            rps, how = (float(m.group(1)) if m else 0.0), "wrk -t2 -c16, 5 s"
        else:
            count = [0]
            stop = time.time() + 5

            def client():
                c = server.conn()
                while time.time() < stop:
                    get(c)
                    count[0] += 1
            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rps, how = count[0] / 5, "4 python keep-alive clients, 5 s (wrk not installed)"
        rows.append(["local: requests per second via start-api", f"{rps:.0f}", "-", how + "; 1 warm instance", "(reported)", True])

        reload = []
        app = os.path.join(d, "hello", "app.py")
        for i in range(1, 21):
            want = f"hello v{i}".encode()
            t0 = time.perf_counter()
            tmpf = app + ".tmp"
            open(tmpf, "w").write(HELLO_PY % f"v{i}")
            os.replace(tmpf, app)
            deadline = t0 + 30
            while True:
                status, body = get(conn)
                if body == want:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError("the edit never came back: " + open(server.log.name).read()[-2000:])
            reload.append((time.perf_counter() - t0) * 1000)
        r50, r95 = pct(reload, 50), pct(reload, 95)
        rows.append(["local: save to new response via hot reload, p50 / p95 (ms)", f"{r50:.0f} / {r95:.0f}",
                     "SAM: rebuild + restart (no hot reload)", "20 edits; 20 ms quiet window included", "p50 <= 100 ms", r50 <= 100])
    finally:
        server.stop()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
