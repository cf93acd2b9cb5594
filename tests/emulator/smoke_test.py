#!/usr/bin/env python3
"""Smoke test for lamb_emulator.py (plain python, no pytest).

    <venv>/bin/python tests/emulator/smoke_test.py [--keep-going]

Starts the emulator as a subprocess (port 0 + port file), drives the lamb
deploy flows with boto3, prints PASS/FAIL per check and a final
"N passed, N failed" line; exits 1 if any check failed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
BUCKET = "lamb-smoke-artifacts"

RESULTS: list[tuple[str, bool, str]] = []
TIMINGS: dict[str, float] = {}

SAM_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: lamb emulator smoke test (SAM)
Parameters:
  Stage:
    Type: String
    Default: dev
  Greeting:
    Type: String
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    MemorySize: 256
    Environment:
      Variables:
        STAGE: !Ref Stage
Resources:
  DepsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: lamb-smoke-deps
      ContentUri: s3://@BUCKET@/layer.zip
      CompatibleRuntimes: [python3.12]
  HelloFn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      CodeUri: s3://@BUCKET@/code.zip
      Layers:
        - !Ref DepsLayer
      Policies:
        - AWSLambdaBasicExecutionRole
        - AmazonDynamoDBReadOnlyAccess
      Environment:
        Variables:
          GREETING: !Ref Greeting
          MODE: @MODE@
      Events:
        Hello:
          Type: Api
          Properties:
            Path: /hello
            Method: get
Outputs:
  HelloFnArn:
    Value: !GetAtt HelloFn.Arn
  HelloFnName:
    Value: !Ref HelloFn
  ApiUrl:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello"
  LayerArn:
    Value: !Ref DepsLayer
    Export:
      Name: !Sub "${AWS::StackName}-layer"
"""

PLAIN_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Description: lamb emulator smoke test (plain CloudFormation)
Parameters:
  CodeKey:
    Type: String
Resources:
  FnRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
      ManagedPolicyArns:
        - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  PlainFn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: lamb-smoke-plain
      Runtime: python3.12
      Handler: app.handler
      Role: !GetAtt FnRole.Arn
      Code:
        S3Bucket: @BUCKET@
        S3Key: !Ref CodeKey
      Environment:
        Variables:
          MODE: @MODE@
Outputs:
  PlainFnArn:
    Value: !GetAtt PlainFn.Arn
  PlainFnName:
    Value: !Ref PlainFn
"""

CHILD_SAM_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
Resources:
  ChildFn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: s3://@BUCKET@/code.zip
      Environment:
        Variables:
          GREETING: !Ref Greeting
Outputs:
  ChildFnArn:
    Value: !GetAtt ChildFn.Arn
"""

PARENT_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Child:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: @CHILD_URL@
      Parameters:
        Greeting: nested
"""

BAD_SAM_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  BrokenFn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
"""


def render(template: str, **kw: str) -> str:
    out = template.replace("@BUCKET@", BUCKET)
    for k, v in kw.items():
        out = out.replace(f"@{k}@", v)
    return out


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


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


def client_error_code(fn: Callable[[], Any]) -> tuple[str, str]:
    try:
        fn()
    except ClientError as e:
        return e.response["Error"].get("Code", ""), e.response["Error"].get("Message", "")
    raise AssertionError("expected a ClientError, call succeeded")


# --------------------------------------------------------------------------


class Emulator:
    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="lamb-emu-")
        self.port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, "emulator.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 60.0) -> None:
        t0 = time.monotonic()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "lamb_emulator.py"), "--port", "0",
             "--port-file", self.port_file, "--host", "127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}:\n{self.read_log()}")
            if os.path.exists(self.port_file):
                text = open(self.port_file).read().strip()
                if text:
                    self.port = int(text)
                    TIMINGS["emulator start (spawn -> port file)"] = time.monotonic() - t0
                    return
            time.sleep(0.02)
        raise RuntimeError("emulator did not write its port file in time")

    def read_log(self) -> str:
        try:
            return open(self.log_path, errors="replace").read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def http_json(port: int, method: str, path: str) -> Any:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def clients(port: int) -> dict[str, Any]:
    kw = dict(
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    return {name: boto3.client(name, **kw) for name in ("cloudformation", "s3", "lambda", "apigateway", "iam", "logs")}


def wait_change_set(cfn: Any, stack: str, cs: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        d = cfn.describe_change_set(StackName=stack, ChangeSetName=cs)
        if d["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"change set stuck in {d['Status']}")
        time.sleep(0.1)


def wait_stack(cfn: Any, stack: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not s["StackStatus"].endswith("_IN_PROGRESS"):
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"stack stuck in {s['StackStatus']}")
        time.sleep(0.1)


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def deploy_change_set(cfn: Any, stack: str, cs: str, kind: str, params: list[dict[str, Any]],
                      **template: str) -> tuple[dict[str, Any], dict[str, Any]]:
    cfn.create_change_set(
        StackName=stack, ChangeSetName=cs, ChangeSetType=kind, Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], **template,
    )
    desc = wait_change_set(cfn, stack, cs)
    expect(desc["Status"] == "CREATE_COMPLETE", f"change set {desc['Status']}: {desc.get('StatusReason')}")
    cfn.execute_change_set(StackName=stack, ChangeSetName=cs)
    return desc, wait_stack(cfn, stack)


def run(port: int) -> None:
    c = clients(port)
    cfn, s3, lam, apigw = c["cloudformation"], c["s3"], c["lambda"], c["apigateway"]
    code_zip = make_zip({"app.py": "def handler(event, context):\n    return {'statusCode': 200}\n"})
    layer_zip = make_zip({"python/dep.py": "X = 1\n"})

    def setup_s3() -> None:
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code.zip", Body=code_zip)
        s3.put_object(Bucket=BUCKET, Key="layer.zip", Body=layer_zip)
        s3.put_object(Bucket=BUCKET, Key="templates/child-sam.yaml", Body=render(CHILD_SAM_TEMPLATE).encode())
        s3.put_object(Bucket=BUCKET, Key="templates/plain.yaml", Body=render(PLAIN_TEMPLATE, MODE="v1").encode())
        s3.put_object(Bucket=BUCKET, Key="templates/plain-v2.yaml", Body=render(PLAIN_TEMPLATE, MODE="v2").encode())
        s3.put_object(Bucket=BUCKET, Key="templates/sam.yaml", Body=render(SAM_TEMPLATE, MODE="v1").encode())
        s3.put_object(Bucket=BUCKET, Key="templates/sam-v2.yaml", Body=render(SAM_TEMPLATE, MODE="v2").encode())

    check("s3: bucket + artifacts uploaded (path-style)", setup_s3)

    def request_log() -> None:
        cleared = http_json(port, "DELETE", "/_lamb/requests")
        expect(cleared["cleared"] >= 8, f"log had {cleared}")
        cfn.describe_stacks()
        s3.get_object(Bucket=BUCKET, Key="code.zip")["Body"].read()
        code, _ = client_error_code(lambda: lam.get_function(FunctionName="lamb-smoke-none"))
        got = [(r["method"], r["service"], r["action"], r["status"], r["key"])
               for r in http_json(port, "GET", "/_lamb/requests")]
        expect(got == [("POST", "cloudformation", "DescribeStacks", 200, "testing"), ("GET", "s3", "GetObject", 200, "testing"),
                       ("GET", "lambda", "GetFunction", 404, "testing")], f"log {got}")
        http_json(port, "DELETE", "/_lamb/requests")

    check("emulator: GET/DELETE /_lamb/requests (method, service, action, status, signing key)", request_log)

    # ---------------- SAM stack through change sets ----------------
    stack = "lamb-smoke-sam"
    params = [{"ParameterKey": "Greeting", "ParameterValue": "hello"}]
    state: dict[str, Any] = {}

    def sam_create() -> None:
        t0 = time.monotonic()
        cfn.create_change_set(
            StackName=stack, ChangeSetName="create-1", ChangeSetType="CREATE", Parameters=params,
            TemplateBody=render(SAM_TEMPLATE, MODE="v1"),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        desc = wait_change_set(cfn, stack, "create-1")
        t1 = time.monotonic()
        expect(desc["Status"] == "CREATE_COMPLETE", f"change set {desc['Status']}: {desc.get('StatusReason')}")
        types = sorted({ch["ResourceChange"]["ResourceType"] for ch in desc["Changes"]})
        expect("AWS::Lambda::Function" in types, f"no Lambda function in change set changes: {types}")
        expect("AWS::Lambda::LayerVersion" in types, f"no LayerVersion in changes: {types}")
        expect("AWS::ApiGateway::RestApi" in types, f"no RestApi in changes: {types}")
        expect(all(ch["ResourceChange"]["Action"] == "Add" for ch in desc["Changes"]), "non-Add action on CREATE")
        cfn.execute_change_set(StackName=stack, ChangeSetName="create-1")
        st = wait_stack(cfn, stack)
        t2 = time.monotonic()
        TIMINGS["SAM create_change_set (until CREATE_COMPLETE)"] = t1 - t0
        TIMINGS["SAM create_change_set + execute (until stack CREATE_COMPLETE)"] = t2 - t0
        expect(st["StackStatus"] == "CREATE_COMPLETE", f"stack status {st['StackStatus']}")
        state["stack"] = st

    check("sam: create change set (CREATE) with expanded resources + execute", sam_create)

    def sam_outputs() -> None:
        out = outputs_of(cfn.describe_stacks(StackName=stack)["Stacks"][0])
        expect({"HelloFnArn", "HelloFnName", "ApiUrl", "LayerArn"} <= set(out), f"outputs: {out}")
        expect(out["HelloFnArn"].startswith("arn:aws:lambda:us-east-1:") and ":function:" in out["HelloFnArn"],
               f"HelloFnArn {out['HelloFnArn']}")
        expect(out["HelloFnArn"].endswith(":function:" + out["HelloFnName"]), "Arn/Name mismatch")
        expect(out["ApiUrl"].startswith("https://") and "${" not in out["ApiUrl"]
               and out["ApiUrl"].endswith(".execute-api.us-east-1.amazonaws.com/Prod/hello"), out["ApiUrl"])
        expect(":layer:lamb-smoke-deps:" in out["LayerArn"], f"LayerArn {out['LayerArn']}")
        exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
        expect(exports.get(f"{stack}-layer") == out["LayerArn"], f"exports {exports}")
        state["outputs"] = out

    check("sam: change-set stack has Outputs (GetAtt Fn.Arn, Sub ${ServerlessRestApi}) + Export", sam_outputs)

    def sam_resources() -> None:
        res = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        by_type = {}
        for r in res:
            by_type.setdefault(r["ResourceType"], []).append(r)
        fns = by_type.get("AWS::Lambda::Function", [])
        expect(len(fns) == 1 and fns[0]["LogicalResourceId"] == "HelloFn", f"functions: {fns}")
        phys = fns[0]["PhysicalResourceId"]
        expect(phys == state["outputs"]["HelloFnName"], f"physical id {phys}")
        fn = lam.get_function(FunctionName=phys)
        cfg = fn["Configuration"]
        expect(cfg["Handler"] == "app.handler" and cfg["Runtime"] == "python3.12", f"cfg {cfg}")
        expect(cfg["MemorySize"] == 256 and cfg["Timeout"] == 10, "Globals not applied")
        env = cfg["Environment"]["Variables"]
        expect(env == {"STAGE": "dev", "GREETING": "hello", "MODE": "v1"}, f"env {env}")
        expect(cfg["CodeSha256"] == code_sha256(code_zip), "CodeSha256 != sha256(code.zip from S3)")
        layers = [layer["Arn"] for layer in cfg.get("Layers", [])]
        expect(layers == [state["outputs"]["LayerArn"]], f"layers {layers}")
        by_arn = lam.get_layer_version_by_arn(Arn=layers[0])
        expect(by_arn["Content"]["CodeSha256"] == code_sha256(layer_zip), f"layer by arn {by_arn['Content']}")
        roles = by_type.get("AWS::IAM::Role", [])
        expect(len(roles) == 1, f"roles {roles}")
        expect(cfg["Role"].endswith(":role/" + roles[0]["PhysicalResourceId"]), f"role {cfg['Role']}")
        attached = c["iam"].list_attached_role_policies(RoleName=roles[0]["PhysicalResourceId"])
        arns = sorted(p["PolicyArn"] for p in attached["AttachedPolicies"])
        expect(arns == ["arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"], f"policies {arns}")
        for t in ("AWS::ApiGateway::RestApi", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage",
                  "AWS::Lambda::Permission", "AWS::Lambda::LayerVersion"):
            expect(t in by_type, f"missing {t} in {sorted(by_type)}")
        api_id = by_type["AWS::ApiGateway::RestApi"][0]["PhysicalResourceId"]
        expect(api_id in state["outputs"]["ApiUrl"], "ApiUrl does not use the RestApi id")
        api = apigw.get_rest_api(restApiId=api_id)
        expect(api["name"] == stack, f"rest api name {api['name']}")
        stages = {s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]}
        expect("Prod" in stages, f"stages {stages}")
        paths = {r["path"]: sorted(r.get("resourceMethods", {})) for r in apigw.get_resources(restApiId=api_id)["items"]}
        expect(paths.get("/hello") == ["GET"], f"api resources {paths}")
        state["role"] = roles[0]["PhysicalResourceId"]
        state["api"] = api_id
        state["fn"] = phys

    check("sam: list_stack_resources -> PhysicalResourceId accepted by lambda get_function", sam_resources)

    def sam_templates() -> None:
        orig = cfn.get_template(StackName=stack)["TemplateBody"]
        expect(isinstance(orig, str) and "AWS::Serverless-2016-10-31" in orig and "!GetAtt" in orig,
               "Original template is not the submitted SAM body")
        orig2 = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
        expect(orig2 == orig, "TemplateStage=Original differs from default")
        proc = cfn.get_template(StackName=stack, TemplateStage="Processed")
        body = proc["TemplateBody"]
        body = json.loads(body) if isinstance(body, str) else body
        expect("Transform" not in body, "Processed still has Transform")
        expect(body["Resources"]["HelloFn"]["Type"] == "AWS::Lambda::Function", "Processed not expanded")
        expect(proc.get("StagesAvailable") == ["Original", "Processed"], f"stages {proc.get('StagesAvailable')}")

    check("sam: get_template Original = SAM body, Processed = expanded", sam_templates)

    def sam_update() -> None:
        desc, st = deploy_change_set(cfn, stack, "update-1", "UPDATE", params,
                                     TemplateBody=render(SAM_TEMPLATE, MODE="v2"))
        changes = {(ch["ResourceChange"]["LogicalResourceId"], ch["ResourceChange"]["Action"])
                   for ch in desc["Changes"]}
        expect(("HelloFn", "Modify") in changes, f"changes {changes}")
        expect(st["StackStatus"] == "UPDATE_COMPLETE", f"status {st['StackStatus']}")
        cfg = lam.get_function_configuration(FunctionName=state["fn"])
        env = cfg["Environment"]["Variables"]
        expect(env.get("MODE") == "v2" and env.get("GREETING") == "hello", f"env {env}")
        expect(outputs_of(st) == state["outputs"], f"outputs changed/lost: {outputs_of(st)}")
        expect(cfg["LastUpdateStatus"] == "Successful" and cfg["State"] == "Active", "function state")

    check("sam: UPDATE change set changes env var (get_function_configuration shows new value)", sam_update)

    def sam_update_param() -> None:
        p2 = [{"ParameterKey": "Greeting", "ParameterValue": "bonjour"},
              {"ParameterKey": "Stage", "ParameterValue": "prod"}]
        desc, st = deploy_change_set(cfn, stack, "update-2", "UPDATE", p2, UsePreviousTemplate=True)
        env = lam.get_function_configuration(FunctionName=state["fn"])["Environment"]["Variables"]
        expect(env == {"STAGE": "prod", "GREETING": "bonjour", "MODE": "v2"}, f"env {env}")
        got = {p["ParameterKey"]: p["ParameterValue"] for p in st["Parameters"]}
        expect(got == {"Greeting": "bonjour", "Stage": "prod"}, f"stack parameters {got}")

    check("sam: UPDATE change set with UsePreviousTemplate + new parameter values", sam_update_param)

    def sam_empty_update() -> None:
        same = [{"ParameterKey": "Greeting", "UsePreviousValue": True},
                {"ParameterKey": "Stage", "UsePreviousValue": True}]
        for i, kw in enumerate([dict(TemplateBody=render(SAM_TEMPLATE, MODE="v2"), Parameters=same),
                                dict(UsePreviousTemplate=True, Parameters=same),
                                dict(TemplateBody=render(SAM_TEMPLATE, MODE="v2"),
                                     Parameters=[{"ParameterKey": "Greeting", "ParameterValue": "bonjour"},
                                                 {"ParameterKey": "Stage", "ParameterValue": "prod"}])]):
            name = f"noop-{i}"
            cfn.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType="UPDATE",
                                  Capabilities=["CAPABILITY_IAM"], **kw)
            d = wait_change_set(cfn, stack, name)
            expect(d["Status"] == "FAILED", f"{name}: status {d['Status']}")
            expect(d["ExecutionStatus"] == "UNAVAILABLE", f"{name}: exec status {d['ExecutionStatus']}")
            expect(d.get("StatusReason", "").startswith("The submitted information didn't contain changes"),
                   f"{name}: reason {d.get('StatusReason')}")
        code, msg = client_error_code(lambda: cfn.execute_change_set(StackName=stack, ChangeSetName="noop-0"))
        expect(code == "InvalidChangeSetStatus", f"execute FAILED change set -> {code}: {msg}")
        cfn.delete_change_set(StackName=stack, ChangeSetName="noop-0")

    check("sam: empty UPDATE change set -> FAILED 'didn't contain changes' (not an API error)", sam_empty_update)

    def sam_code_update() -> None:
        new_zip = make_zip({"app.py": "def handler(event, context):\n    return {'statusCode': 201}\n"})
        r = lam.update_function_code(FunctionName=state["fn"], ZipFile=new_zip)
        expect(r["CodeSha256"] == code_sha256(new_zip), "update_function_code CodeSha256")
        got = lam.get_function(FunctionName=state["fn"])["Configuration"]
        expect(got["CodeSha256"] == code_sha256(new_zip), f"get_function CodeSha256 {got['CodeSha256']}")
        expect(got["CodeSize"] == len(new_zip), "CodeSize")
        arn = lam.get_function(FunctionName=state["outputs"]["HelloFnArn"])["Configuration"]["FunctionArn"]
        expect(arn == state["outputs"]["HelloFnArn"], "get_function by ARN")

    check("lambda: update_function_code(ZipFile) -> CodeSha256 = b64(sha256(zip))", sam_code_update)

    def sam_update_keeps_pushed_code() -> None:
        before = lam.get_function(FunctionName=state["fn"])["Configuration"]["CodeSha256"]
        expect(before != code_sha256(code_zip), "precondition: code was pushed out of band")
        p2 = [{"ParameterKey": "Greeting", "UsePreviousValue": True},
              {"ParameterKey": "Stage", "UsePreviousValue": True}]
        deploy_change_set(cfn, stack, "update-3", "UPDATE", p2, TemplateBody=render(SAM_TEMPLATE, MODE="v3"))
        cfg = lam.get_function_configuration(FunctionName=state["fn"])
        expect(cfg["Environment"]["Variables"]["MODE"] == "v3", "env not updated")
        expect(cfg["CodeSha256"] == before, "stack update reverted code pushed with UpdateFunctionCode")

    check("sam: env-only stack update keeps code pushed with update_function_code", sam_update_keeps_pushed_code)

    def sam_recreate_conflict() -> None:
        code, msg = client_error_code(lambda: cfn.create_change_set(
            StackName=stack, ChangeSetName="again", ChangeSetType="CREATE", Parameters=params,
            TemplateBody=render(SAM_TEMPLATE, MODE="v1")))
        expect(code == "AlreadyExistsException", f"{code}: {msg}")

    check("cfn: CREATE change set on an existing stack -> AlreadyExistsException", sam_recreate_conflict)

    def sam_delete() -> None:
        cfn.delete_stack(StackName=stack)
        code, msg = client_error_code(lambda: cfn.describe_stacks(StackName=stack))
        expect(code == "ValidationError" and "does not exist" in msg, f"{code}: {msg}")
        code, _ = client_error_code(lambda: lam.get_function(FunctionName=state["fn"]))
        expect(code == "ResourceNotFoundException", f"function still there: {code}")
        exports = [e["Name"] for e in cfn.list_exports()["Exports"]]
        expect(f"{stack}-layer" not in exports, f"export left behind {exports}")
        code, _ = client_error_code(lambda: c["iam"].get_role(RoleName=state["role"]))
        expect(code == "NoSuchEntity", f"role still there: {code}")
        code, _ = client_error_code(lambda: apigw.get_rest_api(restApiId=state["api"]))
        expect(code == "NotFoundException", f"rest api still there: {code}")
        gone = cfn.describe_stacks(StackName=state["stack"]["StackId"])["Stacks"][0]
        expect(gone["StackStatus"] == "DELETE_COMPLETE", f"by id: {gone['StackStatus']}")

    check("sam: delete_stack removes stack, function and exports", sam_delete)

    def sam_redeploy_after_delete() -> None:
        t0 = time.monotonic()
        _, st = deploy_change_set(cfn, stack, "create-2", "CREATE", params,
                                  TemplateBody=render(SAM_TEMPLATE, MODE="v1"))
        TIMINGS["SAM create_change_set + execute, warm (second deploy)"] = time.monotonic() - t0
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        expect(len(outputs_of(st)) == 4, "outputs")
        cfn.delete_stack(StackName=stack)

    check("sam: re-create the same stack name after delete", sam_redeploy_after_delete)

    # ---------------- plain CloudFormation via change set + TemplateURL ----------------
    pstack = "lamb-smoke-plain"

    def plain_create() -> None:
        url = f"http://127.0.0.1:{port}/{BUCKET}/templates/plain.yaml"
        _, st = deploy_change_set(cfn, pstack, "create-1", "CREATE",
                                  [{"ParameterKey": "CodeKey", "ParameterValue": "code.zip"}], TemplateURL=url)
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        out = outputs_of(st)
        expect(out.get("PlainFnName") == "lamb-smoke-plain", f"outputs {out}")
        expect(out.get("PlainFnArn", "").endswith(":function:lamb-smoke-plain"), f"outputs {out}")
        res = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=pstack)["StackResourceSummaries"]}
        phys = res["PlainFn"]["PhysicalResourceId"]
        cfg = lam.get_function(FunctionName=phys)["Configuration"]
        expect(cfg["Environment"]["Variables"] == {"MODE": "v1"}, f"env {cfg.get('Environment')}")
        expect(cfg["CodeSha256"] == code_sha256(code_zip), "CodeSha256")

    check("plain: change set from TemplateURL http://127.0.0.1:PORT/bucket/key (Lambda + IAM Role)", plain_create)

    def plain_update_localhost() -> None:
        url = f"http://localhost:{port}/{BUCKET}/templates/plain-v2.yaml"
        _, st = deploy_change_set(cfn, pstack, "update-1", "UPDATE",
                                  [{"ParameterKey": "CodeKey", "UsePreviousValue": True}], TemplateURL=url)
        expect(st["StackStatus"] == "UPDATE_COMPLETE", st["StackStatus"])
        env = lam.get_function_configuration(FunctionName="lamb-smoke-plain")["Environment"]["Variables"]
        expect(env == {"MODE": "v2"}, f"env {env}")
        expect(outputs_of(st).get("PlainFnName") == "lamb-smoke-plain", "outputs lost after update")
        body = cfn.get_template(StackName=pstack, TemplateStage="Processed")["TemplateBody"]
        expect("MODE: v2" in body, "Processed of a non-SAM stack should be the submitted body")

    check("plain: UPDATE change set from TemplateURL http://localhost:PORT/... (env var)", plain_update_localhost)

    def plain_delete() -> None:
        cfn.delete_stack(StackName=pstack)
        code, _ = client_error_code(lambda: lam.get_function(FunctionName="lamb-smoke-plain"))
        expect(code == "ResourceNotFoundException", code)

    check("plain: delete_stack", plain_delete)

    # ---------------- SAM through CreateStack/UpdateStack + TemplateURL ----------------
    dstack = "lamb-smoke-direct"

    def direct_create_update() -> None:
        url = f"http://127.0.0.1:{port}/{BUCKET}/templates/sam.yaml"
        cfn.create_stack(StackName=dstack, TemplateURL=url, Parameters=params,
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
        st = wait_stack(cfn, dstack)
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        fn_name = outputs_of(st)["HelloFnName"]
        expect(lam.get_function_configuration(FunctionName=fn_name)["Environment"]["Variables"]["MODE"] == "v1",
               "env v1")
        cfn.update_stack(StackName=dstack, TemplateURL=url.replace("sam.yaml", "sam-v2.yaml"), Parameters=params,
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
        st = wait_stack(cfn, dstack)
        expect(st["StackStatus"] == "UPDATE_COMPLETE", st["StackStatus"])
        expect(lam.get_function_configuration(FunctionName=fn_name)["Environment"]["Variables"]["MODE"] == "v2",
               "env v2")
        code, msg = client_error_code(lambda: cfn.update_stack(
            StackName=dstack, TemplateURL=url.replace("sam.yaml", "sam-v2.yaml"), Parameters=params))
        expect(code == "ValidationError" and "No updates" in msg, f"{code}: {msg}")
        cfn.delete_stack(StackName=dstack)

    check("sam: create_stack/update_stack with TemplateURL; no-op update_stack -> 'No updates'",
          direct_create_update)

    # ---------------- nested SAM stack ----------------
    nstack = "lamb-smoke-nested"

    def nested() -> None:
        child_url = f"http://127.0.0.1:{port}/{BUCKET}/templates/child-sam.yaml"
        cfn.create_stack(StackName=nstack, TemplateBody=PARENT_TEMPLATE.replace("@CHILD_URL@", child_url))
        st = wait_stack(cfn, nstack)
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        res = cfn.list_stack_resources(StackName=nstack)["StackResourceSummaries"]
        child = [r for r in res if r["ResourceType"] == "AWS::CloudFormation::Stack"]
        expect(len(child) == 1, f"resources {res}")
        cres = cfn.list_stack_resources(StackName=child[0]["PhysicalResourceId"])["StackResourceSummaries"]
        fns = [r["PhysicalResourceId"] for r in cres if r["ResourceType"] == "AWS::Lambda::Function"]
        expect(len(fns) == 1, f"child resources {cres}")
        env = lam.get_function_configuration(FunctionName=fns[0])["Environment"]["Variables"]
        expect(env == {"GREETING": "nested"}, f"env {env}")
        cfn.delete_stack(StackName=nstack)

    check("sam: nested AWS::CloudFormation::Stack with SAM child from TemplateURL", nested)

    # ---------------- transform errors ----------------
    def bad_sam() -> None:
        cfn.create_change_set(StackName="lamb-smoke-bad", ChangeSetName="c1", ChangeSetType="CREATE",
                              TemplateBody=BAD_SAM_TEMPLATE)
        d = wait_change_set(cfn, "lamb-smoke-bad", "c1")
        expect(d["Status"] == "FAILED", f"status {d['Status']}")
        expect(d["StatusReason"].startswith("Transform AWS::Serverless-2016-10-31 failed with:"),
               f"reason {d['StatusReason']}")
        st = cfn.describe_stacks(StackName="lamb-smoke-bad")["Stacks"][0]
        expect(st["StackStatus"] == "REVIEW_IN_PROGRESS", st["StackStatus"])
        # retrying CREATE on a REVIEW_IN_PROGRESS stack is allowed (as on AWS)
        _, st = deploy_change_set(cfn, "lamb-smoke-bad", "c2", "CREATE", params,
                                  TemplateBody=render(SAM_TEMPLATE, MODE="v1"))
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        expect(len(cfn.describe_stacks(StackName="lamb-smoke-bad")["Stacks"]) == 1, "duplicate stacks")
        cfn.delete_stack(StackName="lamb-smoke-bad")
        code, msg = client_error_code(lambda: cfn.create_stack(StackName="lamb-smoke-bad2",
                                                               TemplateBody=BAD_SAM_TEMPLATE))
        expect(code == "ValidationError" and "Transform AWS::Serverless-2016-10-31 failed" in msg, f"{code}: {msg}")

    check("sam: invalid SAM -> FAILED change set / ValidationError with transform message", bad_sam)

    def execute_failure() -> None:
        fstack = "lamb-smoke-fail"
        cfn.create_change_set(StackName=fstack, ChangeSetName="c1", ChangeSetType="CREATE",
                              TemplateBody=render(PLAIN_TEMPLATE, MODE="v1"),
                              Parameters=[{"ParameterKey": "CodeKey", "ParameterValue": "missing.zip"}])
        expect(wait_change_set(cfn, fstack, "c1")["Status"] == "CREATE_COMPLETE", "change set")
        cfn.execute_change_set(StackName=fstack, ChangeSetName="c1")  # async on AWS: must not raise
        st = wait_stack(cfn, fstack)
        expect(st["StackStatus"] == "ROLLBACK_COMPLETE", st["StackStatus"])
        expect(st.get("StackStatusReason"), "no StackStatusReason")
        events = cfn.describe_stack_events(StackName=fstack)["StackEvents"]
        failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
        expect(failed and failed[0].get("ResourceStatusReason"), f"events {events}")
        leftover = [r["RoleName"] for r in c["iam"].list_roles()["Roles"] if r["RoleName"].startswith(fstack)]
        expect(not leftover, f"rollback left roles behind: {leftover}")
        code, msg = client_error_code(lambda: cfn.create_change_set(
            StackName=fstack, ChangeSetName="u0", ChangeSetType="UPDATE", UsePreviousTemplate=True))
        expect(code == "ValidationError" and "ROLLBACK_COMPLETE" in msg, f"update of ROLLBACK_COMPLETE: {code} {msg}")
        cfn.delete_stack(StackName=fstack)
        # UPDATE that fails -> UPDATE_ROLLBACK_COMPLETE, old template kept
        _, st = deploy_change_set(cfn, fstack, "c2", "CREATE",
                                  [{"ParameterKey": "CodeKey", "ParameterValue": "code.zip"}],
                                  TemplateBody=render(PLAIN_TEMPLATE, MODE="v1"))
        expect(st["StackStatus"] == "CREATE_COMPLETE", st["StackStatus"])
        cfn.create_change_set(StackName=fstack, ChangeSetName="u1", ChangeSetType="UPDATE",
                              TemplateBody=render(PLAIN_TEMPLATE, MODE="v2"),
                              Parameters=[{"ParameterKey": "CodeKey", "ParameterValue": "missing.zip"}])
        expect(wait_change_set(cfn, fstack, "u1")["Status"] == "CREATE_COMPLETE", "update change set")
        cfn.execute_change_set(StackName=fstack, ChangeSetName="u1")
        st = wait_stack(cfn, fstack)
        expect(st["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", st["StackStatus"])
        body = cfn.get_template(StackName=fstack)["TemplateBody"]
        expect("MODE: v1" in body, "template not rolled back")
        cfn.delete_stack(StackName=fstack)

    check("cfn: resource failure during execute -> ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE + reason",
          execute_failure)

    def logs_round_trip() -> None:
        # What `lamb logs` reads and its tests write: plain moto, no patch needed.
        logs = c["logs"]
        group = "/aws/lambda/smoke-logs"
        logs.create_log_group(logGroupName=group)
        now = int(time.time() * 1000)
        for stream, events in (("a", [(now - 300_000, "old"), (now - 2_000, "a ERROR x")]), ("b", [(now - 1_000, "b ok")])):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": t, "message": m} for t, m in events])
        got = logs.filter_log_events(logGroupName=group, startTime=now - 60_000)["events"]
        expect(sorted(e["message"] for e in got) == ["a ERROR x", "b ok"], f"startTime: {got}")
        expect(all(e.get("eventId") and e.get("logStreamName") for e in got), f"eventId/logStreamName: {got}")
        got = logs.filter_log_events(logGroupName=group, startTime=0, filterPattern="ERROR")["events"]
        expect([e["message"] for e in got] == ["a ERROR x"], f"filterPattern: {got}")
        code, _ = client_error_code(lambda: logs.filter_log_events(logGroupName="/aws/lambda/none"))
        expect(code == "ResourceNotFoundException", code)

    check("logs: create group/stream, put_log_events, filter_log_events (startTime, filterPattern, missing group)",
          logs_round_trip)


def stdin_eof_exit() -> None:
    tmp = tempfile.mkdtemp(prefix="lamb-emu-eof-")
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "lamb_emulator.py"), "--port", "0", "--port-file", port_file,
         "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file):
            expect(proc.poll() is None, f"exited early: {proc.returncode}")
            expect(time.monotonic() < deadline, "no port file")
            time.sleep(0.05)
        assert proc.stdin is not None
        proc.stdin.close()
        rc = proc.wait(timeout=15)
        expect(rc == 0, f"rc={rc}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> int:
    emu = Emulator()
    try:
        check("emulator: starts and writes port file", emu.start)
        if emu.port:
            run(emu.port)
    finally:
        rc = emu.stop()
    if emu.port:
        RESULTS.append(("emulator: exits 0 on SIGTERM", rc == 0, f"rc={rc}"))
        print(f"{'PASS' if rc == 0 else 'FAIL'} emulator: exits 0 on SIGTERM (rc={rc})")
    check("emulator: --exit-on-stdin-eof exits 0 when stdin closes", stdin_eof_exit)
    failed = [r for r in RESULTS if not r[1]]
    for k, v in TIMINGS.items():
        print(f"TIME {k}: {v:.3f}s")
    if failed or os.environ.get("SMOKE_SHOW_LOG"):
        print("---- emulator log (tail) ----")
        print(emu.read_log())
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
