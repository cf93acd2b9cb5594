"""lamb's runtime client for Python functions run locally: the Lambda Runtime API loop, with the
context object, handler import and error shapes of AWS's own client (awslambdaric), in the
standard library only (awslambdaric is a Linux-only native build).

It starts fast: HTTP is spoken over a plain socket (http.client would import ssl and email,
a third of the start-up), and what only errors need is imported when one happens. Started with
_LAMB_DEFER=1 it is a spare: it imports what it needs, then waits for one JSON line on stdin
(the working directory and environment of new code) before it imports the handler, so a
reload takes over an interpreter that has already started."""

import importlib
import json
import logging
import os
import socket
import sys
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HANDLER = os.environ.get("_HANDLER", "")
PREFIX = "/2018-06-01/runtime/"
THIS_FILE = os.path.abspath(__file__)


class Fault(Exception):
    """An error the runtime reports with its own type (Runtime.ImportModuleError ...)."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class _Response:
    """The status and headers of one answer from the Runtime API."""

    def __init__(self, status, headers):
        self.status = status
        self.headers = headers

    def getheader(self, name):
        return self.headers.get(name.lower())


_conn = None


def _connect():
    global _conn
    host, _, port = API.partition(":")
    sock = socket.create_connection((host, int(port or 80)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _conn = (sock, sock.makefile("rb"))


def _read_answer(reader):
    line = reader.readline()
    if not line:
        raise OSError("the Runtime API closed the connection")
    status = int(line.split(None, 2)[1])
    headers = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                reader.readline()
                break
            parts.append(reader.read(size))
            reader.readline()
        body = b"".join(parts)
    else:
        body = reader.read(int(headers.get("content-length", "0")))
    return _Response(status, headers), body


def _request(method, path, body=None, headers=None):
    global _conn
    body = body or b""
    head = ["%s %s%s HTTP/1.1" % (method, PREFIX, path), "Host: " + API, "Content-Length: %d" % len(body)]
    head.extend("%s: %s" % kv for kv in (headers or {}).items())
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    for attempt in (0, 1):
        try:
            if _conn is None:
                _connect()
            _conn[0].sendall(data)
            return _read_answer(_conn[1])
        except (OSError, ValueError, IndexError):
            if _conn is not None:
                _conn[1].close()
                _conn[0].close()
            _conn = None
            if attempt:
                raise


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self.__dict__.items()))


class CognitoIdentity(_Obj):
    pass


class ClientContext(_Obj):
    pass


class Client(_Obj):
    pass


class LambdaContext:
    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        ident = json.loads(identity) if identity else {}
        self.identity = CognitoIdentity(
            cognito_identity_id=ident.get("cognitoIdentityId"),
            cognito_identity_pool_id=ident.get("cognitoIdentityPoolId"),
        )
        self.client_context = None
        if client_context:
            cc = json.loads(client_context)
            client = cc.get("client")
            self.client_context = ClientContext(
                custom=cc.get("custom"),
                env=cc.get("env"),
                client=Client(
                    installation_id=client.get("installation_id"),
                    app_title=client.get("app_title"),
                    app_version_name=client.get("app_version_name"),
                    app_version_code=client.get("app_version_code"),
                    app_package_name=client.get("app_package_name"),
                )
                if client
                else None,
            )

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,invoked_function_arn=%s])" % (
            self.aws_request_id,
            self.function_name,
            self.invoked_function_arn,
        )


_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id
        return True


def _setup_logging():
    handler = logging.StreamHandler(sys.stdout)
    fmt = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
    )
    fmt.converter = time.gmtime
    handler.setFormatter(fmt)
    handler.terminator = ""
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level:
        root.setLevel({"TRACE": "DEBUG"}.get(level, level))


def _user_frames(tb):
    import traceback

    frames = traceback.extract_tb(tb)
    while frames and os.path.abspath(frames[0].filename) == THIS_FILE:
        frames.pop(0)
    return traceback.format_list(frames)


def _load_handler():
    try:
        modname, fname = HANDLER.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (HANDLER, e))
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict", "Cannot use built-in module %s as a handler module" % modname)
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, (e.text or "").strip())]
        raise Fault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))


def _error_doc(exc, request_id):
    if isinstance(exc, Fault):
        return {"errorMessage": exc.message, "errorType": exc.error_type, "requestId": request_id, "stackTrace": exc.trace}
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": _user_frames(exc.__traceback__),
    }


def _log_error(doc):
    lines = ["[ERROR] %s: %s" % (doc["errorType"], doc["errorMessage"])]
    if doc["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in doc["stackTrace"])
    sys.stdout.write("\r".join(lines) + "\n")


def _default(o):
    import decimal

    if isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _marshal(result):
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), "application/unknown"
    try:
        return json.dumps(result, default=_default).encode(), "application/json"
    except (TypeError, ValueError) as e:
        raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % e)


def _take_over():
    """A spare's activation: the new code's directory and environment, then its PYTHONPATH in
    place of the one this interpreter started with."""
    global HANDLER
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    order = json.loads(line)
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.chdir(order["cwd"])
    os.environ.clear()
    os.environ.update(order["env"])
    new = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    at = next((i for i, p in enumerate(sys.path) if p in old), 1)
    sys.path[:] = [p for p in sys.path if p not in old]
    sys.path[at:at] = new
    importlib.invalidate_caches()
    HANDLER = os.environ.get("_HANDLER", "")


def main():
    global _request_id
    if os.environ.pop("_LAMB_DEFER", None) == "1":
        _take_over()
    _setup_logging()
    try:
        handler = _load_handler()
    except Exception as e:
        doc = _error_doc(e, "")
        _log_error(doc)
        _request("POST", "init/error", json.dumps(doc).encode(), {"Lambda-Runtime-Function-Error-Type": doc["errorType"]})
        sys.exit(1)
    while True:
        resp, body = _request("GET", "invocation/next")
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        _request_id = request_id
        trace = resp.getheader("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            context = LambdaContext(
                request_id,
                int(resp.getheader("Lambda-Runtime-Deadline-Ms") or 0),
                resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
                resp.getheader("Lambda-Runtime-Client-Context"),
                resp.getheader("Lambda-Runtime-Cognito-Identity"),
            )
            try:
                event = json.loads(body) if body else {}
            except ValueError as e:
                raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)
            payload, content_type = _marshal(handler(event, context))
            _request("POST", "invocation/%s/response" % request_id, payload, {"Content-Type": content_type})
        except Exception as e:
            doc = _error_doc(e, request_id)
            _log_error(doc)
            _request(
                "POST",
                "invocation/%s/error" % request_id,
                json.dumps(doc).encode(),
                {"Lambda-Runtime-Function-Error-Type": doc["errorType"]},
            )


if __name__ == "__main__":
    main()
