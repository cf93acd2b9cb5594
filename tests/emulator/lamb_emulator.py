#!/usr/bin/env python3
"""lamb test emulator: moto server + a few monkeypatches for the SAM deploy flow.

Usage:
    python lamb_emulator.py --port 0 --port-file PATH [--host 127.0.0.1]

Starts moto's werkzeug app in-process on HOST:PORT (PORT 0 = pick a free
port), writes the bound port (decimal, no newline-dependent parsing needed)
to PATH atomically once the server answers HTTP requests, then runs until
SIGTERM/SIGINT and exits 0.

All patches are applied by `apply_patches()` below, before the server starts.
Each patch checks that the moto/samtranslator internals it relies on still
exist and raises `EmulatorPatchError` (the process exits 2 with a clear
message) if they do not, instead of silently running an unpatched moto.
See README.md for the list of patches and why they exist.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import inspect
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlparse

LOG = logging.getLogger("lamb_emulator")

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
NO_CHANGES_REASON = (
    "The submitted information didn't contain changes. "
    "Submit different information to create a change set."
)

TESTED_MOTO = "5.2.5"


class EmulatorPatchError(RuntimeError):
    """moto/samtranslator internals changed; a patch could not be applied."""


def _require(obj: Any, *attrs: str) -> None:
    for attr in attrs:
        if not hasattr(obj, attr):
            raise EmulatorPatchError(
                f"moto internals changed: {getattr(obj, '__name__', obj)!r} has no "
                f"attribute {attr!r} (patches written against moto {TESTED_MOTO})"
            )


def _require_params(func: Any, *names: str) -> None:
    params = inspect.signature(func).parameters
    missing = [n for n in names if n not in params]
    if missing:
        raise EmulatorPatchError(
            f"moto internals changed: {func.__qualname__} lost parameter(s) {missing} "
            f"(patches written against moto {TESTED_MOTO})"
        )


# --------------------------------------------------------------------------
# Managed policy loader (no real IAM calls)
# --------------------------------------------------------------------------

_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSLambdaDynamoDBExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    "AWSLambdaKinesisExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole",
    "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "AWSLambdaRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
    "AWSLambdaExecute": "arn:aws:iam::aws:policy/AWSLambdaExecute",
    "AWSLambda_FullAccess": "arn:aws:iam::aws:policy/AWSLambda_FullAccess",
    "AWSLambda_ReadOnlyAccess": "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    "AmazonDynamoDBFullAccess": "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
    "AmazonDynamoDBReadOnlyAccess": "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
    "AmazonS3FullAccess": "arn:aws:iam::aws:policy/AmazonS3FullAccess",
    "AmazonS3ReadOnlyAccess": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "AmazonSQSFullAccess": "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
    "AmazonSNSFullAccess": "arn:aws:iam::aws:policy/AmazonSNSFullAccess",
    "CloudWatchLogsFullAccess": "arn:aws:iam::aws:policy/CloudWatchLogsFullAccess",
    "CloudWatchFullAccess": "arn:aws:iam::aws:policy/CloudWatchFullAccess",
    "AdministratorAccess": "arn:aws:iam::aws:policy/AdministratorAccess",
    "ReadOnlyAccess": "arn:aws:iam::aws:policy/ReadOnlyAccess",
}


class _FallbackPolicyMap(dict):
    """Static map; unknown names become arn:<partition>:iam::aws:policy/<Name>."""

    def __init__(self, partition: str) -> None:
        super().__init__(
            {k: v.replace("arn:aws:", f"arn:{partition}:", 1) for k, v in _MANAGED_POLICIES.items()}
        )
        self._partition = partition

    def get(self, name: Any, default: Any = None) -> Any:  # type: ignore[override]
        if name in self:
            return self[name]
        if isinstance(name, str) and name and not name.startswith("arn:"):
            return f"arn:{self._partition}:iam::aws:policy/{name}"
        return default


class StaticManagedPolicyLoader:
    """Drop-in for samtranslator's ManagedPolicyLoader that never calls IAM."""

    def __init__(self, partition: str = "aws") -> None:
        self._map = _FallbackPolicyMap(partition)

    def load(self) -> dict[str, str]:
        return self._map


# --------------------------------------------------------------------------
# SAM expansion
# --------------------------------------------------------------------------

_SAM_LOCK = threading.Lock()  # samtranslator keeps the region in a class attribute
_BOTO_SESSIONS: dict[str, Any] = {}


class SamTransformFailed(Exception):
    pass


def _transforms_of(template: Any) -> list[str]:
    if not isinstance(template, dict):
        return []
    tr = template.get("Transform")
    if tr is None:
        return []
    if isinstance(tr, str):
        return [tr]
    if isinstance(tr, list):
        return [t if isinstance(t, str) else str(t.get("Name")) for t in tr]
    if isinstance(tr, dict):
        return [str(tr.get("Name"))]
    return [str(tr)]


def is_sam_template(template: Any) -> bool:
    return SAM_TRANSFORM in _transforms_of(template)


def _param_str(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _jsonable(obj: Any) -> Any:
    """yaml.Loader turns unquoted 2010-09-09 into a date; SAM/json want strings."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (datetime.date, datetime.datetime)):
        return obj.isoformat()
    return obj


def expand_sam(template: dict[str, Any], parameters: dict[str, Any] | None, region: str) -> dict[str, Any]:
    """Return the CloudFormation template produced by the SAM transform."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException, ExceptionWithMessage
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    others = [t for t in _transforms_of(template) if t != SAM_TRANSFORM]
    if others:
        raise SamTransformFailed(
            f"lamb emulator only supports the {SAM_TRANSFORM} transform, template also uses {others}"
        )
    fragment = _jsonable(copy.deepcopy(template))
    values = {k: _param_str(v) for k, v in (parameters or {}).items()}
    with _SAM_LOCK:
        session = _BOTO_SESSIONS.get(region)
        if session is None:
            session = boto3.session.Session(
                region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            _BOTO_SESSIONS[region] = session
        partition = ArnGenerator.get_partition_name(region)
        loader = StaticManagedPolicyLoader(partition)
        try:
            to_py27_compatible_template(fragment, values)
            translator = Translator(None, Parser(), boto_session=session)
            out = translator.translate(fragment, parameter_values=values, get_managed_policy_map=loader.load)
            out = undo_mark_unicode_str_in_template(out)
        except InvalidDocumentException as e:
            raise SamTransformFailed(f"Transform {SAM_TRANSFORM} failed with: {e.message}") from e
        except ExceptionWithMessage as e:
            raise SamTransformFailed(f"Transform {SAM_TRANSFORM} failed with: {e.message}") from e
        except Exception as e:  # samtranslator bug or unsupported feature
            LOG.exception("SAM transform crashed")
            raise SamTransformFailed(f"Transform {SAM_TRANSFORM} failed with: {type(e).__name__}: {e}") from e
    out.pop("Transform", None)
    return out


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------


def _patch_s3_template_url() -> None:
    """(c) Path-style S3 URLs on any IP/host without dots (127.0.0.1, [::1], localhost...)."""
    from moto.cloudformation import models as cf_models
    from moto.cloudformation import responses as cf_responses
    from moto.cloudformation import utils as cf_utils
    from moto.cloudformation.exceptions import ValidationError

    for mod in (cf_utils, cf_models, cf_responses):
        _require(mod, "get_stack_from_s3_url")
    original = cf_utils.get_stack_from_s3_url
    _require_params(original, "template_url", "account_id", "partition")

    def get_stack_from_s3_url(template_url: str, account_id: str, partition: str) -> str:
        parts = urlparse(template_url)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
            path_style = True
        except ValueError:
            path_style = "." not in host  # localhost, docker service names, ...
        if not path_style:
            try:
                return original(template_url, account_id=account_id, partition=partition)
            except ValidationError:
                raise
            except Exception as e:
                raise ValidationError(message=f"S3 error: unable to read template at {template_url}: {e}")
        from moto.s3.models import s3_backends

        path = parts.path.lstrip("/")
        if "/" not in path:
            raise ValidationError(message=f"TemplateURL must reference a valid S3 object: {template_url}")
        bucket, key = path.split("/", 1)
        try:
            obj = s3_backends[account_id][partition].get_object(bucket, unquote(key))
        except Exception as e:
            raise ValidationError(message=f"S3 error: unable to read template at {template_url}: {e}")
        if obj is None:
            raise ValidationError(message=f"S3 error: no such object {template_url}")
        return obj.value.decode("utf-8")

    for mod in (cf_utils, cf_models, cf_responses):
        mod.get_stack_from_s3_url = get_stack_from_s3_url


def _patch_sam_transform() -> None:
    """(a) Expand SAM templates wherever moto turns a template string into a dict."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import ChangeSet, Stack

    _require(Stack, "__init__", "_parse_template", "parse_template", "update", "has_template", "has_parameters")
    _require(ChangeSet, "__init__", "_parse_template", "diff")
    _require_params(Stack.__init__, "parameters", "region_name", "account_id", "name", "template")
    _require_params(Stack.update, "template", "parameters")

    orig_stack_init = Stack.__init__
    orig_stack_parse = Stack._parse_template
    orig_stack_update = Stack.update
    orig_cs_parse = ChangeSet._parse_template
    stack_init_sig = inspect.signature(orig_stack_init)

    def stack_init(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = stack_init_sig.bind(self, *args, **kwargs)
        # Stack.__init__ parses the template before it stores parameters/region
        self._lamb_ctx = {
            "parameters": bound.arguments.get("parameters") or {},
            "region": bound.arguments.get("region_name"),
        }
        try:
            orig_stack_init(self, *args, **kwargs)
        finally:
            self._lamb_ctx = None

    def stack_parse_template(self: Any) -> None:
        orig_stack_parse(self)
        if not is_sam_template(self.template_dict):
            return
        ctx = self.__dict__.get("_lamb_ctx") or {}
        params = ctx.get("parameters")
        if params is None:
            params = getattr(self, "parameters", {}) or {}
        region = ctx.get("region") or getattr(self, "region_name", None) or "us-east-1"
        try:
            self.template_dict = expand_sam(self.template_dict, params, region)
        except SamTransformFailed as e:
            raise ValidationError(message=str(e))

    def stack_update(self: Any, template: Any, role_arn: Any = None, parameters: Any = None, tags: Any = None) -> None:
        merged = dict(getattr(self, "parameters", {}) or {})
        merged.update(parameters or {})
        raw = Stack.parse_template(template)
        if is_sam_template(raw):  # synchronous ValidationError, as on AWS
            try:
                expand_sam(raw, merged, self.region_name)
            except SamTransformFailed as e:
                raise ValidationError(message=str(e))
        saved = (self.template, self.template_dict, self.output_map, self.parameters)
        self._lamb_ctx = {"parameters": merged, "region": self.region_name}
        try:
            orig_stack_update(self, template, role_arn=role_arn, parameters=parameters, tags=tags)
        except Exception as e:
            self.template, self.template_dict, self.output_map, self.parameters = saved
            _mark_stack_failed(self, "UPDATE", e)
        finally:
            self._lamb_ctx = None

    def stack_has_template(self: Any, other_template: Any) -> bool:
        # Compare un-expanded templates (template_dict holds the expanded one).
        if not self.template or self.template == {}:
            return False
        return _jsonable(Stack.parse_template(self.template)) == _jsonable(Stack.parse_template(other_template))

    def _normalised_params(stack: Any, params: dict[str, Any] | None) -> dict[str, Any]:
        try:
            raw = Stack.parse_template(stack.template) if stack.template else {}
        except Exception:
            raw = {}
        out: dict[str, Any] = {}
        for name, spec in ((raw or {}).get("Parameters") or {}).items():
            if isinstance(spec, dict) and "Default" in spec:
                out[name] = _param_str(spec["Default"])
        for k, v in (params or {}).items():
            out[k] = _param_str(v)
        return out

    def stack_has_parameters(self: Any, other_parameters: dict[str, Any]) -> bool:
        return _normalised_params(self, self.parameters) == _normalised_params(self, other_parameters)

    def cs_parse_template(self: Any) -> None:
        orig_cs_parse(self)
        self._lamb_transform_error = None
        if not is_sam_template(self.template_dict):
            return
        try:
            self.template_dict = expand_sam(self.template_dict, self.parameters, self.stack.region_name)
        except SamTransformFailed as e:
            # Real AWS: CreateChangeSet succeeds, the change set ends FAILED.
            self._lamb_transform_error = str(e)
            current = getattr(self.stack, "template_dict", None) or {}
            self.template_dict = copy.deepcopy(current) if "Resources" in current else {"Resources": {}}

    Stack.__init__ = stack_init
    Stack._parse_template = stack_parse_template
    Stack.update = stack_update
    Stack.has_template = stack_has_template
    Stack.has_parameters = stack_has_parameters
    ChangeSet._parse_template = cs_parse_template


def _patch_change_sets() -> None:
    """(b) Outputs/exports/parameters after ExecuteChangeSet; AWS-like create/execute errors."""
    from moto.cloudformation.exceptions import AlreadyExistsException, CloudFormationError, ValidationError
    from moto.cloudformation.models import CloudFormationBackend
    from moto.cloudformation.responses import CloudFormationResponse

    _require(CloudFormationBackend, "create_change_set", "execute_change_set", "describe_change_set",
             "_validate_export_uniqueness")
    _require(CloudFormationResponse, "create_change_set", "_validate_different_update", "_get_param")
    _require_params(CloudFormationBackend.create_change_set, "stack_name", "change_set_name", "change_set_type")
    _require_params(CloudFormationBackend.execute_change_set, "change_set_name", "stack_name")

    class InvalidChangeSetStatus(CloudFormationError):
        code = "InvalidChangeSetStatus"

    orig_create = CloudFormationBackend.create_change_set
    orig_execute = CloudFormationBackend.execute_change_set
    orig_validate_update = CloudFormationResponse._validate_different_update
    orig_resp_create = CloudFormationResponse.create_change_set

    def resp_create_change_set(self: Any) -> Any:
        self._lamb_in_create_change_set = True
        try:
            return orig_resp_create(self)
        finally:
            self._lamb_in_create_change_set = False

    def validate_different_update(self: Any, incoming_params: Any, stack_body: Any, old_stack: Any) -> None:
        if getattr(self, "_lamb_in_create_change_set", False):
            # Real AWS accepts the request and marks the change set FAILED
            # (moto's backend does that already); it never errors here.
            return
        if stack_body and old_stack.has_template(stack_body):
            new_params = self._get_param_values(incoming_params or [], old_stack.stack_parameters)
            if old_stack.has_parameters(new_params):
                raise ValidationError(old_stack.name, message="No updates are to be performed.")
        orig_validate_update(self, incoming_params, stack_body, old_stack)

    def _find_change_set(backend: Any, change_set_name: str, stack_name: str | None) -> Any:
        if change_set_name in backend.change_sets:
            return backend.change_sets[change_set_name]
        found = None
        for cs in backend.change_sets.values():
            if cs.change_set_name != change_set_name:
                continue
            if stack_name and stack_name not in (cs.stack_name, cs.stack_id):
                continue
            found = cs  # latest wins, like moto
        if found is None:
            raise ValidationError(message=f"ChangeSet [{change_set_name}] does not exist")
        return found

    def create_change_set(self: Any, stack_name: str, change_set_name: str, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(orig_create).bind(self, stack_name, change_set_name, *args, **kwargs)
        if bound.arguments.get("change_set_type", "CREATE") == "CREATE":
            for sid, st in list(self.stacks.items()):
                if st.name != stack_name:
                    continue
                if st.status == "REVIEW_IN_PROGRESS":
                    # Real AWS reuses the REVIEW_IN_PROGRESS stack; moto would add a
                    # second stack with the same name (describe_stacks then returns the
                    # stale one). Drop the stale record.
                    del self.stacks[sid]
                else:
                    raise AlreadyExistsException(
                        f"Stack [{stack_name}] already exists and cannot be created again "
                        f"with the changeSet [{change_set_name}]."
                    )
        else:
            for st in self.stacks.values():
                if st.name == stack_name and st.status == "ROLLBACK_COMPLETE":
                    raise ValidationError(message=f"Stack:{st.stack_id} is in ROLLBACK_COMPLETE state and "
                                                  "can not be updated.")
        change_set_id, stack_id = orig_create(self, stack_name, change_set_name, *args, **kwargs)
        cs = self.change_sets[change_set_id]
        # moto calls a change set empty when template and parameters match; new stack tags are a
        # change too (CloudFormation applies them to the stack and its resources).
        stack = self.stacks.get(stack_id)
        new_tags = bound.arguments.get("tags") or {}
        if (cs.status == "FAILED" and cs.status_reason == NO_CHANGES_REASON and stack is not None
                and new_tags and dict(new_tags) != dict(stack.tags or {})):
            cs.status = "CREATE_COMPLETE"
            cs.execution_status = "AVAILABLE"
            cs.status_reason = None
        err = getattr(cs, "_lamb_transform_error", None)
        if err:
            cs.status = "FAILED"
            cs.execution_status = "UNAVAILABLE"
            cs.status_reason = err
            cs.changes = []
        return change_set_id, stack_id

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        cs = _find_change_set(self, change_set_name, stack_name)
        if cs.status != "CREATE_COMPLETE" or cs.execution_status != "AVAILABLE":
            raise InvalidChangeSetStatus(
                f"ChangeSet [{cs.change_set_id}] cannot be executed in its current status of [{cs.status}]"
            )
        stack = self.stacks.get(cs.stack_id)
        if stack is None:
            raise ValidationError(cs.stack_name)
        try:
            orig_execute(self, change_set_name=cs.change_set_id, stack_name=stack_name)
        except Exception as e:
            # Real AWS executes asynchronously: the API call succeeds and the
            # stack ends in ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE.
            cs.execution_status = "EXECUTE_FAILED"
            _mark_stack_failed(stack, cs.change_set_type, e)
            return
        # moto only updates the resource map; bring the stack itself up to date
        stack.status_reason = None
        stack.template_dict = cs.template_dict
        if cs.tags:
            stack.tags = dict(cs.tags)
        if cs.change_set_type == "UPDATE" or cs.parameters:
            stack.parameters = dict(cs.parameters or {})
        stack.description = cs.template_dict.get("Description")
        for name, export in list(self.exports.items()):
            if export.exporting_stack_id == stack.stack_id:
                del self.exports[name]
        stack.output_map = stack._create_output_map()
        self._validate_export_uniqueness(stack)
        for export in stack.exports:
            self.exports[export.name] = export
        # Real AWS deletes the other change sets of the stack after an execution.
        for cs_id, other in list(self.change_sets.items()):
            if other is not cs and other.stack_id == stack.stack_id:
                del self.change_sets[cs_id]

    CloudFormationBackend.create_change_set = create_change_set
    CloudFormationBackend.execute_change_set = execute_change_set
    CloudFormationResponse._validate_different_update = validate_different_update
    CloudFormationResponse.create_change_set = resp_create_change_set


def _error_text(e: BaseException) -> str:
    code = getattr(e, "error_type", None) or getattr(e, "code", None)
    msg = getattr(e, "message", None) or str(e)
    if isinstance(code, str) and code and not msg.startswith(code):
        return f"{code}: {msg}"
    return msg if isinstance(msg, str) else f"{type(e).__name__}: {e}"


def _mark_stack_failed(stack: Any, operation: str, error: BaseException) -> None:
    """Put a stack in the state real CloudFormation leaves it in after a failed operation."""
    reason = _error_text(error)
    LOG.warning("stack %s: %s failed: %s", stack.name, operation, reason,
                exc_info=not hasattr(error, "code") and not hasattr(error, "error_type"))
    stack.status_reason = reason
    if operation == "CREATE":
        stack._add_stack_event("CREATE_FAILED", resource_status_reason=reason)
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        try:
            stack.resource_map.delete()
        except Exception:  # best effort, like a rollback that leaves resources behind
            LOG.warning("stack %s: rollback could not delete every resource", stack.name, exc_info=True)
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"
    else:
        stack._add_stack_event("UPDATE_FAILED", resource_status_reason=reason)
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"


_CREATE_DEPTH = threading.local()
_CFN_LOCK = threading.RLock()


def _patch_async_failures() -> None:
    """(d) A resource failing during CreateStack leaves a ROLLBACK_COMPLETE stack, not an API error."""
    from moto.cloudformation.models import CloudFormationBackend

    _require(CloudFormationBackend, "create_stack")
    _require_params(CloudFormationBackend.create_stack, "name", "template", "parameters")
    orig_create_stack = CloudFormationBackend.create_stack

    def create_stack(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_CREATE_DEPTH, "n", 0)
        before = set(self.stacks)
        _CREATE_DEPTH.n = depth + 1
        try:
            return orig_create_stack(self, name, *args, **kwargs)
        except Exception as e:
            new = [st for sid, st in self.stacks.items() if sid not in before and st.name == name]
            if depth > 0 or not new:
                raise  # validation error before the stack existed, or a nested stack
            _mark_stack_failed(new[0], "CREATE", e)
            return new[0]
        finally:
            _CREATE_DEPTH.n = depth

    CloudFormationBackend.create_stack = create_stack


def _patch_error_format() -> None:
    """(d) Errors raised by other services' models inside a CloudFormation call
    (e.g. API Gateway's JSON errors) were returned verbatim: JSON bodies on
    the XML (query protocol) CloudFormation endpoint, which SDKs cannot parse.
    Re-raise them as CloudFormation errors."""
    import types

    from moto.cloudformation.exceptions import CloudFormationError, ValidationError
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.exceptions import ServiceException
    from werkzeug.exceptions import HTTPException

    class InternalFailure(CloudFormationError):
        code = "InternalFailure"

    def wrap(name: str, func: Any) -> Any:
        def action(self: Any) -> Any:
            try:
                with _CFN_LOCK:  # CFN actions touch many backends; run them one at a time
                    return func(self)
            except CloudFormationError:
                raise
            except (ServiceException, HTTPException) as e:
                raise ValidationError(message=_error_text(e)) from e
            except Exception as e:
                LOG.exception("unexpected error in CloudFormation %s", name)
                raise InternalFailure(f"lamb emulator: {type(e).__name__}: {e}") from e

        action.__name__ = name
        action.__qualname__ = f"CloudFormationResponse.{name}"
        return action

    for name, func in list(vars(CloudFormationResponse).items()):
        if name.startswith("_") or not isinstance(func, types.FunctionType):
            continue
        if list(inspect.signature(func).parameters) != ["self"]:
            continue
        setattr(CloudFormationResponse, name, wrap(name, func))


def _patch_get_template() -> None:
    """(a) GetTemplate TemplateStage=Original|Processed, ChangeSetName."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    _require(CloudFormationResponse, "get_template", "cloudformation_backend")

    def get_template(self: Any) -> Any:
        backend = self.cloudformation_backend
        stack_name = self._get_param("StackName")
        cs_name = self._get_param("ChangeSetName")
        stage = self._get_param("TemplateStage") or "Original"
        if stage not in ("Original", "Processed"):
            raise ValidationError(message=f"Invalid TemplateStage: {stage}")
        if cs_name:
            obj = None
            for cs in backend.change_sets.values():
                if cs_name in (cs.change_set_id, cs.change_set_name) and (
                    not stack_name or stack_name in (cs.stack_name, cs.stack_id)
                ):
                    obj = cs
            if obj is None:
                raise ValidationError(message=f"ChangeSet [{cs_name}] does not exist")
        else:
            obj = backend.get_stack(stack_name)
        raw = obj.template
        body = raw
        if stage == "Processed" and _raw_is_sam(raw):
            body = json.dumps(_jsonable(obj.template_dict), indent=2)
        return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})

    CloudFormationResponse.get_template = get_template


def _raw_is_sam(raw: Any) -> bool:
    from moto.cloudformation.models import Stack

    try:
        return is_sam_template(Stack.parse_template(raw) if isinstance(raw, str) else raw)
    except Exception:
        return False


def _patch_lambda_and_apigw_models() -> None:
    """(d) CFN resource gaps hit by SAM output."""
    from moto.apigateway import models as apigw
    from moto.awslambda import models as lm

    _require(lm, "LambdaFunction", "LayerVersion")
    _require(lm.LambdaFunction, "create_from_cloudformation_json", "_get_layers_data")
    _require(apigw, "RestAPI", "Deployment")
    _require(apigw.RestAPI, "create_from_cloudformation_json")

    # LayerVersion: Ref returns the layer version ARN (moto returned the Python object);
    # the LayerName property names the layer (moto looked for a "LayerVersion" property).
    if "physical_resource_id" not in lm.LayerVersion.__dict__:
        lm.LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]
    lm.LayerVersion.cloudformation_name_type = staticmethod(lambda: "LayerName")  # type: ignore[method-assign]

    # Deployment: Ref returns the deployment id.
    if "physical_resource_id" not in apigw.Deployment.__dict__:
        apigw.Deployment.physical_resource_id = property(lambda self: self.id)  # type: ignore[attr-defined]

    # Lambda::Function from CFN drops Layers/Architectures/Tags/TracingConfig/...
    orig_fn_create = lm.LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def fn_create(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                  region_name: str, **kwargs: Any) -> Any:
        fn = orig_fn_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        if props.get("Layers"):
            fn.layers = fn._get_layers_data(props["Layers"])
        if props.get("Architectures"):
            fn.architectures = props["Architectures"]
        if props.get("TracingConfig"):
            fn.tracing_config = props["TracingConfig"]
        if props.get("EphemeralStorage"):
            fn.ephemeral_storage = props["EphemeralStorage"].get("Size", 512)
        if isinstance(props.get("Tags"), list):
            fn.tags = {t["Key"]: t["Value"] for t in props["Tags"] if "Key" in t}
        fn._lamb_cfn_code = copy.deepcopy(props.get("Code"))
        return fn

    lm.LambdaFunction.create_from_cloudformation_json = classmethod(fn_create)  # type: ignore[method-assign]

    # Lambda::Function update re-uploaded Code on every stack update, reverting code
    # pushed with UpdateFunctionCode even when the template's Code did not change
    # (CloudFormation only touches changed properties); removed Environment/Layers
    # were not cleared.
    _require(lm.LambdaFunction, "update_configuration", "update_function_code")

    def fn_update(cls: Any, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
                  account_id: str, region_name: str) -> Any:
        props = cloudformation_json["Properties"]
        fn = original_resource
        fn.update_configuration(props)
        if "Environment" not in props:
            fn.environment_vars = {}
        if "Layers" not in props:
            fn.layers = []
        if props.get("Architectures"):
            fn.architectures = props["Architectures"]
        code = props.get("Code")
        if code is not None and code != getattr(fn, "_lamb_cfn_code", None):
            fn.update_function_code(copy.deepcopy(code))
            fn._lamb_cfn_code = copy.deepcopy(code)
        return fn

    lm.LambdaFunction.update_from_cloudformation_json = classmethod(fn_update)  # type: ignore[method-assign]

    # Missing S3 code/layer objects were silently accepted (empty code, CodeSha256 "");
    # AWS rejects them.  Applies to the Lambda API and to CloudFormation.
    _require(lm, "_validate_s3_bucket_and_key", "InvalidParameterValueException", "do_validate_s3")
    _require(lm.LambdaFunction, "update_function_code")
    orig_validate_s3 = lm._validate_s3_bucket_and_key
    no_such_key = ("Error occurred while GetObject. S3 Error Code: NoSuchKey. "
                   "S3 Error Message: The specified key does not exist.")

    def validate_s3_bucket_and_key(account_id: str, partition: str, data: dict[str, Any]) -> Any:
        key = orig_validate_s3(account_id, partition=partition, data=data)
        if key is None and lm.do_validate_s3():
            raise lm.InvalidParameterValueException(no_such_key)
        return key

    lm._validate_s3_bucket_and_key = validate_s3_bucket_and_key
    orig_update_code = lm.LambdaFunction.update_function_code

    def update_function_code(self: Any, updated_spec: dict[str, Any]) -> Any:
        if "S3Bucket" in updated_spec and "S3Key" in updated_spec and not updated_spec.get("DryRun"):
            validate_s3_bucket_and_key(self.account_id, self.partition, updated_spec)
        return orig_update_code(self, updated_spec)

    lm.LambdaFunction.update_function_code = update_function_code

    # RestApi without Name (SAM-generated, or any API defined by Body): real API
    # Gateway takes the name from Body.info.title; moto requires Name.
    orig_api_create = apigw.RestAPI.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def api_create(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                   region_name: str, **kwargs: Any) -> Any:
        props = cloudformation_json.setdefault("Properties", {})
        if not props.get("Body") and isinstance(props.get("BodyS3Location"), dict):
            # A definition packaged to S3 (SAM's DefinitionUri): read it as the Body.
            props["Body"] = _s3_document(account_id, props["BodyS3Location"])
        if not props.get("Name"):
            body = props.get("Body")
            title = body.get("info", {}).get("title") if isinstance(body, dict) else None
            props["Name"] = title if isinstance(title, str) and title else resource_name
        api = orig_api_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        if isinstance(props.get("Body"), dict):
            # moto ignores Body, and then refuses to deploy an API "without methods".
            try:
                _import_api_body(apigw.apigateway_backends[account_id][region_name], api, props["Body"])
            except Exception:  # keep the stack deployable even if the import is partial
                LOG.warning("could not import RestApi Body of %s", resource_name, exc_info=True)
        return api

    apigw.RestAPI.create_from_cloudformation_json = classmethod(api_create)  # type: ignore[method-assign]

    # RestApi was never deleted with its stack.
    def api_delete(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                   region_name: str) -> None:
        apigw.apigateway_backends[account_id][region_name].apis.pop(resource_name, None)

    if "delete_from_cloudformation_json" not in apigw.RestAPI.__dict__:
        apigw.RestAPI.delete_from_cloudformation_json = classmethod(api_delete)  # type: ignore[method-assign]


def _s3_document(account_id: str, location: dict[str, Any]) -> Any:
    """The YAML or JSON document at {Bucket, Key} in moto's S3, or None."""
    import yaml
    from moto.s3.models import s3_backends

    try:
        backend = s3_backends[account_id]["aws"]
        key = backend.get_object(location["Bucket"], location["Key"])
        return yaml.safe_load(key.value.decode("utf-8"))
    except Exception:
        LOG.warning("could not read the API definition at %s", location, exc_info=True)
        return None


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "any"}


def _import_api_body(backend: Any, api: Any, body: dict[str, Any]) -> None:
    """Create resources/methods/integrations from a Swagger 2 / OpenAPI 3 Body.

    moto's put_rest_api only accepts OpenAPI 3, but for the subset it reads
    (paths -> methods -> responses / x-amazon-apigateway-integration) Swagger 2
    has the same shape, so relabel it.
    """
    doc = copy.deepcopy(body)
    doc.pop("swagger", None)
    doc["openapi"] = "3.0.1"
    paths: dict[str, Any] = {}
    root_methods: dict[str, Any] = {}
    for path, item in (doc.get("paths") or {}).items():
        methods = {}
        for method, spec in (item or {}).items():
            if method == "x-amazon-apigateway-any-method":
                method = "any"
            if method.lower() in _HTTP_METHODS:
                methods[method] = spec if isinstance(spec, dict) else {}
        if path in ("", "/"):
            root_methods = methods
        else:
            paths[path] = methods
    doc["paths"] = paths
    backend.put_rest_api(api.id, doc, fail_on_warnings=False, mode="merge")
    root = api.get_resource_for_path("/")
    for method, spec in root_methods.items():
        backend.put_method(api.id, root.id, method.upper(), None)
        integration = spec.get("x-amazon-apigateway-integration")
        if integration:
            args = backend._build_integration_args(integration)
            backend.put_integration(function_id=api.id, resource_id=root.id, method_type=method.upper(),
                                    **{k: v for k, v in args.items() if v is not None})


_AWS_POLICY_DATA: dict[str, Any] | None = None


def _patch_iam_role_model() -> None:
    """(d) AWS::IAM::Role from CFN ignored ManagedPolicyArns (SAM puts every
    `Policies: [AWSLambdaBasicExecutionRole, ...]` there), and deleting the role
    failed once policies were attached."""
    from moto.iam import models as iam
    from moto.utilities.utils import get_partition

    _require(iam, "Role", "AWSManagedPolicy", "iam_backends")
    _require(iam.Role, "create_from_cloudformation_json", "update_from_cloudformation_json",
             "delete_from_cloudformation_json")
    _require(iam.IAMBackend, "attach_role_policy", "detach_role_policy", "get_roles")

    def backend_for(account_id: str, region_name: str) -> Any:
        return iam.iam_backends[account_id][get_partition(region_name)]

    def ensure_aws_policy(backend: Any, arn: str) -> None:
        """AWS managed policies are not preloaded (MOTO_IAM_LOAD_MANAGED_POLICIES is
        slow); materialise the ones a template attaches."""
        global _AWS_POLICY_DATA
        if arn in backend.managed_policies or ":iam::aws:policy/" not in arn:
            return
        if _AWS_POLICY_DATA is None:
            from moto.iam.aws_managed_policies import aws_managed_policies_data

            _AWS_POLICY_DATA = json.loads(aws_managed_policies_data)
        path_and_name = arn.split(":policy", 1)[1]
        path, name = path_and_name.rsplit("/", 1)
        data = _AWS_POLICY_DATA.get(name) or {
            "DefaultVersionId": "v1", "Path": path + "/",
            "Document": {"Version": "2012-10-17", "Statement": []},
            "CreateDate": "2015-02-06T18:40:00+00:00", "UpdateDate": "2015-02-06T18:40:00+00:00",
        }
        policy = iam.AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)
        backend.managed_policies[policy.arn] = policy

    def sync_managed(role: Any, arns: list[str], account_id: str, region_name: str) -> None:
        backend = backend_for(account_id, region_name)
        wanted = [a for a in arns or [] if isinstance(a, str)]
        for arn in list(role.managed_policies):
            if arn not in wanted:
                backend.detach_role_policy(arn, role.name)
        for arn in wanted:
            if arn not in role.managed_policies:
                ensure_aws_policy(backend, arn)
                backend.attach_role_policy(arn, role.name)

    orig_create = iam.Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    orig_update = iam.Role.update_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    orig_delete = iam.Role.delete_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        role = orig_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        sync_managed(role, cloudformation_json["Properties"].get("ManagedPolicyArns"), account_id, region_name)
        return role

    def update(cls: Any, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
               account_id: str, region_name: str) -> Any:
        orig_update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        props = cloudformation_json["Properties"]
        role = original_resource
        sync_managed(role, props.get("ManagedPolicyArns"), account_id, region_name)
        wanted_inline = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies") or []}
        for name in list(role.policies):
            if name not in wanted_inline:
                role.delete_policy(name)
        for name, doc in wanted_inline.items():
            role.put_policy(name, doc)
        return role

    def delete(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str) -> None:
        backend = backend_for(account_id, region_name)
        for role in list(backend.get_roles()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        orig_delete(cls, resource_name, cloudformation_json, account_id, region_name)

    iam.Role.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign]
    iam.Role.update_from_cloudformation_json = classmethod(update)  # type: ignore[method-assign]
    iam.Role.delete_from_cloudformation_json = classmethod(delete)  # type: ignore[method-assign]


def _refresh_model_map(cfn_type: str) -> None:
    """moto's CloudFormation caches its map of model classes: a model class defined here (it
    registers itself as it is defined) is seen once the caches are cleared."""
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    if hasattr(parsing, "get_name_type_map"):
        parsing.get_name_type_map.cache_clear()
    assert cfn_type in parsing.get_model_map()


def _add_apigw_stage_model() -> None:
    """(d) AWS::ApiGateway::Stage (SAM emits one per API) is unknown to moto's CFN."""
    from moto.apigateway.models import apigateway_backends
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    _require(parsing, "get_model_map", "get_model_list")
    if "AWS::ApiGateway::Stage" in parsing.get_model_map():
        return

    class CfnApiGatewayStage(CloudFormationModel):
        # moto's model metaclass derives the service from the module path
        __module__ = "moto.apigateway.lamb_emulator"

        def __init__(self, rest_api_id: str, stage_name: str) -> None:
            self.rest_api_id = rest_api_id
            self.stage_name = stage_name

        @property
        def physical_resource_id(self) -> str:
            return self.stage_name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "StageName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::ApiGateway::Stage"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            props = cloudformation_json["Properties"]
            api_id = props["RestApiId"]
            dep = props.get("DeploymentId")
            dep = getattr(dep, "id", dep)
            name = props.get("StageName") or resource_name
            backend = apigateway_backends[account_id][region_name]
            api = backend.get_rest_api(api_id)
            api.stages.pop(name, None)
            backend.create_stage(
                function_id=api_id, stage_name=name, deploymentId=dep,
                variables=props.get("Variables"), description=props.get("Description", ""),
                tracing_enabled=props.get("TracingEnabled"),
            )
            return cls(api_id, name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: dict[str, Any], account_id: str,
                                            region_name: str) -> Any:
            # moto's update hands over the properties it could resolve; the API is the same one.
            props = cloudformation_json.setdefault("Properties", {})
            props.setdefault("RestApiId", original_resource.rest_api_id)
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                       region_name)

        def delete(self, account_id: str, region_name: str) -> None:
            try:
                apigateway_backends[account_id][region_name].delete_stage(self.rest_api_id, self.stage_name)
            except Exception:
                pass

    _refresh_model_map("AWS::ApiGateway::Stage")


def _add_lambda_url_model() -> None:
    """(d) AWS::Lambda::Url (SAM emits one for FunctionUrlConfig) is unknown to moto's CFN:
    created, updated and deleted through the Lambda backend's function URL config, with
    GetAtt FunctionUrl / FunctionArn and Ref = the function's ARN, as CloudFormation has them."""
    from moto.awslambda.models import lambda_backends
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    from moto.core.common_models import CloudFormationModel

    _require(parsing, "get_model_map", "get_model_list")
    if "AWS::Lambda::Url" in parsing.get_model_map():
        return

    def config_of(props: dict[str, Any]) -> dict[str, Any]:
        config = {"AuthType": props.get("AuthType", "AWS_IAM")}
        if props.get("Cors"):
            config["Cors"] = props["Cors"]
        if props.get("InvokeMode"):
            config["InvokeMode"] = props["InvokeMode"]
        return config

    class CfnLambdaUrl(CloudFormationModel):
        # moto's model metaclass derives the service from the module path
        __module__ = "moto.awslambda.lamb_emulator"

        def __init__(self, function_arn: str, url: str) -> None:
            self.function_arn = function_arn
            self.url = url

        @property
        def physical_resource_id(self) -> str:
            return self.function_arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::Url"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("FunctionUrl", "FunctionArn")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "FunctionUrl":
                return self.url
            if attribute_name == "FunctionArn":
                return self.function_arn
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            props = cloudformation_json["Properties"]
            target = props["TargetFunctionArn"]
            target = getattr(target, "function_arn", target)
            backend = lambda_backends[account_id][region_name]
            config = backend.create_function_url_config(target, config_of(props))
            return cls(config.function.function_arn, config.url)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: dict[str, Any], account_id: str,
                                            region_name: str) -> Any:
            props = cloudformation_json.get("Properties", {})
            backend = lambda_backends[account_id][region_name]
            backend.update_function_url_config(original_resource.function_arn, config_of(props))
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            try:
                lambda_backends[account_id][region_name].delete_function_url_config(self.function_arn)
            except Exception:
                pass

    _refresh_model_map("AWS::Lambda::Url")


def _patch_layer_version_by_arn() -> None:
    """moto routes GetLayerVersionByArn (`GET /2018-10-31/layers?find=LayerVersion&Arn=...`)
    but has no handler for it (HTTP 500). lamb uses it to read a layer version's CodeSha256."""
    from moto.awslambda.exceptions import UnknownLayerVersionException
    from moto.awslambda.responses import LambdaResponse

    _require(LambdaResponse, "get_layer_version")
    if hasattr(LambdaResponse, "get_layer_version_by_arn"):
        return

    def get_layer_version_by_arn(self: Any) -> str:
        arn = self._get_param("Arn") or (self.querystring.get("Arn") or [""])[0]
        version = self.backend._layers.get_layer_version_by_arn(arn)
        if version is None:
            raise UnknownLayerVersionException([arn])
        return json.dumps(version.get_layer_version())

    LambdaResponse.get_layer_version_by_arn = get_layer_version_by_arn


def apply_patches() -> None:
    import moto

    if moto.__version__ != TESTED_MOTO:
        LOG.warning("lamb emulator patches were written against moto %s, running %s", TESTED_MOTO,
                    moto.__version__)
    # moto's CFN parsing module imports every service model; import it first.
    import moto.cloudformation.parsing  # noqa: F401

    _patch_s3_template_url()
    _patch_sam_transform()
    _patch_change_sets()
    _patch_get_template()
    _patch_async_failures()
    _patch_lambda_and_apigw_models()
    _patch_iam_role_model()
    _add_apigw_stage_model()
    _add_lambda_url_model()
    _patch_layer_version_by_arn()
    _patch_error_format()  # last: wraps the final versions of the response methods


# --------------------------------------------------------------------------
# Request log: GET /_lamb/requests
# --------------------------------------------------------------------------

_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class RequestLog:
    """WSGI middleware in front of moto recording (method, service, action) per request.

    GET    /_lamb/requests        JSON list, oldest first, of
                                  {"method", "service", "action", "path", "status", "key"}
    DELETE /_lamb/requests        clear the list
    POST   /_lamb/reset           clear the list and reset all moto state
    POST   /moto-api/reset        (moto's own reset) also clears the list
    Requests to /_lamb/* and /moto-api/* are not recorded.  `service` is the
    SigV4 signing name (cloudformation, lambda, s3, iam, apigateway, sts...),
    `action` the API operation name (CreateChangeSet, GetFunction, PutObject...),
    "" when it cannot be determined, and `key` the access key id that signed it (so a
    benchmark can tell its own polls from lamb's calls).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.entries: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._routers: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "") or ""
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/_lamb/"):
            return self._own(method, path, start_response)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset" and method == "POST":
                self.clear()
            return self.app(environ, start_response)
        entry = {"method": method, "path": path, "status": None, **self._describe(environ)}
        with self.lock:
            self.entries.append(entry)

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            try:
                entry["status"] = int(status.split(" ", 1)[0])
            except ValueError:
                pass
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, recording_start_response)

    def clear(self) -> int:
        with self.lock:
            n = len(self.entries)
            self.entries.clear()
        return n

    def _own(self, method: str, path: str, start_response: Any) -> Any:
        route = path.rstrip("/")
        if route == "/_lamb/requests" and method == "GET":
            with self.lock:
                body: Any = list(self.entries)
        elif route == "/_lamb/requests" and method == "DELETE":
            body = {"cleared": self.clear()}
        elif route == "/_lamb/reset" and method == "POST":
            from moto.moto_api._internal import moto_api_backend

            with _CFN_LOCK:
                moto_api_backend.reset()
            body = {"cleared": self.clear()}
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown lamb emulator endpoint"}']
        data = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _describe(self, environ: dict[str, Any]) -> dict[str, str]:
        from urllib.parse import parse_qs

        auth = environ.get("HTTP_AUTHORIZATION", "") or ""
        query = environ.get("QUERY_STRING", "") or ""
        m = _CREDENTIAL_SCOPE.search(auth) or _CREDENTIAL_SCOPE.search(
            "Credential=" + unquote(parse_qs(query).get("X-Amz-Credential", [""])[0]))
        service = m.group(3) if m else ""
        key = m.group(1) if m else ""
        action = ""
        try:
            qs = parse_qs(query)
            if qs.get("Action"):
                action = qs["Action"][0]
            target = environ.get("HTTP_X_AMZ_TARGET")
            if not action and target:
                action = target.split(".")[-1]
            ctype = environ.get("CONTENT_TYPE", "") or ""
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if not action and "x-www-form-urlencoded" in ctype and 0 < length <= 10 * 1024 * 1024:
                import io

                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
                form = parse_qs(body.decode("utf-8", "replace"))
                if form.get("Action"):
                    action = form["Action"][0]
            if not action and service:
                action = self._route(service, environ)
        except Exception:  # the log must never break a request
            LOG.debug("could not classify request", exc_info=True)
        return {"service": service, "action": action, "key": key}

    def _route(self, service: str, environ: dict[str, Any]) -> str:
        from moto.core.request import Request  # werkzeug Request + raw_path, as moto's router expects
        from moto.core.routing import get_service_router

        router = self._routers.get(service)
        if router is None:
            try:
                router = get_service_router(service)
            except Exception:
                router = False
            self._routers[service] = router
        if not router:
            return ""
        try:
            operation, _ = router.match(Request(environ, shallow=True))
            return operation.name
        except Exception:
            return ""


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


def _wait_until_serving(host: str, port: int, timeout: float = 30.0) -> None:
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{port}/moto-api/"
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read(1)
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server accepts requests
        except Exception as e:  # noqa: PERF203
            last = e
            time.sleep(0.05)
    raise RuntimeError(f"moto server did not answer on {url}: {last}")


def _write_port_file(path: str, port: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".port-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--verbose", action="store_true", help="log every request")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="also stop (exit 0) when stdin reaches EOF, e.g. when the parent process dies")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # samtranslator warns about "unpublished metrics" on every transform
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        import warnings
        warnings.filterwarnings("ignore", message="Tried to parse .* it's not supported by moto")

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    try:
        if os.environ.get("LAMB_EMULATOR_UNPATCHED") == "1":  # diagnostics: plain moto
            print("lamb_emulator: WARNING: running unpatched moto", file=sys.stderr)
        else:
            apply_patches()
    except EmulatorPatchError as e:
        print(f"lamb_emulator: FATAL: {e}", file=sys.stderr)
        return 2

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = RequestLog(DomainDispatcherApplication(create_backend_app))
    try:
        server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as e:
        print(f"lamb_emulator: FATAL: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    port = server.server_address[1]
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if args.exit_on_stdin_eof:
        def _watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            stop.set()

        threading.Thread(target=_watch_stdin, name="stdin-eof", daemon=True).start()

    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        _wait_until_serving(args.host if args.host not in ("0.0.0.0", "::") else "127.0.0.1", port)
    except RuntimeError as e:
        print(f"lamb_emulator: FATAL: {e}", file=sys.stderr)
        server.shutdown()
        return 1
    _write_port_file(args.port_file, port)
    print(f"lamb_emulator: moto listening on http://{args.host}:{port}", file=sys.stderr, flush=True)

    while not stop.wait(0.5):
        pass
    server.shutdown()
    thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
