#!/usr/bin/env python3
r"""lamb fault proxy: an HTTP proxy in front of the test emulator that injects AWS faults.

Usage:
    python fault_proxy.py --upstream http://127.0.0.1:PORT --port 0 --port-file PATH
                          [--host 127.0.0.1] [--exit-on-stdin-eof] [--verbose]

Standard library only (it runs with the emulator venv's python but never imports moto).
Every request is forwarded to the upstream as it came (method, path and query, headers in
order with their case, Host and Authorization included, body bytes, chunked bodies
re-sent chunked), so SigV4 signatures stay valid. The answer is sent back with the
upstream's status and headers and a Content-Length; HTTP/1.1 keep-alive to the client works
(one upstream connection per request). The port file protocol is the emulator's: PORT 0
picks a free port, which is written (decimal + newline, atomically) to the port file once
the proxy answers. SIGTERM/SIGINT, or EOF on stdin with --exit-on-stdin-eof, stop it (exit 0).

Control endpoints (JSON in and out; never forwarded, never counted):

    POST   /_faults    {"rules": [RULE, ...]} (or one RULE) appends rules -> {"ids": [...]}
    DELETE /_faults    removes every rule and resets the stats
    GET    /_faults    {"rules": [RULE + "id", "remaining", "skip_left", "fired"],
                        "injected": {"<kind>": n}, "events": [{"rule", "fault", "service",
                        "action", "method", "path"}], "requests": n,
                        "max_in_flight": {"<function name>": n}, "upstream": url}
    GET    /_requests  every request since the last DELETE /_faults, in arrival order:
                       [{"seq", "service", "action", "method", "path", "function", "fault",
                         "replaced", "status", "start", "end"}]; "function" is the Lambda
                       function a lambda call names ("" otherwise), "fault" the kind injected
                       (or "upstream_down", or null), "replaced" the rewrite's substitutions,
                       "status" what the client got (null for a reset), "start"/"end" the
                       wall-clock times (UNIX seconds) it arrived and was answered
    POST   /_upstream  {"url": "http://127.0.0.1:PORT"} repoints the upstream
    GET    /_upstream  {"url": ...}

RULE fields: "fault" (required, one of FAULT_KINDS); matchers, each a string or a list of
strings, absent = any: "service" (SigV4 signing name from the Credential scope: lambda,
cloudformation, s3, sts, iam...), "action" (operation name, see `classify`), "method",
"path" (a regex searched in the path, query excluded); "times" (default 1, -1 = until
removed), "skip" (let the first K matching requests through untouched, default 0),
"delay_ms" (delay), "find"/"replace" (rewrite: a Python regex and its replacement),
"status" (overrides the status sent), "code"/"message" (override an error's code and
message). Rules are tried in the order they were added: a request gets the first matching
rule that has a count left; a matching rule still skipping counts the request as one of its
skips and the next rules are tried. Every injected fault counts in "injected" and appends an
event; a request the proxy could not forward (upstream unreachable, i.e. the emulator was
stopped) is answered with a connection reset and counts as "upstream_down".

"max_in_flight" is per Lambda function (its name, from a name or an ARN in the path), over
every call that changes it (UpdateFunctionCode, UpdateFunctionConfiguration, PublishVersion,
UpdateAlias) whatever the kind: a code update overlapping a configuration update of the same
function counts 2.

Fault kinds; error bodies are in the protocol each service's SDK parses (restJson with
x-amzn-ErrorType for lambda and unknown services, awsQuery XML for cloudformation, sts, iam,
sns, S3 XML for s3; no body for HEAD):

    kind       lambda                                 awsQuery                     s3
    throttle   429 TooManyRequestsException           400 Throttling               503 SlowDown
    conflict   409 ResourceConflictException          cloudformation: 400          409 OperationAborted
               "...An update is in progress for        ValidationError "Stack:X is
               resource: <function ARN>"               in UPDATE_IN_PROGRESS state
                                                       ..."; others: 409
                                                       ConcurrentModification
    error500   500 ServiceException                   500 InternalFailure          500 InternalError
    error503   503 ServiceUnavailableException        503 ServiceUnavailable       503 ServiceUnavailable
    expired    403 ExpiredTokenException              400 ExpiredToken             400 ExpiredToken
    reset      the request is read, then the client connection is closed with a TCP RST
               (the request never reaches the upstream)
    reset_after  the request is forwarded and applied upstream, then the client connection
               is closed with a TCP RST instead of the answer: the client sees an error for a
               write that happened
    delay      forwarded, then the answer waits delay_ms
    rewrite    forwarded, then re.sub(find, replace, body) on the answer (UTF-8 text)

Lambda has no modelled 503 error; ServiceUnavailableException is what its front end sends
when overloaded, and the SDK retries any 503 whatever the code. Throttles carry no
Retry-After, so SDK retries stay fast.

Examples (JSON as POSTed; the two rewrites are checked verbatim by fault_proxy_test.py):

    {"fault": "throttle", "service": "lambda", "action": "UpdateFunctionCode", "times": 2}
    {"fault": "conflict", "action": "UpdateFunctionConfiguration", "skip": 1}
    {"fault": "error503", "service": "cloudformation", "action": "DescribeStacks", "times": -1}
    {"fault": "expired", "service": "s3"}
    {"fault": "reset", "action": "PutObject"}
    {"fault": "reset_after", "action": "UpdateFunctionCode"}
    {"fault": "delay", "action": "GetFunction", "delay_ms": 1500}
    moto writes Lambda JSON with ": " between key and value (regex "LastUpdateStatus":\s*"Successful"):
    {"fault": "rewrite", "action": "GetFunctionConfiguration", "times": 3,
     "find": "\"LastUpdateStatus\":\\s*\"Successful\"", "replace": "\"LastUpdateStatus\": \"InProgress\""}
    CloudFormation XML (any status of the stack):
    {"fault": "rewrite", "action": "DescribeStacks",
     "find": "<StackStatus>[A-Z_]+</StackStatus>", "replace": "<StackStatus>UPDATE_ROLLBACK_FAILED</StackStatus>"}
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

FAULT_KINDS = ("throttle", "conflict", "error500", "error503", "expired", "reset", "reset_after", "delay",
               "rewrite")
ERROR_KINDS = ("throttle", "conflict", "error500", "error503", "expired")
RULE_FIELDS = {"fault", "service", "action", "method", "path", "times", "skip", "delay_ms", "find", "replace",
               "status", "code", "message"}

# Lambda calls that change a function: their concurrency per function is tracked.
LAMBDA_WRITES = {"UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"}

QUERY_NAMESPACES = {
    "cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
}

ACCOUNT = "123456789012"  # moto's default account, for ARNs in messages

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length"}

UPSTREAM_TIMEOUT = 600.0

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")

VERBOSE = False


def log(msg: str) -> None:
    if VERBOSE:
        print(f"fault_proxy: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Request classification: service (SigV4 signing name) and action (operation name)
# --------------------------------------------------------------------------


def _qs(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def signing_scope(headers: Any, query: str) -> tuple[str, str]:
    """(region, service) from the Authorization header's or a presigned URL's Credential."""
    auth = headers.get("Authorization", "") or ""
    m = _CREDENTIAL_SCOPE.search(auth)
    if not m:
        cred = _qs(query).get("X-Amz-Credential", [""])[0]
        m = _CREDENTIAL_SCOPE.search("Credential=" + unquote(cred))
    return (m.group(1), m.group(2)) if m else ("", "")


def lambda_action(method: str, path: str, query: str) -> str:
    """Lambda's REST routes (the API version prefix is ignored)."""
    segs = [s for s in path.split("/") if s]
    rest = segs[1:]
    if not rest:
        return ""
    head, r = rest[0], rest[1:]
    by_method: dict[str, str] = {}
    if head == "functions":
        if not r:
            by_method = {"GET": "ListFunctions", "POST": "CreateFunction"}
        elif len(r) == 1:
            by_method = {"GET": "GetFunction", "DELETE": "DeleteFunction"}
        else:
            sub, more = r[1], r[2:]
            if sub == "configuration":
                by_method = {"GET": "GetFunctionConfiguration", "PUT": "UpdateFunctionConfiguration"}
            elif sub == "code":
                by_method = {"PUT": "UpdateFunctionCode"}
            elif sub == "versions":
                by_method = {"POST": "PublishVersion", "GET": "ListVersionsByFunction"}
            elif sub == "aliases":
                by_method = ({"POST": "CreateAlias", "GET": "ListAliases"} if not more else
                             {"GET": "GetAlias", "PUT": "UpdateAlias", "DELETE": "DeleteAlias"})
            elif sub == "invocations":
                by_method = {"POST": "Invoke"}
            elif sub == "invoke-async":
                by_method = {"POST": "InvokeAsync"}
            elif sub == "policy":
                by_method = ({"GET": "GetPolicy", "POST": "AddPermission"} if not more
                             else {"DELETE": "RemovePermission"})
            elif sub == "concurrency":
                by_method = {"GET": "GetFunctionConcurrency", "PUT": "PutFunctionConcurrency",
                             "DELETE": "DeleteFunctionConcurrency"}
            elif sub == "url":
                by_method = {"GET": "GetFunctionUrlConfig", "POST": "CreateFunctionUrlConfig",
                             "PUT": "UpdateFunctionUrlConfig", "DELETE": "DeleteFunctionUrlConfig"}
            elif sub == "event-invoke-config":
                by_method = {"GET": "GetFunctionEventInvokeConfig", "PUT": "PutFunctionEventInvokeConfig",
                             "POST": "UpdateFunctionEventInvokeConfig", "DELETE": "DeleteFunctionEventInvokeConfig"}
    elif head == "layers":
        if not r:
            find = _qs(query).get("find", [""])[0]
            by_method = {"GET": "GetLayerVersionByArn" if find == "LayerVersion" else "ListLayers"}
        elif len(r) >= 2 and r[1] == "versions":
            if len(r) == 2:
                by_method = {"POST": "PublishLayerVersion", "GET": "ListLayerVersions"}
            elif len(r) == 3:
                by_method = {"GET": "GetLayerVersion", "DELETE": "DeleteLayerVersion"}
            elif r[3] == "policy":
                by_method = ({"GET": "GetLayerVersionPolicy", "POST": "AddLayerVersionPermission"} if len(r) == 4
                             else {"DELETE": "RemoveLayerVersionPermission"})
    elif head == "tags":
        by_method = {"GET": "ListTags", "POST": "TagResource", "DELETE": "UntagResource"}
    elif head == "event-source-mappings":
        by_method = ({"GET": "ListEventSourceMappings", "POST": "CreateEventSourceMapping"} if not r else
                     {"GET": "GetEventSourceMapping", "PUT": "UpdateEventSourceMapping",
                      "DELETE": "DeleteEventSourceMapping"})
    elif head == "account-settings":
        by_method = {"GET": "GetAccountSettings"}
    return by_method.get(method, "")


def lambda_function(path: str) -> str:
    """The function name or ARN in a Lambda path, or ""."""
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 3 and segs[1] == "functions":
        return unquote(segs[2])
    return ""


def function_name(path: str) -> str:
    """The bare function name in a Lambda path: from a name, a partial or full ARN (its
    qualifier dropped), or ""."""
    fn = lambda_function(path)
    if ":function:" in fn:
        fn = fn.split(":function:", 1)[1]
    elif fn.count(":") == 2 and fn.split(":", 1)[0].isdigit():  # 123456789012:function:name
        fn = fn.split(":")[-1]
    return fn.split(":", 1)[0]


_S3_BUCKET_SUB = {
    "PUT": {"tagging": "PutBucketTagging", "policy": "PutBucketPolicy", "versioning": "PutBucketVersioning",
            "encryption": "PutBucketEncryption", "acl": "PutBucketAcl", "cors": "PutBucketCors",
            "lifecycle": "PutBucketLifecycleConfiguration", "publicAccessBlock": "PutPublicAccessBlock",
            "notification": "PutBucketNotificationConfiguration"},
    "GET": {"location": "GetBucketLocation", "uploads": "ListMultipartUploads", "versions": "ListObjectVersions",
            "tagging": "GetBucketTagging", "policy": "GetBucketPolicy", "versioning": "GetBucketVersioning",
            "encryption": "GetBucketEncryption", "acl": "GetBucketAcl"},
    "DELETE": {"tagging": "DeleteBucketTagging", "policy": "DeleteBucketPolicy",
               "encryption": "DeleteBucketEncryption"},
    "POST": {"delete": "DeleteObjects"},
}


def s3_action(method: str, path: str, query: str, headers: Any) -> str:
    """S3 operations from method, path-style path (/bucket/key) and query."""
    qs = _qs(query)
    bucket, _, key = path.lstrip("/").partition("/")
    copy = bool(headers.get("x-amz-copy-source"))
    if not bucket:
        return "ListBuckets" if method == "GET" else ""
    if not key:
        for sub, action in _S3_BUCKET_SUB.get(method, {}).items():
            if sub in qs:
                return action
        if method == "GET":
            return "ListObjectsV2" if qs.get("list-type") == ["2"] else "ListObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, "")
    if method == "PUT":
        if "uploadId" in qs and "partNumber" in qs:
            return "UploadPartCopy" if copy else "UploadPart"
        if "tagging" in qs:
            return "PutObjectTagging"
        return "CopyObject" if copy else "PutObject"
    if method == "GET":
        if "uploadId" in qs:
            return "ListParts"
        return "GetObjectTagging" if "tagging" in qs else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in qs else "DeleteObject"
    if method == "POST":
        if "uploads" in qs:
            return "CreateMultipartUpload"
        if "uploadId" in qs:
            return "CompleteMultipartUpload"
    return ""


def classify(method: str, path: str, query: str, headers: Any, body: bytes) -> dict[str, Any]:
    region, service = signing_scope(headers, query)
    action = ""
    form: dict[str, str] = {}
    try:
        qs = _qs(query)
        if qs.get("Action"):
            action = qs["Action"][0]
        target = headers.get("X-Amz-Target")
        if not action and target:
            action = target.split(".")[-1]
        ctype = headers.get("Content-Type", "") or ""
        if "x-www-form-urlencoded" in ctype and body:
            form = {k: v[0] for k, v in _qs(body.decode("utf-8", "replace")).items()}
            action = action or form.get("Action", "")
        if not action and service == "lambda":
            action = lambda_action(method, path, query)
        elif not action and service == "s3":
            action = s3_action(method, path, query, headers)
    except Exception as e:  # classification must never break a request
        log(f"could not classify {method} {path}: {e}")
    return {"method": method, "path": path, "query": query, "region": region, "service": service,
            "action": action, "form": form}


# --------------------------------------------------------------------------
# Error responses
# --------------------------------------------------------------------------


def _protocol(service: str) -> str:
    if service == "s3":
        return "s3"
    if service in QUERY_NAMESPACES:
        return "query"
    return "json"


def _conflict(req: dict[str, Any], protocol: str) -> tuple[int, str, str]:
    service = req["service"]
    if protocol == "json":
        fn = lambda_function(req["path"])
        if fn and not fn.startswith("arn:"):
            fn = f"arn:aws:lambda:{req['region'] or 'us-east-1'}:{ACCOUNT}:function:{fn}"
        return (409, "ResourceConflictException",
                "The operation cannot be performed at this time. An update is in progress for resource: " + fn)
    if protocol == "s3":
        return (409, "OperationAborted",
                "A conflicting conditional operation is currently in progress against this resource. "
                "Please try again.")
    if service == "cloudformation":
        stack = req["form"].get("StackName", "")
        return 400, "ValidationError", f"Stack:{stack} is in UPDATE_IN_PROGRESS state and can not be updated."
    return 409, "ConcurrentModification", "Cannot perform the operation due to a concurrent modification."


def _error_triple(kind: str, req: dict[str, Any], protocol: str) -> tuple[int, str, str]:
    if kind == "conflict":
        return _conflict(req, protocol)
    table = {
        "json": {
            "throttle": (429, "TooManyRequestsException", "Rate exceeded"),
            "error500": (500, "ServiceException", "An internal error occurred. Please try again."),
            "error503": (503, "ServiceUnavailableException", "Service Unavailable"),
            "expired": (403, "ExpiredTokenException", "The security token included in the request is expired"),
        },
        "query": {
            "throttle": (400, "Throttling", "Rate exceeded"),
            "error500": (500, "InternalFailure", "The request processing has failed because of an unknown error."),
            "error503": (503, "ServiceUnavailable", "Service is unavailable. Please try again."),
            "expired": (400, "ExpiredToken", "The security token included in the request is expired"),
        },
        "s3": {
            "throttle": (503, "SlowDown", "Please reduce your request rate."),
            "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
            "error503": (503, "ServiceUnavailable", "Please reduce your request rate."),
            "expired": (400, "ExpiredToken", "The provided token has expired."),
        },
    }
    return table[protocol][kind]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_response(kind: str, req: dict[str, Any], rule: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    protocol = _protocol(req["service"])
    status, code, message = _error_triple(kind, req, protocol)
    code = rule.get("code") or code
    message = rule.get("message") if rule.get("message") is not None else message
    status = int(rule.get("status") or status)
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body_obj: dict[str, Any] = {"Type": "User" if status < 500 else "Service", "message": message}
        if req["service"] != "lambda":
            body_obj["__type"] = code
        return status, [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id),
                        ("x-amzn-ErrorType", code)], json.dumps(body_obj).encode()
    if protocol == "query":
        ns = QUERY_NAMESPACES[req["service"]]
        typ = "Sender" if status < 500 else "Receiver"
        xml = (f'<ErrorResponse xmlns="{ns}"><Error><Type>{typ}</Type><Code>{_xml_escape(code)}</Code>'
               f"<Message>{_xml_escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
               "</ErrorResponse>")
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml.encode()
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f"<Error><Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}</Message>"
           f"<RequestId>{request_id[:16]}</RequestId><HostId>{request_id}</HostId></Error>")
    return status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id[:16]),
                    ("x-amz-id-2", request_id)], xml.encode()


# --------------------------------------------------------------------------
# Rules and stats
# --------------------------------------------------------------------------


def _str_list(v: Any, field: str) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise ValueError(f"{field} must be a string or a list of strings, got {v!r}")


def _int(spec: dict[str, Any], field: str, default: int | None) -> int | None:
    v = spec.get(field, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{field} must be an integer, got {v!r}")
    return v


def make_rule(spec: Any, rule_id: int) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ValueError(f"a rule must be a JSON object, got {spec!r}")
    unknown = set(spec) - RULE_FIELDS
    if unknown:
        raise ValueError(f"unknown rule field(s) {sorted(unknown)}; known: {sorted(RULE_FIELDS)}")
    fault = spec.get("fault")
    if fault not in FAULT_KINDS:
        raise ValueError(f"fault must be one of {list(FAULT_KINDS)}, got {fault!r}")
    rule: dict[str, Any] = {"id": rule_id, "fault": fault}
    for field in ("service", "action", "method"):
        vals = _str_list(spec.get(field), field)
        if vals is not None:
            rule[field] = [v.upper() for v in vals] if field == "method" else vals
    if spec.get("path") is not None:
        if not isinstance(spec["path"], str):
            raise ValueError("path must be a regex string")
        re.compile(spec["path"])
        rule["path"] = spec["path"]
    times = _int(spec, "times", 1)
    skip = _int(spec, "skip", 0)
    assert times is not None and skip is not None
    if times < -1:
        raise ValueError("times must be -1 (until removed) or >= 0")
    if skip < 0:
        raise ValueError("skip must be >= 0")
    rule.update(times=times, remaining=times, skip=skip, skip_left=skip, fired=0)
    if fault == "delay":
        delay = _int(spec, "delay_ms", None)
        if delay is None or delay < 0:
            raise ValueError("a delay rule needs delay_ms >= 0")
        rule["delay_ms"] = delay
    if fault == "rewrite":
        if not isinstance(spec.get("find"), str):
            raise ValueError("a rewrite rule needs find (a regex string)")
        re.compile(spec["find"])
        if not isinstance(spec.get("replace", ""), str):
            raise ValueError("replace must be a string")
        rule["find"] = spec["find"]
        rule["replace"] = spec.get("replace", "")
    status = _int(spec, "status", None)
    if status is not None:
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        rule["status"] = status
    for field in ("code", "message"):
        if spec.get(field) is not None:
            if not isinstance(spec[field], str):
                raise ValueError(f"{field} must be a string")
            rule[field] = spec[field]
    return rule


def _matches(rule: dict[str, Any], req: dict[str, Any]) -> bool:
    for field in ("service", "action", "method"):
        want = rule.get(field)
        if want is not None and req[field] not in want:
            return False
    return not (rule.get("path") is not None and not re.search(rule["path"], req["path"]))


class State:
    def __init__(self, upstream: str) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []
        self.next_id = 1
        self.upstream = ""
        self.set_upstream(upstream)
        self._reset_stats()

    def _reset_stats(self) -> None:
        self.injected: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []
        self.requests = 0
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []

    def set_upstream(self, url: str) -> None:
        u = urlparse(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {url!r}")
        with self.lock:
            self.upstream = url
            self.upstream_addr = (u.hostname, u.port or 80)

    def add(self, specs: list[Any]) -> list[int]:
        with self.lock:
            rules = [make_rule(s, self.next_id + i) for i, s in enumerate(specs)]
            self.next_id += len(rules)
            self.rules.extend(rules)
            return [r["id"] for r in rules]

    def clear(self) -> int:
        with self.lock:
            n = len(self.rules)
            self.rules.clear()
            in_flight = self.in_flight
            self._reset_stats()
            self.in_flight = in_flight  # requests still running leave through it
            return n

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "rules": [dict(r) for r in self.rules],
                "injected": dict(self.injected),
                "events": [dict(e) for e in self.events],
                "requests": self.requests,
                "max_in_flight": dict(self.max_in_flight),
                "upstream": self.upstream,
            }

    def arrive(self, req: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """Counts the request and, for a lambda write, its concurrency per function; returns
        the concurrency key and the request's log entry (completed by `leave`)."""
        fn = function_name(req["path"]) if req["service"] == "lambda" else ""
        key = fn if fn and req["action"] in LAMBDA_WRITES else None
        entry: dict[str, Any] = {"seq": 0, "service": req["service"], "action": req["action"],
                                 "method": req["method"], "path": req["path"], "function": fn, "fault": None,
                                 "replaced": None, "status": None, "start": time.time(), "end": None}
        with self.lock:
            self.requests += 1
            entry["seq"] = self.requests
            self.log.append(entry)
            if key:
                n = self.in_flight.get(key, 0) + 1
                self.in_flight[key] = n
                self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), n)
        return key, entry

    def leave(self, key: str | None, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["end"] = time.time()
            if key:
                self.in_flight[key] = max(0, self.in_flight.get(key, 0) - 1)

    def request_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.log]

    def pick(self, req: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule["remaining"] == 0 or not _matches(rule, req):
                    continue
                if rule["skip_left"] > 0:
                    rule["skip_left"] -= 1
                    continue
                if rule["remaining"] > 0:
                    rule["remaining"] -= 1
                rule["fired"] += 1
                return dict(rule)
        return None

    def record(self, kind: str, rule: dict[str, Any] | None, req: dict[str, Any], **extra: Any) -> None:
        event = {"rule": rule["id"] if rule else None, "fault": kind, "service": req["service"],
                 "action": req["action"], "method": req["method"], "path": req["path"], **extra}
        with self.lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1
            self.events.append(event)
            entry = req.get("entry")
            if entry is not None:
                entry["fault"] = kind
                if "replaced" in extra:
                    entry["replaced"] = extra["replaced"]
        log(f"{kind} {req['method']} {req['path']} ({req['service']} {req['action']})")

    def upstream_address(self) -> tuple[str, int]:
        with self.lock:
            return self.upstream_addr


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


class UpstreamDown(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive to the client
    disable_nagle_algorithm = True
    server_version = "lamb-fault-proxy"
    server: "ProxyServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if VERBOSE:
            super().log_message(format, *args)

    # -- I/O helpers

    def _read_body(self) -> tuple[bytes, bytes]:
        """(bytes as sent, decoded body). Chunked bodies are kept chunked for the upstream."""
        if "chunked" in (self.headers.get("Transfer-Encoding", "") or "").lower():
            raw, data = bytearray(), bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed mid-body")
                raw += line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, up to the blank line
                        t = self.rfile.readline(65537)
                        raw += t
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(raw), bytes(data)
                chunk = self.rfile.read(size)
                raw += chunk
                data += chunk
                raw += self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        return body, body

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
              head_length: str | None = None) -> None:
        no_body = status < 200 or status in (204, 304)
        lines = [f"HTTP/1.1 {status} {reason}\r\n"]
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP:
                lines.append(f"{k}: {v}\r\n")
        if not no_body:
            if self.command == "HEAD":
                lines.append(f"Content-Length: {head_length if head_length is not None else len(body)}\r\n")
            else:
                lines.append(f"Content-Length: {len(body)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1")
        if not no_body and self.command != "HEAD":
            data += body
        self.wfile.write(data)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, _phrase(status), [("Content-Type", "application/json")],
                   json.dumps(obj).encode())

    def _reset(self) -> None:
        """Closes the client connection without an answer: a TCP RST (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drops makefile()'s reference, so close() really closes the fd
            self.connection.close()
        except OSError:
            pass

    def _forward(self, raw_body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.server.state.upstream_address()
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        try:
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    conn.putheader(k, v)
                conn.endheaders(message_body=raw_body or None)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise UpstreamDown(f"{type(e).__name__}: {e}") from e
            return resp.status, resp.reason, resp.getheaders(), body
        finally:
            conn.close()

    # -- dispatch

    def _handle(self) -> None:
        try:
            raw_body, body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        if path in ("/_faults", "/_upstream", "/_requests"):
            self._control(path, body)
            return
        req = classify(self.command, path, query, self.headers, body)
        state = self.server.state
        key, entry = state.arrive(req)
        req["entry"] = entry
        try:
            self._proxy(req, raw_body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            state.leave(key, entry)

    def _proxy(self, req: dict[str, Any], raw_body: bytes) -> None:
        state = self.server.state
        rule = state.pick(req)
        kind = rule["fault"] if rule else None
        if rule and kind == "reset":
            state.record(kind, rule, req)
            self._reset()
            return
        if rule and kind in ERROR_KINDS:
            status, headers, data = error_response(kind, req, rule)
            state.record(kind, rule, req, status=status)
            req["entry"]["status"] = status
            self._send(status, _phrase(status), headers, b"" if self.command == "HEAD" else data)
            return
        try:
            status, reason, headers, data = self._forward(raw_body)
        except UpstreamDown as e:
            log(f"upstream down: {e}")
            state.record("upstream_down", None, req)
            self._reset()
            return
        if rule and kind == "reset_after":
            # Applied upstream; the client never hears it was.
            state.record(kind, rule, req, upstream_status=status)
            self._reset()
            return
        head_length = next((v for k, v in headers if k.lower() == "content-length"), None)
        extra: dict[str, Any] = {}
        if rule and kind == "delay":
            # Counted before the wait, so a test sees the request is being held.
            state.record(kind, rule, req)
            time.sleep(rule["delay_ms"] / 1000)
        if rule and kind == "rewrite":
            text = data.decode("utf-8", "surrogateescape")
            text, n = re.subn(rule["find"], rule["replace"], text)
            data = text.encode("utf-8", "surrogateescape")
            extra["replaced"] = n
        if rule:
            if rule.get("status"):
                status = rule["status"]
                reason = _phrase(status)
            if kind != "delay":
                state.record(kind or "", rule, req, **extra)
        req["entry"]["status"] = status
        self._send(status, reason, headers, data, head_length=head_length)

    def _control(self, path: str, body: bytes) -> None:
        state = self.server.state
        try:
            if path == "/_faults" and self.command == "GET":
                self._json(200, state.snapshot())
            elif path == "/_requests" and self.command == "GET":
                self._json(200, state.request_log())
            elif path == "/_faults" and self.command == "POST":
                spec = json.loads(body or b"{}")
                if isinstance(spec, dict) and "rules" in spec:
                    specs = spec["rules"]
                elif isinstance(spec, dict):
                    specs = [spec]
                else:
                    specs = spec
                if not isinstance(specs, list):
                    raise ValueError("expected {\"rules\": [...]}")
                self._json(200, {"ids": state.add(specs)})
            elif path == "/_faults" and self.command == "DELETE":
                self._json(200, {"cleared": state.clear()})
            elif path == "/_upstream" and self.command == "POST":
                url = json.loads(body or b"{}").get("url")
                if not isinstance(url, str):
                    raise ValueError("expected {\"url\": \"http://127.0.0.1:PORT\"}")
                state.set_upstream(url)
                self._json(200, {"url": state.upstream})
            elif path == "/_upstream" and self.command == "GET":
                self._json(200, {"url": state.upstream})
            else:
                self._json(404, {"error": f"no control endpoint {self.command} {path}"})
        except (ValueError, re.error, AttributeError) as e:
            self._json(400, {"error": str(e)})


for _method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
    setattr(Handler, f"do_{_method}", Handler._handle)


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], state: State) -> None:
        self.state = state
        super().__init__(addr, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if VERBOSE:
            super().handle_error(request, client_address)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def _write_port_file(path: str, port: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".port-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def _wait_until_serving(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/_upstream")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the emulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--verbose", action="store_true", help="log every request and fault to stderr")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="also stop (exit 0) when stdin reaches EOF, e.g. when the parent process dies")
    args = ap.parse_args(argv)
    VERBOSE = args.verbose

    try:
        state = State(args.upstream)
    except ValueError as e:
        print(f"fault_proxy: FATAL: {e}", file=sys.stderr)
        return 2
    try:
        server = ProxyServer((args.host, args.port), state)
    except OSError as e:
        print(f"fault_proxy: FATAL: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    port = server.server_address[1]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.exit_on_stdin_eof:
        def _watch_stdin() -> None:
            try:  # os.read, not sys.stdin: a thread blocked in a buffered read aborts shutdown
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=_watch_stdin, name="stdin-eof", daemon=True).start()

    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        _wait_until_serving(port)
    except OSError as e:
        print(f"fault_proxy: FATAL: not answering on port {port}: {e}", file=sys.stderr)
        return 1
    _write_port_file(args.port_file, port)
    print(f"fault_proxy: listening on http://{args.host}:{port}, upstream {state.upstream}",
          file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    sys.stderr.flush()
    os._exit(0)  # handler threads may be blocked on idle keep-alive connections


if __name__ == "__main__":
    sys.exit(main())
