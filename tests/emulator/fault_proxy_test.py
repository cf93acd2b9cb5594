#!/usr/bin/env python3
"""Test for fault_proxy.py (plain python, no pytest), run with the emulator venv's python.

    <venv>/bin/python tests/emulator/fault_proxy_test.py

Starts the emulator and the fault proxy in front of it, drives both with boto3 (retries
off, so every injected fault is seen), prints PASS/FAIL per check and a final
"N passed, N failed" line; exits 1 if any check failed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
BUCKET = "lamb-proxy-test"
FN = "lamb-proxy-fn"
STACK = "lamb-proxy-stack"

RESULTS: list[tuple[str, bool, str]] = []

STACK_TEMPLATE = json.dumps({
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "lamb-proxy-topic"}}},
    "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}},
})
STACK_TEMPLATE_V2 = json.dumps({
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "lamb-proxy-topic"}},
                  "Other": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "lamb-proxy-topic-2"}}},
})

# The rewrite examples documented in fault_proxy.py (as JSON text, exactly as a test would POST them).
LAST_UPDATE_REWRITE = r'''{"fault": "rewrite", "action": "GetFunctionConfiguration", "times": 2,
  "find": "\"LastUpdateStatus\":\\s*\"Successful\"", "replace": "\"LastUpdateStatus\": \"InProgress\""}'''
STACK_STATUS_REWRITE = r'''{"fault": "rewrite", "action": "DescribeStacks",
  "find": "<StackStatus>[A-Z_]+</StackStatus>", "replace": "<StackStatus>UPDATE_ROLLBACK_FAILED</StackStatus>"}'''


def check(name: str, fn: Callable[[], Any]) -> Any:
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001
        detail = f"{type(e).__name__}: {e}"
        RESULTS.append((name, False, detail))
        print(f"FAIL {name}: {detail}", flush=True)
        if os.environ.get("SMOKE_TRACEBACK"):
            traceback.print_exc()
        return None
    RESULTS.append((name, True, ""))
    print(f"PASS {name}", flush=True)
    return result


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def client_error(fn: Callable[[], Any]) -> tuple[str, str, int, dict[str, str]]:
    """(code, message, HTTP status, headers) of the ClientError `fn` raises."""
    try:
        fn()
    except ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        return (e.response["Error"].get("Code", ""), e.response["Error"].get("Message", ""),
                meta.get("HTTPStatusCode", 0), {k.lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()})
    raise AssertionError("expected a ClientError, the call succeeded")


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------


class Proc:
    """A child started with the port-file protocol (emulator or proxy)."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=f"lamb-{name}-")
        self.port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args, "--port", "0", "--port-file", self.port_file, "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = 0

    def wait_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.read_log()}")
            if os.path.exists(self.port_file):
                text = open(self.port_file).read().strip()
                if text:
                    self.port = int(text)
                    return self.port
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not write its port file in time")

    def read_log(self) -> str:
        try:
            return open(self.log_path, errors="replace").read()[-4000:]
        except OSError:
            return ""

    def stop(self, close_stdin: bool = False) -> int | None:
        if close_stdin and self.proc.stdin and self.proc.poll() is None:
            self.proc.stdin.close()  # --exit-on-stdin-eof
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def expect_reset(port: int, request: bytes) -> None:
    """Sends a raw HTTP request to the proxy and expects an RST, not an answer or a clean close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(request)
    try:
        data = s.recv(100)
        raise AssertionError(f"got {data!r} instead of a reset")
    except ConnectionResetError:
        pass
    finally:
        s.close()


def http_json(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


class Faults:
    def __init__(self, port: int) -> None:
        self.port = port

    def add(self, *rules: Any) -> list[int]:
        specs = [json.loads(r) if isinstance(r, str) else r for r in rules]
        status, out = http_json(self.port, "POST", "/_faults", {"rules": specs})
        expect(status == 200, f"POST /_faults {status}: {out}")
        return out["ids"]

    def clear(self) -> None:
        http_json(self.port, "DELETE", "/_faults")

    def stats(self) -> dict[str, Any]:
        return http_json(self.port, "GET", "/_faults")[1]

    def injected(self, kind: str) -> int:
        return int(self.stats()["injected"].get(kind, 0))

    def repoint(self, port: int) -> None:
        status, out = http_json(self.port, "POST", "/_upstream", {"url": f"http://127.0.0.1:{port}"})
        expect(status == 200, f"POST /_upstream {status}: {out}")


def clients(port: int, **config: Any) -> dict[str, Any]:
    kw = dict(
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # botocore's legacy mode reads max_attempts as *retries* ({"max_attempts": 1} still
        # retries a throttle once); total_max_attempts 1 is one attempt, no retry.
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"},
                      **config),
    )
    return {name: boto3.client(name, **kw) for name in ("cloudformation", "s3", "lambda", "iam", "sts")}


def bodies_of(client: Any) -> list[bytes]:
    """Collects the raw response bodies `client` parses from now on."""
    seen: list[bytes] = []

    def cap(response_dict: dict[str, Any] | None = None, **_: Any) -> None:
        if response_dict and isinstance(response_dict.get("body"), bytes):
            seen.append(response_dict["body"])

    client.meta.events.register("before-parse", cap)
    return seen


# --------------------------------------------------------------------------
# A fake upstream that records raw requests and answers chunked
# --------------------------------------------------------------------------


class RecordingUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _any(self) -> None:
                raw_headers = [(k, v) for k, v in self.headers.items()]
                if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
                    wire = b""
                    while True:
                        line = self.rfile.readline()
                        wire += line
                        n = int(line.strip() or b"0", 16)
                        if n == 0:
                            wire += self.rfile.readline()
                            break
                        wire += self.rfile.read(n) + self.rfile.readline()
                    body = wire
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"line": self.raw_requestline, "headers": raw_headers, "body": body})
                chunks = [b"hello", b" chunked", b" world"]
                out = (b"HTTP/1.1 201 Created\r\nX-Dup: a\r\nX-Dup: b\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n")
                for c in chunks:
                    out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
                out += b"0\r\n\r\n"
                self.wfile.write(out)
                self.close_connection = True

            do_GET = do_POST = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------


def run(emu_port: int, proxy_port: int) -> None:
    faults = Faults(proxy_port)

    def check(name: str, fn: Callable[[], Any]) -> Any:
        """Each case starts with no rules and zeroed stats, whatever the previous one left."""
        faults.clear()
        return globals()["check"](name, fn)
    c = clients(proxy_port)
    direct = clients(emu_port)
    cfn, s3, lam, iam, sts = c["cloudformation"], c["s3"], c["lambda"], c["iam"], c["sts"]
    code_v1 = make_zip({"app.py": "def handler(event, context):\n    return 1\n"})
    code_v2 = make_zip({"app.py": "def handler(event, context):\n    return 2\n"})
    state: dict[str, Any] = {}

    # ---------------- normal traffic ----------------

    expected_actions = [
        ("iam", "CreateRole"), ("s3", "CreateBucket"), ("s3", "HeadBucket"), ("s3", "PutObject"),
        ("s3", "HeadObject"), ("s3", "GetObject"), ("s3", "ListObjectsV2"), ("s3", "CreateMultipartUpload"),
        ("s3", "UploadPart"), ("s3", "CompleteMultipartUpload"), ("lambda", "CreateFunction"),
        ("lambda", "ListFunctions"), ("lambda", "GetFunction"), ("lambda", "GetFunctionConfiguration"),
        ("lambda", "UpdateFunctionCode"), ("lambda", "UpdateFunctionConfiguration"), ("lambda", "PublishVersion"),
        ("lambda", "CreateAlias"), ("lambda", "UpdateAlias"), ("lambda", "GetAlias"),
        ("lambda", "PublishLayerVersion"), ("lambda", "GetLayerVersion"), ("lambda", "GetLayerVersionByArn"),
        ("cloudformation", "CreateStack"), ("cloudformation", "DescribeStacks"), ("sts", "GetCallerIdentity"),
    ]

    def normal_traffic() -> None:
        # A delay_ms 0 rule per expected (service, action): each must fire exactly once, which
        # checks the proxy names the operation as the brief says, without changing anything.
        faults.add(*[{"fault": "delay", "delay_ms": 0, "service": s, "action": a} for s, a in expected_actions])
        role = iam.create_role(RoleName="lamb-proxy-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        state["role"] = role
        s3.create_bucket(Bucket=BUCKET)
        s3.head_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="dir/code.zip", Body=code_v1)
        expect(s3.head_object(Bucket=BUCKET, Key="dir/code.zip")["ContentLength"] == len(code_v1), "head length")
        expect(s3.get_object(Bucket=BUCKET, Key="dir/code.zip")["Body"].read() == code_v1, "object bytes differ")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        expect(keys == ["dir/code.zip"], f"keys {keys}")
        up = s3.create_multipart_upload(Bucket=BUCKET, Key="big.bin")["UploadId"]
        part = s3.upload_part(Bucket=BUCKET, Key="big.bin", UploadId=up, PartNumber=1, Body=b"x" * 1000)
        s3.complete_multipart_upload(Bucket=BUCKET, Key="big.bin", UploadId=up,
                                     MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
        created = lam.create_function(FunctionName=FN, Runtime="python3.12", Role=role, Handler="app.handler",
                                      Code={"S3Bucket": BUCKET, "S3Key": "dir/code.zip"})
        expect(created["CodeSha256"] == code_sha256(code_v1), "CreateFunction sha")
        expect(FN in [f["FunctionName"] for f in lam.list_functions()["Functions"]], "ListFunctions")
        lam.get_function(FunctionName=FN)
        updated = lam.update_function_code(FunctionName=FN, ZipFile=code_v2)
        expect(updated["CodeSha256"] == code_sha256(code_v2), "UpdateFunctionCode sha")
        lam.update_function_configuration(FunctionName=FN, Environment={"Variables": {"A": "b c=d&e"}})
        cfg = lam.get_function_configuration(FunctionName=FN)
        expect(cfg["Environment"]["Variables"] == {"A": "b c=d&e"}, f"env {cfg.get('Environment')}")
        expect(cfg["CodeSha256"] == code_sha256(code_v2), "GetFunctionConfiguration sha")
        ver = lam.publish_version(FunctionName=FN)["Version"]
        lam.create_alias(FunctionName=FN, Name="live", FunctionVersion=ver)
        lam.update_alias(FunctionName=FN, Name="live", FunctionVersion=ver, Description="via proxy")
        expect(lam.get_alias(FunctionName=FN, Name="live")["Description"] == "via proxy", "alias")
        layer = lam.publish_layer_version(LayerName="lamb-proxy-layer", Content={"ZipFile": code_v1})
        lam.get_layer_version(LayerName="lamb-proxy-layer", VersionNumber=layer["Version"])
        lam.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])
        cfn.create_stack(StackName=STACK, TemplateBody=STACK_TEMPLATE)
        st = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        expect(sts.get_caller_identity()["Account"] == "123456789012", "sts")
        # What went through the proxy is what the emulator has.
        d = direct["lambda"].get_function_configuration(FunctionName=FN)
        expect(d["CodeSha256"] == code_sha256(code_v2) and d["Environment"] == cfg["Environment"], "direct view")
        stats = faults.stats()
        fired = {(r["service"][0], r["action"][0]): r["fired"] for r in stats["rules"]}
        wrong = {k: v for k, v in fired.items() if v != 1}
        expect(not wrong, f"operations not named as expected (fired != 1): {wrong}")
        expect(stats["requests"] >= len(expected_actions), f"requests {stats['requests']}")
        faults.clear()
        after = faults.stats()
        expect(after["rules"] == [] and after["injected"] == {} and after["events"] == []
               and after["requests"] == 0, f"DELETE /_faults left {after}")

    check("proxy: normal traffic passes (IAM, S3 incl. multipart, Lambda create/update/get, CFN, STS) "
          "and operations are named", normal_traffic)

    def unchanged_bytes() -> None:
        via, straight = bodies_of(lam), bodies_of(direct["lambda"])
        lam.get_function_configuration(FunctionName=FN)
        direct["lambda"].get_function_configuration(FunctionName=FN)
        expect(via == straight and len(via) == 1, f"bodies differ:\n{via}\n{straight}")
        via, straight = bodies_of(cfn), bodies_of(direct["cloudformation"])
        cfn.get_template(StackName=STACK)
        direct["cloudformation"].get_template(StackName=STACK)
        strip = [b.split(b"<ResponseMetadata>")[0] for b in via + straight]
        expect(len(strip) == 2 and strip[0] == strip[1], f"bodies differ: {strip}")

    check("proxy: response bodies are byte for byte the emulator's", unchanged_bytes)

    def keep_alive_and_framing() -> None:
        up = RecordingUpstream()
        try:
            faults.repoint(up.port)
            conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
            headers = {"Host": "example.test:1234", "Authorization": "AWS4-HMAC-SHA256 Credential=AK/20240101/"
                       "us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
                       "X-Amz-Date": "20240101T000000Z", "x-MiXeD-Case": "Keep  two spaces"}
            conn.request("PUT", "/2015-03-31/functions/a%3Ab/code?x=1&y=%2F", body=b"\x00\x01binary\xff",
                         headers=headers)
            r = conn.getresponse()
            body = r.read()
            expect(r.status == 201 and body == b"hello chunked world", f"{r.status} {body!r}")
            expect(r.getheader("Content-Length") == str(len(body)), f"no Content-Length: {r.getheaders()}")
            expect(r.getheader("Transfer-Encoding") is None, "chunked passed through")
            expect(r.msg.get_all("X-Dup") == ["a", "b"], f"duplicate headers {r.msg.get_all('X-Dup')}")
            sock = conn.sock
            expect(sock is not None, "proxy closed the keep-alive connection")
            # Second request on the same connection, chunked request body.
            conn.putrequest("POST", "/chunked", skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", "h")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            conn.send(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            r = conn.getresponse()
            expect(r.read() == b"hello chunked world", "second response")
            expect(conn.sock is sock, "connection not reused")
            conn.close()
            first, second = up.requests
            expect(first["line"] == b"PUT /2015-03-31/functions/a%3Ab/code?x=1&y=%2F HTTP/1.1\r\n",
                   f"request line {first['line']!r}")
            expect(first["body"] == b"\x00\x01binary\xff", f"body {first['body']!r}")
            sent = [(k, v) for k, v in first["headers"]]
            for k, v in headers.items():
                expect((k, v) in sent, f"header {k}: {v} not forwarded as is: {sent}")
            expect(second["body"] == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", f"chunked body {second['body']!r}")
            st = faults.stats()
            expect(st["requests"] == 2, f"requests {st['requests']}")
        finally:
            faults.repoint(emu_port)
            faults.clear()
            up.stop()

    check("proxy: byte-for-byte forwarding, chunked both ways, keep-alive to the client", keep_alive_and_framing)

    # ---------------- error faults ----------------

    def throttle() -> None:
        faults.add({"fault": "throttle", "service": "lambda", "action": "GetFunction"},
                   {"fault": "throttle", "service": "cloudformation", "action": "DescribeStacks"},
                   {"fault": "throttle", "service": "s3", "action": "GetObject"},
                   {"fault": "throttle", "service": "sts"})
        code, msg, status, headers = client_error(lambda: lam.get_function(FunctionName=FN))
        expect((code, msg, status) == ("TooManyRequestsException", "Rate exceeded", 429), f"{code} {msg} {status}")
        expect("retry-after" not in headers, "Retry-After sent")
        code, msg, status, _ = client_error(lambda: cfn.describe_stacks(StackName=STACK))
        expect((code, msg, status) == ("Throttling", "Rate exceeded", 400), f"{code} {msg} {status}")
        code, msg, status, _ = client_error(lambda: s3.get_object(Bucket=BUCKET, Key="dir/code.zip"))
        expect((code, status) == ("SlowDown", 503), f"{code} {msg} {status}")
        code, _, status, _ = client_error(lambda: sts.get_caller_identity())
        expect((code, status) == ("Throttling", 400), f"{code} {status}")
        lam.get_function(FunctionName=FN)  # times 1: the next call passes
        expect(faults.injected("throttle") == 4, f"injected {faults.stats()['injected']}")
        # boto3 with its default retries gets through a single throttle.
        retrying = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{proxy_port}", region_name=REGION,
                                aws_access_key_id="testing", aws_secret_access_key="testing",
                                config=Config(retries={"max_attempts": 3, "mode": "standard"}))
        faults.add({"fault": "throttle", "action": "GetFunction"})
        retrying.get_function(FunctionName=FN)
        expect(faults.injected("throttle") == 5, "retried throttle not counted")
        faults.clear()

    check("throttle: lambda 429 TooManyRequestsException, CFN/STS Throttling, S3 503 SlowDown", throttle)

    def conflict() -> None:
        faults.add({"fault": "conflict", "service": "lambda"}, {"fault": "conflict", "service": "cloudformation"},
                   {"fault": "conflict", "service": "s3"})
        code, msg, status, _ = client_error(
            lambda: lam.update_function_configuration(FunctionName=FN, Timeout=9))
        expect((code, status) == ("ResourceConflictException", 409), f"{code} {status}")
        expect(msg == "The operation cannot be performed at this time. An update is in progress for resource: "
               f"arn:aws:lambda:us-east-1:123456789012:function:{FN}", msg)
        code, msg, status, _ = client_error(lambda: cfn.update_stack(StackName=STACK, TemplateBody=STACK_TEMPLATE_V2))
        expect((code, status) == ("ValidationError", 400) and "UPDATE_IN_PROGRESS" in msg and STACK in msg,
               f"{code} {msg} {status}")
        code, _, status, _ = client_error(lambda: s3.put_object(Bucket=BUCKET, Key="k", Body=b"1"))
        expect((code, status) == ("OperationAborted", 409), f"{code} {status}")
        expect(direct["lambda"].get_function_configuration(FunctionName=FN)["Timeout"] != 9, "update reached moto")
        expect(faults.injected("conflict") == 3, f"{faults.stats()['injected']}")
        faults.clear()

    check("conflict: lambda 409 ResourceConflictException naming the function, CFN, S3", conflict)

    def server_errors() -> None:
        cases = [
            ("error500", "lambda", lambda: lam.get_function(FunctionName=FN), ("ServiceException", 500)),
            ("error503", "lambda", lambda: lam.get_function(FunctionName=FN), ("ServiceUnavailableException", 503)),
            ("error500", "cloudformation", lambda: cfn.describe_stacks(StackName=STACK), ("InternalFailure", 500)),
            ("error503", "cloudformation", lambda: cfn.describe_stacks(StackName=STACK),
             ("ServiceUnavailable", 503)),
            ("error500", "s3", lambda: s3.get_object(Bucket=BUCKET, Key="dir/code.zip"), ("InternalError", 500)),
            ("error503", "s3", lambda: s3.get_object(Bucket=BUCKET, Key="dir/code.zip"), ("ServiceUnavailable", 503)),
        ]
        for kind, service, call, want in cases:
            faults.add({"fault": kind, "service": service})
            code, _, status, _ = client_error(call)
            expect((code, status) == want, f"{kind} {service}: {code} {status}, want {want}")
        # HEAD: status only, no body (a body would corrupt the keep-alive stream).
        faults.add({"fault": "error503", "action": "HeadObject"})
        code, _, status, _ = client_error(lambda: s3.head_object(Bucket=BUCKET, Key="dir/code.zip"))
        expect(status == 503, f"HEAD {code} {status}")
        expect(s3.head_object(Bucket=BUCKET, Key="dir/code.zip")["ContentLength"] == len(code_v1), "HEAD after")
        # Overrides.
        faults.add({"fault": "error500", "action": "GetFunction", "status": 502, "code": "BadGateway",
                    "message": "custom"})
        code, msg, status, _ = client_error(lambda: lam.get_function(FunctionName=FN))
        expect((code, msg, status) == ("BadGateway", "custom", 502), f"{code} {msg} {status}")
        inj = faults.stats()["injected"]
        expect(inj == {"error500": 4, "error503": 4}, f"injected {inj}")
        faults.clear()

    check("error500/error503: lambda ServiceException/ServiceUnavailableException, CFN InternalFailure/"
          "ServiceUnavailable, S3 InternalError/ServiceUnavailable, HEAD, overrides", server_errors)

    def expired() -> None:
        faults.add({"fault": "expired", "times": -1})
        cases = [
            (lambda: lam.get_function(FunctionName=FN), ("ExpiredTokenException", 403)),
            (lambda: cfn.describe_stacks(StackName=STACK), ("ExpiredToken", 400)),
            (lambda: sts.get_caller_identity(), ("ExpiredToken", 400)),
            (lambda: s3.get_object(Bucket=BUCKET, Key="dir/code.zip"), ("ExpiredToken", 400)),
        ]
        for call, want in cases:
            code, msg, status, _ = client_error(call)
            expect((code, status) == want, f"{code} {status} {msg}, want {want}")
        code, msg, _, _ = client_error(lambda: lam.get_function(FunctionName=FN))
        expect(msg == "The security token included in the request is expired", msg)
        expect(faults.injected("expired") == 5, f"{faults.stats()['injected']}")
        faults.clear()
        lam.get_function(FunctionName=FN)

    check("expired: lambda 403 ExpiredTokenException, CFN/STS/S3 ExpiredToken; times -1 until removed", expired)

    def times_and_skip() -> None:
        faults.clear()
        ids = faults.add({"fault": "throttle", "action": "GetFunction", "skip": 2, "times": 2},
                         {"fault": "error500", "action": "GetFunction", "times": 1})
        got = []
        for _ in range(6):
            try:
                lam.get_function(FunctionName=FN)
                got.append("ok")
            except ClientError as e:
                got.append(e.response["Error"]["Code"])
        # Calls 1-2 are skipped by rule 1 and go to rule 2 (fires once, then call 2 passes);
        # calls 3-4 are throttled; later calls pass.
        want = ["ServiceException", "ok", "TooManyRequestsException", "TooManyRequestsException", "ok", "ok"]
        expect(got == want, f"{got} != {want}")
        st = faults.stats()
        rules = {r["id"]: r for r in st["rules"]}
        expect(rules[ids[0]]["remaining"] == 0 and rules[ids[0]]["skip_left"] == 0 and rules[ids[0]]["fired"] == 2,
               f"rule {rules[ids[0]]}")
        expect(rules[ids[1]]["remaining"] == 0 and rules[ids[1]]["fired"] == 1, f"rule {rules[ids[1]]}")
        expect([e["rule"] for e in st["events"]] == [ids[1], ids[0], ids[0]], f"events {st['events']}")
        ev = st["events"][1]
        expect(ev["fault"] == "throttle" and ev["service"] == "lambda" and ev["action"] == "GetFunction"
               and ev["path"] == f"/2015-03-31/functions/{FN}", f"event {ev}")
        expect(st["requests"] == 6, f"requests {st['requests']}")
        # Matchers: method, path regex, lists; a non-matching rule never fires.
        faults.clear()
        faults.add({"fault": "throttle", "method": "PUT", "path": "/configuration$"},
                   {"fault": "throttle", "action": ["ListFunctions", "GetAlias"], "times": 2},
                   {"fault": "throttle", "service": "s3", "path": "^/nothing-matches/"})
        lam.get_function_configuration(FunctionName=FN)
        code, *_ = client_error(lambda: lam.update_function_configuration(FunctionName=FN, Timeout=5))
        expect(code == "TooManyRequestsException", code)
        client_error(lambda: lam.list_functions())
        client_error(lambda: lam.get_alias(FunctionName=FN, Name="live"))
        fired = [r["fired"] for r in faults.stats()["rules"]]
        expect(fired == [1, 2, 0], f"fired {fired}")
        status, out = http_json(proxy_port, "POST", "/_faults", {"rules": [{"fault": "nope"}]})
        expect(status == 400 and "fault must be one of" in out["error"], f"{status} {out}")
        status, out = http_json(proxy_port, "POST", "/_faults", {"fault": "delay"})
        expect(status == 400 and "delay_ms" in out["error"], f"{status} {out}")
        status, out = http_json(proxy_port, "POST", "/_faults", {"fault": "throttle", "actoin": "X"})
        expect(status == 400 and "unknown rule field" in out["error"], f"{status} {out}")
        faults.clear()

    check("rules: times, skip, first matching rule wins, matchers, events, validation", times_and_skip)

    # ---------------- rewrite ----------------

    def rewrite_last_update_status() -> None:
        faults.add(LAST_UPDATE_REWRITE)
        seen = [lam.get_function_configuration(FunctionName=FN)["LastUpdateStatus"] for _ in range(3)]
        expect(seen == ["InProgress", "InProgress", "Successful"], f"{seen}")
        # boto3's function_updated waiter polls until Successful.
        faults.add(LAST_UPDATE_REWRITE)
        t0 = time.monotonic()
        lam.get_waiter("function_updated").wait(FunctionName=FN, WaiterConfig={"Delay": 0.05, "MaxAttempts": 10})
        expect(time.monotonic() - t0 < 5, "waiter slow")
        st = faults.stats()
        expect(st["injected"].get("rewrite") == 4, f"{st['injected']}")
        expect(all(e.get("replaced") == 1 for e in st["events"]), f"events {st['events']}")
        faults.clear()

    check("rewrite: GetFunctionConfiguration LastUpdateStatus InProgress for N polls (documented rule)",
          rewrite_last_update_status)

    def rewrite_stack_status() -> None:
        faults.add(STACK_STATUS_REWRITE)
        st = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        expect(st["StackStatus"] == "UPDATE_ROLLBACK_FAILED", st["StackStatus"])
        st = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        # status override on a forwarded answer
        faults.add({"fault": "rewrite", "action": "GetFunctionConfiguration", "find": "x^", "replace": "",
                    "status": 500})
        code, _, status, _ = client_error(lambda: lam.get_function_configuration(FunctionName=FN))
        expect(status == 500, f"{code} {status}")
        ev = faults.stats()["events"]
        expect([e.get("replaced") for e in ev] == [1, 0], f"events {ev}")
        faults.clear()

    check("rewrite: DescribeStacks StackStatus UPDATE_ROLLBACK_FAILED (documented rule), status override",
          rewrite_stack_status)

    # ---------------- connection faults ----------------

    def reset() -> None:
        http_json(emu_port, "DELETE", "/_lamb/requests")
        faults.add({"fault": "reset", "action": "GetFunction"})
        try:
            lam.get_function(FunctionName=FN)
            raise AssertionError("call succeeded")
        except (ConnectionClosedError, EndpointConnectionError) as e:
            expect("reset" in str(e).lower() or "closed" in str(e).lower() or "aborted" in str(e).lower(), str(e))
        lam.get_function(FunctionName=FN)  # times 1
        reached = [r["action"] for r in http_json(emu_port, "GET", "/_lamb/requests")[1]]
        expect(reached == ["GetFunction"], f"a reset request reached the emulator: {reached}")
        # At the socket level it is an RST, not a clean close.
        faults.add({"fault": "reset", "path": "^/raw$"})
        expect_reset(proxy_port, b"POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        expect(faults.injected("reset") == 2, f"{faults.stats()['injected']}")
        faults.clear()

    check("reset: the client connection is reset (RST) and the request never reaches the emulator", reset)

    def delay() -> None:
        faults.add({"fault": "delay", "action": "GetFunction", "delay_ms": 700})
        t0 = time.monotonic()
        lam.get_function(FunctionName=FN)
        took = time.monotonic() - t0
        expect(took >= 0.7, f"took {took:.3f}s")
        t0 = time.monotonic()
        lam.get_function(FunctionName=FN)
        expect(time.monotonic() - t0 < 0.5, "second call delayed too")
        # A client read timeout shorter than the delay times out; the call still happened.
        impatient = clients(proxy_port, read_timeout=0.3)["lambda"]
        faults.add({"fault": "delay", "action": "UpdateFunctionConfiguration", "delay_ms": 1000})
        try:
            impatient.update_function_configuration(FunctionName=FN, Description="delayed")
            raise AssertionError("no read timeout")
        except ReadTimeoutError:
            pass
        time.sleep(0.8)
        desc = direct["lambda"].get_function_configuration(FunctionName=FN)["Description"]
        expect(desc == "delayed", f"delayed update did not reach the emulator: {desc!r}")
        expect(faults.injected("delay") == 2, f"{faults.stats()['injected']}")
        faults.clear()

    check("delay: answer held delay_ms after forwarding; client read timeout", delay)

    def upstream_down() -> None:
        faults.repoint(free_port())
        try:
            lam.get_function(FunctionName=FN)
            raise AssertionError("call succeeded with the upstream down")
        except (ConnectionClosedError, EndpointConnectionError):
            pass
        expect(faults.injected("upstream_down") == 1, f"{faults.stats()['injected']}")
        ev = faults.stats()["events"]
        expect(ev[-1]["fault"] == "upstream_down" and ev[-1]["rule"] is None and ev[-1]["action"] == "GetFunction",
               f"{ev}")
        faults.repoint(emu_port)
        lam.get_function(FunctionName=FN)
        status, out = http_json(proxy_port, "GET", "/_upstream")
        expect(out["url"] == f"http://127.0.0.1:{emu_port}", f"{out}")
        status, out = http_json(proxy_port, "POST", "/_upstream", {"url": "ftp://x"})
        expect(status == 400, f"{status} {out}")
        faults.clear()

    check("upstream down (repointed to a dead port): connection reset, counted; repoint back", upstream_down)

    def max_in_flight() -> None:
        faults.add({"fault": "delay", "action": "UpdateFunctionConfiguration", "delay_ms": 400, "times": -1})
        errors: list[BaseException] = []

        def update(desc: str) -> None:
            try:
                clients(proxy_port)["lambda"].update_function_configuration(FunctionName=FN, Description=desc)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=update, args=(f"d{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expect(not errors, f"{errors}")
        mif = faults.stats()["max_in_flight"]
        expect(mif == {FN: 3}, f"max_in_flight {mif}")
        faults.clear()
        lam.update_function_code(FunctionName=FN, ZipFile=code_v1)
        lam.update_function_code(FunctionName=FN, ZipFile=code_v2)
        lam.get_function(FunctionName=FN)
        mif = faults.stats()["max_in_flight"]
        expect(mif == {FN: 1}, f"max_in_flight {mif}")
        faults.clear()
        # Different kinds of update on one function, the function named by ARN in one of them,
        # overlap: they count together, under the function's name.
        arn = direct["lambda"].get_function_configuration(FunctionName=FN)["FunctionArn"]
        faults.add({"fault": "delay", "action": ["UpdateFunctionCode", "UpdateFunctionConfiguration"],
                    "delay_ms": 500, "times": -1})
        calls = [lambda: clients(proxy_port)["lambda"].update_function_code(FunctionName=arn, ZipFile=code_v1),
                 lambda: clients(proxy_port)["lambda"].update_function_configuration(FunctionName=FN,
                                                                                     Description="overlap")]

        def call(fn: Callable[[], Any]) -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=call, args=(c,)) for c in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expect(not errors, f"{errors}")
        mif = faults.stats()["max_in_flight"]
        expect(mif == {FN: 2}, f"a code and a configuration update at once: max_in_flight {mif}")
        faults.clear()

    check("max_in_flight: concurrent lambda updates of one function are counted per function, "
          "across kinds", max_in_flight)

    def request_log() -> None:
        faults.add({"fault": "throttle", "action": "GetFunction"},
                   {"fault": "rewrite", "action": "GetFunctionConfiguration", "find": "Successful",
                    "replace": "InProgress"})
        client_error(lambda: lam.get_function(FunctionName=FN))
        lam.get_function_configuration(FunctionName=FN)
        lam.get_function_configuration(FunctionName=FN)
        arn = direct["lambda"].get_function_configuration(FunctionName=FN)["FunctionArn"]
        lam.get_function_configuration(FunctionName=arn)
        s3.head_bucket(Bucket=BUCKET)
        status, log = http_json(proxy_port, "GET", "/_requests")
        expect(status == 200, f"{status} {log}")
        got = [(e["seq"], e["action"], e["function"], e["fault"], e["replaced"], e["status"]) for e in log]
        want = [(1, "GetFunction", FN, "throttle", None, 429),
                (2, "GetFunctionConfiguration", FN, "rewrite", 1, 200),
                (3, "GetFunctionConfiguration", FN, None, None, 200),
                (4, "GetFunctionConfiguration", FN, None, None, 200),
                (5, "HeadBucket", "", None, None, 200)]
        expect(got == want, f"{got} != {want}")
        expect(all(e["start"] <= e["end"] for e in log) and log[0]["end"] <= log[1]["start"], f"times {log}")
        faults.clear()
        expect(http_json(proxy_port, "GET", "/_requests")[1] == [], "DELETE /_faults clears the log")

    check("request log: every request in order with its function, fault, rewrite, status and times",
          request_log)

    def reset_after() -> None:
        http_json(emu_port, "DELETE", "/_lamb/requests")
        faults.add({"fault": "reset_after", "action": "UpdateFunctionCode"})
        try:
            lam.update_function_code(FunctionName=FN, ZipFile=code_v2)
            raise AssertionError("call succeeded")
        except (ConnectionClosedError, EndpointConnectionError) as e:
            expect("reset" in str(e).lower() or "closed" in str(e).lower() or "aborted" in str(e).lower(), str(e))
        # The client saw an error, but the update was applied.
        reached = [r["action"] for r in http_json(emu_port, "GET", "/_lamb/requests")[1]]
        expect(reached == ["UpdateFunctionCode"], f"the request did not reach the emulator: {reached}")
        sha = direct["lambda"].get_function_configuration(FunctionName=FN)["CodeSha256"]
        expect(sha == code_sha256(code_v2), "the update was not applied")
        ev = faults.stats()["events"]
        expect(len(ev) == 1 and ev[0]["fault"] == "reset_after" and ev[0]["upstream_status"] == 200, f"{ev}")
        # At the socket level it is an RST after the upstream answered.
        faults.add({"fault": "reset_after", "action": "GetFunction"})
        expect_reset(proxy_port, f"GET /2015-03-31/functions/{FN} HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 "
                     "Credential=testing/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x"
                     "\r\n\r\n".encode())
        expect(faults.injected("reset_after") == 2, f"{faults.stats()['injected']}")
        faults.clear()
        lam.update_function_code(FunctionName=FN, ZipFile=code_v1)

    check("reset_after: the request is applied upstream, then the client connection is reset", reset_after)


def main() -> int:
    emu = Proc("emulator", [os.path.join(HERE, "lamb_emulator.py")])
    proxy: Proc | None = None
    try:
        emu_port = check("emulator: starts", emu.wait_port)
        if emu_port:
            proxy = Proc("proxy", [os.path.join(HERE, "fault_proxy.py"), "--upstream", f"http://127.0.0.1:{emu_port}"])
            proxy_port = check("proxy: starts and writes its port file", lambda: proxy.wait_port(15))
            if proxy_port:
                run(emu_port, proxy_port)
    finally:
        rc = proxy.stop() if proxy else None
        emu.stop(close_stdin=True)
    if proxy:
        RESULTS.append(("proxy: exits 0 on SIGTERM", rc == 0, f"rc={rc}"))
        print(f"{'PASS' if rc == 0 else 'FAIL'} proxy: exits 0 on SIGTERM (rc={rc})")

    def stdin_eof() -> None:
        p = Proc("proxy-eof", [os.path.join(HERE, "fault_proxy.py"), "--upstream", "http://127.0.0.1:9"])
        try:
            p.wait_port(15)
            assert p.proc.stdin is not None
            p.proc.stdin.close()
            rc = p.proc.wait(timeout=15)
            expect(rc == 0, f"rc={rc}")
        finally:
            p.stop()

    check("proxy: --exit-on-stdin-eof exits 0 when stdin closes", stdin_eof)
    failed = [r for r in RESULTS if not r[1]]
    if failed or os.environ.get("SMOKE_SHOW_LOG"):
        print("---- proxy log (tail) ----")
        print(proxy.read_log() if proxy else "")
        print("---- emulator log (tail) ----")
        print(emu.read_log())
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
