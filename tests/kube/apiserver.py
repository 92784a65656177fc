#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A Kubernetes API server for tests: the real wire format (discovery, JSON
objects, lists, watches, Status errors, patches), generic storage for a table
of resources plus CRDs registered at run time, persistence across kill -9,
and /_test endpoints that inject faults. See tests/kube/README.md.
"""

import argparse
import base64
import bisect
import copy
import hashlib
import datetime
import ipaddress
import json
import os
import random
import re
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schema as crdschema  # noqa: E402

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-sluice-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]

# Strategic merge patch: list fields that merge rather than replace. Paths
# are tuples of field names ("*" = any list element); the value is the merge
# key, or PRIMITIVE for lists of scalars merged as sets.
PRIMITIVE = "<primitive>"
_META_KEYS = {("metadata", "finalizers"): PRIMITIVE, ("metadata", "ownerReferences"): "uid"}
_PODSPEC_KEYS = {
    ("containers",): "name", ("initContainers",): "name", ("ephemeralContainers",): "name",
    ("volumes",): "name", ("imagePullSecrets",): "name", ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey", ("resourceClaims",): "name",
    ("schedulingGates",): "name",
}
for _c in ("containers", "initContainers", "ephemeralContainers"):
    _PODSPEC_KEYS[(_c, "*", "ports")] = "containerPort"
    _PODSPEC_KEYS[(_c, "*", "env")] = "name"
    _PODSPEC_KEYS[(_c, "*", "volumeMounts")] = "mountPath"
    _PODSPEC_KEYS[(_c, "*", "volumeDevices")] = "devicePath"


def _under(prefix, keys):
    return {prefix + k: v for k, v in keys.items()}


_TEMPLATE_KEYS = {**_under(("spec", "template", "spec"), _PODSPEC_KEYS),
                  **_under(("spec", "template"), _META_KEYS),
                  ("status", "conditions"): "type"}
MERGE_KEYS = {
    "Pod": {**_under(("spec",), _PODSPEC_KEYS), ("status", "conditions"): "type",
            ("status", "podIPs"): "ip", ("status", "hostIPs"): "ip"},
    "Node": {("spec", "podCIDRs"): PRIMITIVE, ("status", "conditions"): "type",
             ("status", "addresses"): "type"},
    "Service": {("spec", "ports"): "port"},
    "ServiceAccount": {("secrets",): "name"},
    "Namespace": {("status", "conditions"): "type"},
    "DaemonSet": _TEMPLATE_KEYS,
    "Deployment": _TEMPLATE_KEYS,
}

# Field selectors each kind supports besides metadata.name and metadata.namespace.
FIELD_LABELS = {
    "Pod": ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
            "status.podIP", "status.nominatedNodeName"],
    "Node": ["spec.unschedulable"],
    "Namespace": ["status.phase"],
    "Secret": ["type"],
    "Event": ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion",
              "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"],
}


class Resource:
    """One served resource of one group/version."""

    def __init__(self, group, version, plural, kind, namespaced, short=(),
                 status=False, categories=(), generation=False, names="subdomain",
                 crd=None, schema=None, storage_version=None, selectable=()):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.singular = kind.lower()
        self.namespaced = namespaced
        self.short = list(short)
        self.status = status
        self.categories = list(categories)
        self.generation = generation
        self.names = names
        self.crd = crd                  # CRD name for custom resources
        self.schema = schema            # openAPIV3Schema for custom resources
        self.storage_version = storage_version or version
        self.field_labels = ["metadata.name", "metadata.namespace"] + \
            FIELD_LABELS.get(kind, []) + list(selectable)

    @property
    def gv(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def qualified(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self):
        out = [{"name": self.plural, "singularName": self.singular,
                "namespaced": self.namespaced, "kind": self.kind, "verbs": ALL_VERBS}]
        if self.short:
            out[0]["shortNames"] = self.short
        if self.categories:
            out[0]["categories"] = self.categories
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind, "verbs": SUB_VERBS})
        return out


BUILTINS = [
    Resource("", "v1", "namespaces", "Namespace", False, ["ns"], status=True, names="label"),
    Resource("", "v1", "nodes", "Node", False, ["no"], status=True),
    Resource("", "v1", "pods", "Pod", True, ["po"], status=True, categories=["all"]),
    Resource("", "v1", "services", "Service", True, ["svc"], status=True,
             categories=["all"], names="label"),
    Resource("", "v1", "endpoints", "Endpoints", True, ["ep"]),
    Resource("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Resource("", "v1", "events", "Event", True, ["ev"]),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], status=True,
             categories=["all"], generation=True),
    Resource("apps", "v1", "deployments", "Deployment", True, ["deploy"], status=True,
             categories=["all"], generation=True),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True,
             ["netpol"], generation=True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, names="path"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             False, names="path"),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, names="path"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, names="path"),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
             "CustomResourceDefinition", False, ["crd", "crds"], status=True,
             categories=["api-extensions"], generation=True),
]
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")
DEFAULT_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"]


class ApiError(Exception):
    """An error answered as a Status object."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        return status_obj(self.code, self.reason, self.message, self.details)


def status_obj(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason}
    if details:
        st["details"] = details
    st["code"] = code
    return st


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


def _details(rt, name):
    d = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    return d


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def conflict(rt, name, why="the object has been modified; please apply your changes "
                           "to the latest version and try again"):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
                    _details(rt, name))


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(rt, name, errors):
    """422 Invalid from a list of schema.FieldError."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    msgs = [str(e) for e in errors]
    text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    d = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.kind
    d["causes"] = [e.cause() for e in errors]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}', d)


def _dumps(v):
    return json.dumps(v, separators=(",", ":"))


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj):
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


# ---------------------------------------------------------------- selectors

_LS_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"


def _split_top(s):
    """Split on commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [x.strip() for x in out if x.strip()]


def parse_label_selector(s):
    """A list of (key, op, values) requirements; raises ApiError."""
    reqs = []
    if not s:
        return reqs
    for part in _split_top(s):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)", part)
        if m:
            vals = [v.strip() for v in m.group(3).split(",") if v.strip()]
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"!\s*(\S+)", part)
        if m:
            reqs.append((m.group(1), "!", []))
            continue
        m = re.fullmatch(r"([^=!<>\s]+)\s*(==|=|!=|<|>)\s*(\S*)", part)
        if m:
            op = {"==": "=", "=": "="}.get(m.group(2), m.group(2))
            reqs.append((m.group(1), op, [m.group(3)]))
            continue
        if re.fullmatch(_LS_KEY, part):
            reqs.append((part, "exists", []))
            continue
        raise bad_request(f'unable to parse requirement: found \'{part}\', expected: '
                          f'!, identifier, or \'end of string\'')
    for k, _, _ in reqs:
        if not re.fullmatch(_LS_KEY, k):
            raise bad_request(f'unable to parse requirement: invalid label key "{k}"')
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for k, op, vals in reqs:
        has = k in labels
        v = labels.get(k)
        if op == "=" and not (has and v == vals[0]):
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
        if op in ("<", ">"):
            try:
                a, b = int(v), int(vals[0])
            except (TypeError, ValueError):
                return False
            if (op == "<" and not a < b) or (op == ">" and not a > b):
                return False
    return True


def parse_field_selector(s, rt):
    reqs = []
    if not s:
        return reqs
    for part in _split_top(s):
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request(f"invalid selector: '{s}'; can't understand '{part}'")
        field = m.group(1).strip()
        if field not in rt.field_labels:
            raise bad_request(f'field label not supported: {field}')
        reqs.append((field, "!=" if m.group(2) == "!=" else "=", m.group(3).strip()))
    return reqs


def field_value(obj, path):
    v = obj
    for p in path.split("."):
        if not isinstance(v, dict):
            return ""
        v = v.get(p)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict) and path == "source":
        return v.get("component", "")
    return str(v)


def fields_match(reqs, obj):
    for f, op, val in reqs:
        got = field_value(obj, f)
        if (op == "=") != (got == val):
            return False
    return True


# ---------------------------------------------------------------- patches

def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _ptr_parent(doc, parts):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict):
            cur = cur[p]
        else:
            raise KeyError(p)
    return cur


def _ptr_get(doc, parts):
    cur = doc
    for p in parts:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur


def _ptr_add(doc, parts, value):
    if not parts:
        return value
    par = _ptr_parent(doc, parts)
    last = parts[-1]
    if isinstance(par, list):
        if last == "-":
            par.append(value)
        else:
            i = int(last)
            if i < 0 or i > len(par):
                raise IndexError(last)
            par.insert(i, value)
    elif isinstance(par, dict):
        par[last] = value
    else:
        raise KeyError(last)
    return doc


def _ptr_remove(doc, parts):
    par = _ptr_parent(doc, parts)
    last = parts[-1]
    if isinstance(par, list):
        return par.pop(int(last))
    return par.pop(last)


def json_patch(doc, ops):
    """RFC 6902; raises ValueError."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")
    for op in ops:
        try:
            kind = op["op"]
            parts = _ptr(op["path"])
            if kind == "add":
                doc = _ptr_add(doc, parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _ptr_remove(doc, parts)
            elif kind == "replace":
                if not parts:
                    doc = copy.deepcopy(op["value"])
                else:
                    _ptr_get(doc, parts)
                    par = _ptr_parent(doc, parts)
                    k = int(parts[-1]) if isinstance(par, list) else parts[-1]
                    par[k] = copy.deepcopy(op["value"])
            elif kind == "move":
                v = _ptr_remove(doc, _ptr(op["from"]))
                doc = _ptr_add(doc, parts, v)
            elif kind == "copy":
                v = copy.deepcopy(_ptr_get(doc, _ptr(op["from"])))
                doc = _ptr_add(doc, parts, v)
            elif kind == "test":
                if _ptr_get(doc, parts) != op.get("value"):
                    raise ValueError(f"testing value {op['path']} failed")
            else:
                raise ValueError(f"unexpected kind: {kind}")
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f"doc is missing path: {op.get('path') if isinstance(op, dict) else op}: {e}")
    return doc


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items()
                if not k.startswith("$") and x is not None}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v
                if not (isinstance(x, dict) and "$patch" in x)]
    return v


def strategic_merge(orig, patch, keys, path=()):
    """Strategic merge patch of a map, with merge keys from `keys`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(orig, dict):
        orig = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    out = copy.deepcopy(orig)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        out = {k: v for k, v in out.items() if k in keep}
    orders = {}
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in (v or [])]
        elif k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v or []
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            r = strategic_merge(out.get(k), v, keys, path + (k,))
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, keys, path + (k,))
        else:
            out[k] = v
    for f, order in orders.items():
        if isinstance(out.get(f), list):
            out[f] = _reorder(out[f], order, keys.get(path + (f,)))
    return out


def _smp_list(orig, patch, keys, path):
    strategy = keys.get(path)
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return _strip_directives(patch)
    if strategy is None or not isinstance(orig, list):
        return _strip_directives(patch)
    out = copy.deepcopy(orig)
    if strategy == PRIMITIVE:
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    for x in patch:
        if not isinstance(x, dict):
            continue
        kv = x.get(strategy)
        idx = next((i for i, o in enumerate(out)
                    if isinstance(o, dict) and o.get(strategy) == kv), None)
        if x.get("$patch") == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(strategy) == kv)]
        elif idx is None:
            out.append(strategic_merge({}, x, keys, path + ("*",)))
        else:
            out[idx] = strategic_merge(out[idx], x, keys, path + ("*",))
    return out


def _reorder(lst, order, key):
    def ident(x):
        return x.get(key) if key not in (None, PRIMITIVE) and isinstance(x, dict) else x
    want = [ident(o) for o in order]
    first = []
    for w in want:
        for x in lst:
            if ident(x) == w and x not in first:
                first.append(x)
                break
    return first + [x for x in lst if x not in first]


# Server-side apply: the fields a manager owns, as fieldsV1 paths.

def _fields(obj, keys, path=(), fpath=(), out=None):
    if out is None:
        out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            fp = fpath + ("f:" + k,)
            out.add(fp)
            if isinstance(v, dict) and v:
                _fields(v, keys, path + (k,), fp, out)
            elif isinstance(v, list):
                mk = keys.get(path + (k,))
                if mk and mk != PRIMITIVE:
                    for e in v:
                        if isinstance(e, dict) and mk in e:
                            ep = fp + ("k:" + json.dumps({mk: e[mk]}, separators=(",", ":")),)
                            out.add(ep)
                            _fields(e, keys, path + (k, "*"), ep, out)
    return out


def _fields_tree(paths):
    tree = {}
    for p in sorted(paths, key=len):
        node = tree
        for i, part in enumerate(p):
            node = node.setdefault(part, {})
    for p in paths:
        node = tree
        for part in p:
            node = node[part]
        if node and "." not in node:
            node["."] = {}
    return tree


def _tree_fields(tree, prefix=(), out=None):
    if out is None:
        out = set()
    for k, v in (tree or {}).items():
        if k == ".":
            continue
        out.add(prefix + (k,))
        _tree_fields(v, prefix + (k,), out)
    return out


def _remove_field(obj, fpath):
    cur = obj
    for i, part in enumerate(fpath):
        last = i == len(fpath) - 1
        if part.startswith("f:"):
            if not isinstance(cur, dict) or part[2:] not in cur:
                return
            if last:
                del cur[part[2:]]
                return
            cur = cur[part[2:]]
        elif part.startswith("k:"):
            want = json.loads(part[2:])
            if not isinstance(cur, list):
                return
            idx = next((j for j, e in enumerate(cur) if isinstance(e, dict)
                        and all(e.get(a) == b for a, b in want.items())), None)
            if idx is None:
                return
            if last:
                del cur[idx]
                return
            cur = cur[idx]
        else:
            return


_SSA_KEEP = {("f:apiVersion",), ("f:kind",), ("f:metadata",), ("f:metadata", "f:name"),
             ("f:metadata", "f:namespace")}


def server_side_apply(live, applied, manager, keys, api_version):
    """Merge an applied configuration into the live object: fields the manager
    applied before and no longer applies are removed. No conflict detection."""
    result = copy.deepcopy(live) if live else {}
    mf = (result.get("metadata") or {}).get("managedFields") or []
    prev = set()
    for e in mf:
        if e.get("manager") == manager and e.get("operation") == "Apply":
            prev = _tree_fields(e.get("fieldsV1"))
    new = _fields({k: v for k, v in applied.items()}, keys)
    for p in sorted(prev - new - _SSA_KEEP, key=len, reverse=True):
        if p[0] == "f:status":
            continue
        _remove_field(result, p)
    merged = strategic_merge(result, applied, keys)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": api_version,
             "time": now_rfc3339(), "fieldsType": "FieldsV1",
             "fieldsV1": _fields_tree(new - {("f:apiVersion",), ("f:kind",)})}
    mf = [e for e in mf if not (e.get("manager") == manager and e.get("operation") == "Apply")]
    mf.append(entry)
    meta(merged)["managedFields"] = mf
    return merged


# ---------------------------------------------------------------- protobuf

# `kubectl create namespace|configmap|secret|serviceaccount|service|deployment|
# role|clusterrole|rolebinding|clusterrolebinding` send protobuf. These are the
# field numbers of k8s.io/api's generated.proto for what those commands fill
# in. A type ending in "?" keeps its zero value (a pointer field in Go); "*"
# is repeated; "-" is ignored (status).
_OM = ("metadata", "ObjectMeta")
PROTO = {
    "ObjectMeta": {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"),
                   4: ("selfLink", "s"), 5: ("uid", "s"), 6: ("resourceVersion", "s"),
                   7: ("generation", "i"), 8: ("creationTimestamp", "Time"),
                   9: ("deletionTimestamp", "Time"), 10: ("deletionGracePeriodSeconds", "i"),
                   11: ("labels", "map"), 12: ("annotations", "map"),
                   13: ("ownerReferences", "OwnerReference*"), 14: ("finalizers", "s*"),
                   17: ("managedFields", "-")},
    "OwnerReference": {1: ("kind", "s"), 3: ("name", "s"), 4: ("uid", "s"),
                       5: ("apiVersion", "s"), 6: ("controller", "b?"),
                       7: ("blockOwnerDeletion", "b?")},
    "Namespace": {1: _OM, 2: ("spec", "NamespaceSpec"), 3: ("status", "-")},
    "NamespaceSpec": {1: ("finalizers", "s*")},
    "ConfigMap": {1: _OM, 2: ("data", "map"), 3: ("binaryData", "mapb"), 4: ("immutable", "b?")},
    "Secret": {1: _OM, 2: ("data", "mapb"), 3: ("type", "s"), 4: ("stringData", "map"),
               5: ("immutable", "b?")},
    "ServiceAccount": {1: _OM, 2: ("secrets", "ObjectReference*"),
                       3: ("imagePullSecrets", "LocalObjectReference*"),
                       4: ("automountServiceAccountToken", "b?")},
    "ObjectReference": {1: ("kind", "s"), 2: ("namespace", "s"), 3: ("name", "s"),
                        4: ("uid", "s"), 5: ("apiVersion", "s"), 6: ("resourceVersion", "s"),
                        7: ("fieldPath", "s")},
    "LocalObjectReference": {1: ("name", "s")},
    "Service": {1: _OM, 2: ("spec", "ServiceSpec"), 3: ("status", "-")},
    "ServiceSpec": {1: ("ports", "ServicePort*"), 2: ("selector", "map"), 3: ("clusterIP", "s"),
                    4: ("type", "s"), 5: ("externalIPs", "s*"), 7: ("sessionAffinity", "s"),
                    8: ("loadBalancerIP", "s"), 9: ("loadBalancerSourceRanges", "s*"),
                    10: ("externalName", "s"), 11: ("externalTrafficPolicy", "s"),
                    12: ("healthCheckNodePort", "i"), 13: ("publishNotReadyAddresses", "b"),
                    17: ("ipFamilyPolicy", "s"), 18: ("clusterIPs", "s*"),
                    19: ("ipFamilies", "s*"), 20: ("allocateLoadBalancerNodePorts", "b?"),
                    21: ("loadBalancerClass", "s"), 22: ("internalTrafficPolicy", "s")},
    "ServicePort": {1: ("name", "s"), 2: ("protocol", "s"), 3: ("port", "i"),
                    4: ("targetPort", "IntOrString"), 5: ("nodePort", "i"),
                    6: ("appProtocol", "s")},
    "Deployment": {1: _OM, 2: ("spec", "DeploymentSpec"), 3: ("status", "-")},
    "DeploymentSpec": {1: ("replicas", "i?"), 2: ("selector", "LabelSelector"),
                       3: ("template", "PodTemplateSpec"), 4: ("strategy", "DeploymentStrategy"),
                       5: ("minReadySeconds", "i"), 6: ("revisionHistoryLimit", "i?"),
                       7: ("paused", "b"), 9: ("progressDeadlineSeconds", "i?")},
    "DeploymentStrategy": {1: ("type", "s"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString"),
                                2: ("maxSurge", "IntOrString")},
    "LabelSelector": {1: ("matchLabels", "map"),
                      2: ("matchExpressions", "LabelSelectorRequirement*")},
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "s*")},
    "PodTemplateSpec": {1: _OM, 2: ("spec", "PodSpec")},
    "PodSpec": {2: ("containers", "Container*"), 3: ("restartPolicy", "s"),
                4: ("terminationGracePeriodSeconds", "i?"), 5: ("activeDeadlineSeconds", "i?"),
                6: ("dnsPolicy", "s"), 7: ("nodeSelector", "map"),
                8: ("serviceAccountName", "s"), 9: ("serviceAccount", "s"),
                10: ("nodeName", "s"), 11: ("hostNetwork", "b"), 12: ("hostPID", "b"),
                13: ("hostIPC", "b"), 15: ("imagePullSecrets", "LocalObjectReference*"),
                16: ("hostname", "s"), 17: ("subdomain", "s"), 19: ("schedulerName", "s"),
                20: ("initContainers", "Container*"), 24: ("priorityClassName", "s"),
                25: ("priority", "i?"), 29: ("runtimeClassName", "s"),
                30: ("enableServiceLinks", "b?"), 31: ("preemptionPolicy", "s")},
    "Container": {1: ("name", "s"), 2: ("image", "s"), 3: ("command", "s*"), 4: ("args", "s*"),
                  5: ("workingDir", "s"), 6: ("ports", "ContainerPort*"), 7: ("env", "EnvVar*"),
                  8: ("resources", "ResourceRequirements"),
                  13: ("terminationMessagePath", "s"), 14: ("imagePullPolicy", "s"),
                  16: ("stdin", "b"), 17: ("stdinOnce", "b"), 18: ("tty", "b"),
                  20: ("terminationMessagePolicy", "s")},
    "ContainerPort": {1: ("name", "s"), 2: ("hostPort", "i"), 3: ("containerPort", "i"),
                      4: ("protocol", "s"), 5: ("hostIP", "s")},
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    "ResourceRequirements": {1: ("limits", "mapq"), 2: ("requests", "mapq")},
    "Role": {1: _OM, 2: ("rules", "PolicyRule*")},
    "ClusterRole": {1: _OM, 2: ("rules", "PolicyRule*"), 3: ("aggregationRule", "AggregationRule")},
    "AggregationRule": {1: ("clusterRoleSelectors", "LabelSelector*")},
    "PolicyRule": {1: ("verbs", "s*"), 2: ("apiGroups", "s*"), 3: ("resources", "s*"),
                   4: ("resourceNames", "s*"), 5: ("nonResourceURLs", "s*")},
    "RoleBinding": {1: _OM, 2: ("subjects", "Subject*"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: _OM, 2: ("subjects", "Subject*"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
}


def _pb_fields(b):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    out = []

    def varint():
        nonlocal i
        r = shift = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return r
    while i < len(b):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out.append((num, wt, varint()))
        elif wt == 2:
            n = varint()
            out.append((num, wt, b[i:i + n]))
            i += n
        elif wt == 1:
            out.append((num, wt, b[i:i + 8]))
            i += 8
        elif wt == 5:
            out.append((num, wt, b[i:i + 4]))
            i += 4
        else:
            raise ValueError(f"protobuf wire type {wt}")
    if i != len(b):
        raise ValueError("truncated protobuf message")
    return out


def _pb_message(b, typ):
    fields = PROTO[typ]
    out = {}
    for num, wt, v in _pb_fields(b):
        if num not in fields:
            log(f"protobuf: {typ} field {num} is not known here; dropped")
            continue
        name, t = fields[num]
        keep = t.endswith("?")
        rep = t.endswith("*")
        t = t.rstrip("?*")
        if t == "-":
            continue
        if t == "s":
            val = v.decode()
        elif t == "i":
            val = v - (1 << 64) if v >= 1 << 63 else v
        elif t == "b":
            val = bool(v)
        elif t in ("map", "mapb", "mapq"):
            e = {n: x for n, _, x in _pb_fields(v)}
            key = e.get(1, b"").decode()
            raw = e.get(2, b"")
            if t == "map":
                val = raw.decode()
            elif t == "mapb":
                val = base64.b64encode(raw).decode()
            else:
                val = {n: x for n, _, x in _pb_fields(raw)}.get(1, b"").decode()
            out.setdefault(name, {})[key] = val
            continue
        elif t == "Time":
            e = {n: x for n, _, x in _pb_fields(v)}
            val = datetime.datetime.fromtimestamp(e[1], datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ") if e.get(1) else None
        elif t == "IntOrString":
            e = {n: x for n, _, x in _pb_fields(v)}
            val = e.get(3, b"").decode() if e.get(1) == 1 else e.get(2, 0)
        else:
            val = _pb_message(v, t)
        if rep:
            out.setdefault(name, []).append(val)
        elif keep or val not in ("", 0, False, None, {}):
            out[name] = val
    return out


def decode_protobuf(data):
    """A Kubernetes protobuf body ("k8s\\0" + runtime.Unknown) as a JSON object."""
    if data[:4] != b"k8s\x00":
        raise ValueError("no k8s protobuf magic")
    env = {n: v for n, _, v in _pb_fields(data[4:])}
    tm = {n: v.decode() for n, _, v in _pb_fields(env.get(1, b""))}
    kind = tm.get(2, "")
    if kind not in PROTO:
        raise ValueError(f"kind {kind!r}")
    obj = {"apiVersion": tm.get(1, ""), "kind": kind}
    obj.update(_pb_message(env.get(2, b""), kind))
    return obj


# ---------------------------------------------------------------- validation

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def _fe(field, reason, detail):
    return crdschema.FieldError(field, reason, detail)


def validate_name(rt, name):
    errs = []
    fld = "metadata.name"
    if rt.names == "label":
        if len(name) > 63 or not _LABEL.fullmatch(name):
            errs.append(_fe(fld, "FieldValueInvalid",
                            f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of '
                            "lower case alphanumeric characters or '-', and must start and end with "
                            "an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
                            "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"))
    elif rt.names == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            errs.append(_fe(fld, "FieldValueInvalid",
                            f'Invalid value: "{name}": may not contain \'/\' or \'%\''))
    elif len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        errs.append(_fe(fld, "FieldValueInvalid",
                        f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                        "lower case alphanumeric characters, '-' or '.', and must start and end "
                        "with an alphanumeric character (e.g. 'example.com', regex used for "
                        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))
    return errs


def validate_meta(rt, obj):
    m = obj["metadata"]
    errs = validate_name(rt, m["name"])
    labels = m.get("labels")
    if labels is not None and not isinstance(labels, dict):
        errs.append(_fe("metadata.labels", "FieldValueInvalid", "Invalid value: must be a map"))
        return errs
    for k, v in (labels or {}).items():
        name = k.rsplit("/", 1)[-1]
        if len(name) > 63 or not _QUALIFIED.fullmatch(name) or \
                ("/" in k and not _SUBDOMAIN.fullmatch(k.rsplit("/", 1)[0])):
            errs.append(_fe("metadata.labels", "FieldValueInvalid",
                            f'Invalid value: "{k}": name part must consist of alphanumeric '
                            "characters, '-', '_' or '.', and must start and end with an "
                            "alphanumeric character"))
        if not isinstance(v, str):
            errs.append(_fe(f"metadata.labels.{k}", "FieldValueInvalid",
                            f"Invalid value: {json.dumps(v)}: must be a string"))
        elif len(v) > 63 or not _LABEL_VALUE.fullmatch(v):
            errs.append(_fe("metadata.labels", "FieldValueInvalid",
                            f'Invalid value: "{v}": a valid label must be an empty string or '
                            "consist of alphanumeric characters, '-', '_' or '.', and must start "
                            "and end with an alphanumeric character (e.g. 'MyValue',  or "
                            "'my_value',  or '12345', regex used for validation is "
                            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))
    ann = m.get("annotations")
    if ann is not None and (not isinstance(ann, dict) or
                            not all(isinstance(v, str) for v in ann.values())):
        errs.append(_fe("metadata.annotations", "FieldValueInvalid",
                        "Invalid value: annotations must be a map of strings"))
    return errs


def _version_priority(v):
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (0, 0, 0, v)
    rank = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (rank, int(m.group(1)), int(m.group(3) or 0), "")


def validate_crd(crd):
    errs = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    if not group:
        errs.append(_fe("spec.group", "FieldValueRequired", "Required value"))
    if not plural:
        errs.append(_fe("spec.names.plural", "FieldValueRequired", "Required value"))
    if not names.get("kind"):
        errs.append(_fe("spec.names.kind", "FieldValueRequired", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.append(_fe("spec.scope", "FieldValueNotSupported",
                        f'Unsupported value: {json.dumps(spec.get("scope"))}: '
                        'supported values: "Cluster", "Namespaced"'))
    name = crd["metadata"]["name"]
    if group and plural and name != f"{plural}.{group}":
        errs.append(_fe("metadata.name", "FieldValueInvalid",
                        f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(_fe("spec.versions", "FieldValueInvalid",
                        "Invalid value: null: must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(_fe("spec.versions", "FieldValueInvalid",
                        f"Invalid value: {json.dumps(versions)[:80]}: must have exactly one "
                        "version marked as storage version"))
    return errs


# ---------------------------------------------------------------- storage

# An unpaged list of more items than this is sent in chunks of as many.
LIST_STREAM_MIN = 500


class Snapshot:
    """{(ns, name): obj} of one resource at some resourceVersion without a
    copy of it: the live objects plus, for those changed since, what they
    were then (None: not there yet). A copy per page of a chunked list was
    the whole resource (100 000 pods) for every 500 served. Valid while the
    store's lock is held: the live dict changes under it."""

    def __init__(self, live, over):
        self.live, self.over = live, over

    def get(self, k):
        return self.over[k] if k in self.over else self.live.get(k)

    def sorted_keys(self):
        over = self.over
        keys = [k for k in self.live if k not in over]
        keys.extend(k for k, o in over.items() if o is not None)
        keys.sort()
        return keys


class Store:
    """Objects, the resourceVersion counter and the event history. All access
    under self.lock; stored objects are never mutated after storing."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 0
        self.oldest = 0          # every event with rv > oldest is in history
        self.objects = {}        # (group, plural) -> {(ns, name): obj}
        self.history = []        # events, increasing rv
        self.history_json = []   # the same, serialized (for persist)
        self.objects_json = {}   # (group, plural, ns, name) -> serialized [group, plural, obj]
        self.resources = {}      # (group, version, plural) -> Resource
        self.watchers = {}       # id -> info for stats
        self.keys_cache = {}     # (group, plural), rv -> sorted keys (list pages)
        self.next_svc_ip = 1
        self.used_node_ports = set()
        for rt in BUILTINS:
            self.resources[(rt.group, rt.version, rt.plural)] = rt
        self.loaded = False
        if args.state and os.path.exists(args.state):
            self._load(args.state)
            self.loaded = True

    # -- persistence

    def _load(self, path):
        with open(path) as f:
            st = json.load(f)
        self.rv = st["rv"]
        self.oldest = st["oldest"]
        self.history = st["history"]
        self.history_json = [_dumps(e) for e in self.history]
        for g, r, obj in st["objects"]:
            m = obj["metadata"]
            self.objects.setdefault((g, r), {})[(m.get("namespace", ""), m["name"])] = obj
            self.objects_json[(g, r, m.get("namespace", ""), m["name"])] = _dumps([g, r, obj])
        self.next_svc_ip = st.get("nextServiceIP", 1)
        self.used_node_ports = set(st.get("nodePorts", []))
        for crd in list(self.objects.get(CRD_KEY, {}).values()):
            self._register_crd(crd)

    def persist(self):
        path = self.args.state
        if not path:
            return
        head = {"version": 1, "rv": self.rv, "oldest": self.oldest,
                "nextServiceIP": self.next_svc_ip, "nodePorts": sorted(self.used_node_ports)}
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(_dumps(head)[:-1])
            f.write(',"objects":[')
            f.write(",".join(self.objects_json.values()))
            f.write('],"history":[')
            f.write(",".join(self.history_json))
            f.write("]}")
        os.replace(tmp, path)

    # -- resources

    def resource(self, group, version, plural):
        return self.resources.get((group, version, plural))

    def groups(self):
        """{group: [versions, preferred first]} of non-core groups."""
        out = {}
        for (g, v, _p) in self.resources:
            if g:
                out.setdefault(g, set()).add(v)
        return {g: sorted(vs, key=_version_priority, reverse=True) for g, vs in out.items()}

    def _register_crd(self, crd):
        self._unregister_crd(crd["metadata"]["name"])
        spec = crd["spec"]
        names = spec["names"]
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")), None)
        schemas = crdschema.crd_schemas(crd)
        for v in spec["versions"]:
            if not v.get("served", True):
                continue
            sub = (v.get("subresources") or spec.get("subresources") or {})
            selectable = [s.get("jsonPath", "").lstrip(".")
                          for s in (v.get("selectableFields") or [])]
            rt = Resource(spec["group"], v["name"], names["plural"], names["kind"],
                          spec.get("scope") == "Namespaced", names.get("shortNames") or [],
                          status="status" in sub, categories=names.get("categories") or [],
                          generation=True, crd=crd["metadata"]["name"],
                          schema=schemas.get(v["name"]), storage_version=storage,
                          selectable=selectable)
            rt.singular = names.get("singular") or names["kind"].lower()
            rt.list_kind = names.get("listKind")
            self.resources[(rt.group, rt.version, rt.plural)] = rt

    def _unregister_crd(self, name):
        for k, rt in list(self.resources.items()):
            if rt.crd == name:
                del self.resources[k]

    def crd_accepted(self, crd, old):
        """Status the real server gives an accepted CRD."""
        spec = crd["spec"]
        t = now_rfc3339()
        names = dict(spec["names"])
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
        ost = (old or {}).get("status") or {}
        if ost.get("acceptedNames") == names:
            stored = list(ost.get("storedVersions") or [])
            for v in spec["versions"]:
                if v.get("storage") and v["name"] not in stored:
                    stored.append(v["name"])
            crd["status"] = dict(ost, storedVersions=stored)
            return
        crd["status"] = {
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t,
                 "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": t,
                 "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted"}],
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        }

    # -- writes (caller holds the lock)

    def _event(self, etype, key, obj, prev):
        ev = {"rv": self.rv, "type": etype, "g": key[0], "r": key[1], "obj": obj, "prev": prev}
        self.history.append(ev)
        if self.args.state:
            self.history_json.append(_dumps(ev))
        limit = max(self.args.history, 0)
        if len(self.history) > limit:
            drop = len(self.history) - limit
            self.oldest = self.history[drop - 1]["rv"]
            del self.history[:drop]
            del self.history_json[:drop]

    def commit(self):
        self.persist()
        self.cond.notify_all()

    def put(self, rt, obj, prev):
        """Store obj (new resourceVersion) and record its event."""
        self.rv += 1
        m = obj["metadata"]
        m["resourceVersion"] = str(self.rv)
        k = (m.get("namespace", ""), m["name"])
        self.objects.setdefault(rt.key, {})[k] = obj
        if self.args.state:
            self.objects_json[rt.key + k] = _dumps([rt.key[0], rt.key[1], obj])
        self._event("MODIFIED" if prev else "ADDED", rt.key, obj, prev)
        if rt.key == CRD_KEY:
            self._register_crd(obj)
        return obj

    def remove(self, rt, obj):
        self.rv += 1
        m = obj["metadata"]
        self.objects.get(rt.key, {}).pop((m.get("namespace", ""), m["name"]), None)
        self.objects_json.pop(rt.key + (m.get("namespace", ""), m["name"]), None)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._event("DELETED", rt.key, gone, obj)
        return gone

    def get(self, rt, ns, name):
        return self.objects.get(rt.key, {}).get((ns or "", name))

    def items(self, key):
        d = self.objects.get(key, {})
        return [d[k] for k in sorted(d)]

    def snapshot(self, key, at_rv):
        """One resource as it was at at_rv (a Snapshot, read under the lock);
        None if the history no longer reaches back that far."""
        live = self.objects.get(key, {})
        if at_rv >= self.rv:
            return Snapshot(live, {})
        if at_rv < self.oldest:
            return None
        over = {}
        i = bisect.bisect_right(self.history, at_rv, key=lambda e: e["rv"])
        for ev in reversed(self.history[i:]):
            if (ev["g"], ev["r"]) != key:
                continue
            m = ev["obj"]["metadata"]
            k = (m.get("namespace", ""), m["name"])
            over[k] = None if ev["type"] == "ADDED" else ev["prev"]
        return Snapshot(live, over)

    def sorted_keys(self, key, at_rv, snap):
        """The sorted keys of snap, resource key at at_rv: kept for the next
        pages of a chunked list, which would otherwise sort the whole
        resource again for each page (quadratic at 100 000 pods)."""
        with self.lock:
            hit = self.keys_cache.get((key, at_rv))
            if hit is None:
                hit = snap.sorted_keys()
                if len(self.keys_cache) >= 16:
                    self.keys_cache.clear()
                self.keys_cache[(key, at_rv)] = hit
            return hit

    def events_after(self, rv):
        i = bisect.bisect_right(self.history, rv, key=lambda e: e["rv"])
        return self.history[i:]


# ---------------------------------------------------------------- HTTP

class Config:
    pass


CFG = Config()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0
        self.lists = {}
        self.watches = {}
        self.by_ua = {}
        self.by_code = {}

    def count(self, kind, res, ua):
        with self.lock:
            d = self.lists if kind == "list" else self.watches
            d[res] = d.get(res, 0) + 1
            u = self.by_ua.setdefault(ua, {"requests": 0, "lists": {}, "watches": {}})
            u2 = u["lists"] if kind == "list" else u["watches"]
            u2[res] = u2.get(res, 0) + 1

    def request(self, ua):
        with self.lock:
            self.requests += 1
            u = self.by_ua.setdefault(ua, {"requests": 0, "lists": {}, "watches": {}})
            u["requests"] += 1

    def code(self, code):
        with self.lock:
            self.by_code[str(code)] = self.by_code.get(str(code), 0) + 1


class Tokens:
    """--token-file, re-read whenever it changes: one token a line, or the
    static token CSV format (token,user,uid,"group1,group2")."""

    def __init__(self, path):
        self.path = path
        self.sig = None
        self.tokens = {}
        self.lock = threading.Lock()

    def lookup(self, token):
        if not self.path:
            return None
        with self.lock:
            try:
                st = os.stat(self.path)
                sig = (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                sig = None
            if sig != self.sig:
                self.sig = sig
                self.tokens = {}
                try:
                    with open(self.path) as f:
                        for i, line in enumerate(f):
                            line = line.strip()
                            if not line or line.startswith("#"):
                                continue
                            parts = [p.strip().strip('"') for p in line.split(",")]
                            user = parts[1] if len(parts) > 1 and parts[1] else f"token-user-{i + 1}"
                            self.tokens[parts[0]] = user
                except OSError:
                    pass
            return self.tokens.get(token)


def log(msg):
    sys.stderr.write(f"apiserver: {msg}\n")
    sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sluice-test-apiserver"
    sys_version = ""
    timeout = 600

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        pass

    # -- plumbing

    def setup(self):
        super().setup()
        self.user = None

    def _send(self, code, body, ctype="application/json", headers=None):
        data = body if isinstance(body, bytes) else \
            (json.dumps(body, separators=(",", ":")) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._log(code)

    def _log(self, code, extra=""):
        CFG.stats.code(code)
        ua = self.headers.get("User-Agent", "-")
        log(f'{self.command} {self.path} {code} "{ua}" user={self.user or "-"}{extra}')

    def _error(self, err):
        self._send(err.code, err.status(), headers=err.headers)

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _body_obj(self, data, yaml_ok=False):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            try:
                return decode_protobuf(data)
            except (ValueError, IndexError, KeyError, UnicodeDecodeError) as e:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - "
                               f"protobuf is decoded only for the kinds kubectl create makes: {e}")
        try:
            if yaml_ok:
                obj = yaml.safe_load(data.decode() or "null")
            else:
                obj = json.loads(data.decode() or "null")
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the body of the request could not be decoded: {e}")
        return obj

    def _authenticate(self):
        """User name, None for anonymous; raises 401."""
        auth = self.headers.get("Authorization")
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError, ssl.SSLError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
            return "x509-user"
        if auth:
            parts = auth.split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                user = CFG.tokens.lookup(parts[1].strip())
                if user:
                    return user
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return None

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self):
        try:
            self.body = self._read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") \
                else b""
            u = urllib.parse.urlsplit(self.path)
            self.q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query,
                                                                  keep_blank_values=True).items()}
            self.parts = [urllib.parse.unquote(p) for p in u.path.split("/") if p]
            ua = self.headers.get("User-Agent", "-")
            self.user = None
            self.user = self._authenticate()
            public = self.parts in ([], ["version"], ["healthz"], ["livez"], ["readyz"])
            if self.user is None and not public:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if self.parts[:1] == ["_test"]:
                return self._test_endpoint()
            CFG.stats.request(ua)
            self._delay()
            self._route()
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug: answer 500 and say where
            traceback.print_exc()
            try:
                self._error(ApiError(500, "InternalError", f"Internal error occurred: {e}"))
            except OSError:
                self.close_connection = True

    def _delay(self):
        with CFG.fault_lock:
            delay = CFG.delay_ms
        if delay:
            time.sleep(delay / 1000.0)

    def _inject_failure(self):
        """/_test/fail: resource requests (not discovery) fail while the
        count lasts; with match=REGEX only those whose "METHOD PATH?QUERY"
        matches."""
        fail = None
        with CFG.fault_lock:
            if CFG.fail_count > 0 and (not CFG.fail_match or
                                       re.search(CFG.fail_match, f"{self.command} {self.path}")):
                CFG.fail_count -= 1
                fail = CFG.fail_status
        if fail:
            reason = REASONS.get(fail, "InternalError")
            hdr = {"Retry-After": "1"} if fail in (429, 503) else {}
            msg = {429: "Too many requests, please try again later.",
                   503: "The server is currently unable to handle the request"}.get(
                fail, f"Internal error occurred: injected failure ({fail})")
            raise ApiError(fail, reason, msg, {"retryAfterSeconds": 1} if hdr else None, hdr)

    # -- routing

    def _route(self):
        p = self.parts
        if self.command not in ("GET", "HEAD") and p[:1] not in (["api"], ["apis"]):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if p in ([], ["version"], ["healthz"], ["livez"], ["readyz"]):
            if not p:
                return self._send(200, {"paths": sorted(["/api", "/api/v1", "/apis", "/healthz",
                                                         "/livez", "/readyz", "/version"])})
            if p == ["version"]:
                return self._send(200, SERVER_VERSION)
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        if p[0] == "openapi":
            return self._openapi(p)
        if p == ["api"]:
            host = self.connection.getsockname()
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [
                                        {"clientCIDR": "0.0.0.0/0",
                                         "serverAddress": f"{host[0]}:{host[1]}"}]})
        if p == ["apis"]:
            return self._send(200, self._group_list())
        if p[0] == "apis" and len(p) == 2:
            g = CFG.store.groups().get(p[1])
            if not g:
                raise self._nf()
            return self._send(200, self._group(p[1], g))
        if p[0] == "api" and len(p) >= 2:
            group, version, rest = "", p[1], p[2:]
        elif p[0] == "apis" and len(p) >= 3:
            group, version, rest = p[1], p[2], p[3:]
        else:
            raise self._nf()
        with CFG.store.lock:
            known = any(k[0] == group and k[1] == version for k in CFG.store.resources)
        if not known:
            raise self._nf()
        if not rest:
            if self.command not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            return self._send(200, self._resource_list(group, version))
        self._resource_request(group, version, rest)

    def _openapi(self, p):
        """Just enough OpenAPI v3 for kubectl: every kind's PATCH operation
        declares the fieldValidation parameter, so kubectl leaves validation
        to the server (fieldValidation=Strict) instead of validating
        client-side against schemas this server does not have. There is no
        /openapi/v2 and there are no schemas (kubectl explain does not work)."""
        if p[:2] != ["openapi", "v3"]:
            raise self._nf()
        with CFG.store.lock:
            gvs = sorted({(g, v) for (g, v, _r) in CFG.store.resources})
            docs = {("api/" + v if not g else f"apis/{g}/{v}"): openapi_gv(CFG.store, g, v)
                    for g, v in gvs}
        if len(p) == 2:
            paths = {}
            for k, d in docs.items():
                h = hashlib.sha512(json.dumps(d, sort_keys=True).encode()).hexdigest()[:64].upper()
                paths[k] = {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"}
            return self._send(200, {"paths": paths})
        doc = docs.get("/".join(p[2:]))
        if doc is None:
            raise self._nf()
        return self._send(200, doc)

    def _nf(self):
        return ApiError(404, "NotFound", "the server could not find the requested resource")

    def _group(self, name, versions):
        vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": vs,
                "preferredVersion": vs[0]}

    def _group_list(self):
        with CFG.store.lock:
            groups = CFG.store.groups()
        out = []
        for g in sorted(groups, key=lambda g: (g.endswith(".k8s.io") is False, g)):
            grp = self._group(g, groups[g])
            del grp["kind"], grp["apiVersion"]
            out.append(grp)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}

    def _resource_list(self, group, version):
        with CFG.store.lock:
            rts = [rt for (g, v, _), rt in CFG.store.resources.items()
                   if g == group and v == version]
        res = []
        for rt in sorted(rts, key=lambda r: r.plural):
            res.extend(rt.discovery())
        out = {"kind": "APIResourceList"}
        if group:
            out["apiVersion"] = "v1"
        out["groupVersion"] = f"{group}/{version}" if group else version
        out["resources"] = res
        return out

    def _resource_request(self, group, version, rest):
        store = CFG.store
        watch = False
        if rest[0] == "watch":
            watch = True
            rest = rest[1:]
        ns = None
        with store.lock:
            def lookup(plural):
                return store.resource(group, version, plural)
            if len(rest) >= 3 and rest[0] == "namespaces" and lookup(rest[2]) and \
                    lookup(rest[2]).namespaced:
                ns = rest[1]
                rest = rest[2:]
            rt = lookup(rest[0]) if rest else None
        if rt is None or len(rest) > 3 or (ns is None and rt.namespaced and len(rest) > 1):
            raise self._nf()
        self._inject_failure()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (sub == "status" and rt.status):
            if rt.key == NS_KEY and sub == "finalize" and self.command == "PUT":
                sub = "status"
            else:
                raise self._nf()
        m = self.command
        ops = Ops(rt, ns, self.q, self.user)
        if name is None:
            if m in ("GET", "HEAD"):
                if watch or self.q.get("watch") in ("1", "true", "True"):
                    return self._watch(rt, ns)
                CFG.stats.count("list", rt.qualified, self.headers.get("User-Agent", "-"))
                return self._send_list(ops)
            if m == "POST":
                obj = self._body_obj(self.body)
                code, out = ops.create(obj)
                return self._send(code, out)
            if m == "DELETE":
                return self._send(200, ops.delete_collection())
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if m in ("GET", "HEAD"):
            return self._send(200, ops.get(name))
        if m == "PUT":
            return self._send(*ops.update(name, self._body_obj(self.body), sub))
        if m == "PATCH":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            return self._send(*ops.patch(name, ctype, self.body, sub))
        if m == "DELETE":
            opts = self._body_obj(self.body) if self.body.strip() else {}
            return self._send(200, ops.delete(name, opts or {}))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- watch

    def _send_list(self, ops):
        """A list answer. A large one (an unpaged list of 100 000 pods) is
        written in chunks as it is serialized: built whole it was the items'
        copies, their text and its bytes at once (185 MiB at 100 000 pods)."""
        lst, objs = ops.list(lazy=True)
        if len(objs) <= LIST_STREAM_MIN or self.command == "HEAD":
            lst["items"] = [ops.list_item(o) for o in objs]
            return self._send(200, lst)
        head = json.dumps(lst, separators=(",", ":"))
        assert head.endswith('"items":[]}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self._chunk(head[:-2].encode())
        for at in range(0, len(objs), LIST_STREAM_MIN):
            part = ",".join(json.dumps(ops.list_item(o), separators=(",", ":"))
                            for o in objs[at:at + LIST_STREAM_MIN])
            self._chunk(((","if at else "") + part).encode())
        self._chunk(b"]}\n")
        self._end_chunks()
        self._log(200)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            self.connection.setblocking(False)
            try:
                return self.connection.recv(1) == b"" or True
            except (ssl.SSLWantReadError, BlockingIOError):
                return False
            finally:
                self.connection.setblocking(True)
                self.connection.settimeout(self.timeout)
        except (OSError, ValueError):
            return True

    def _watch(self, rt, ns):
        store = CFG.store
        q = self.q
        ua = self.headers.get("User-Agent", "-")
        CFG.stats.count("watch", rt.qualified, ua)
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(q.get("fieldSelector", ""), rt)
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds {q['timeoutSeconds']!r}")
        if timeout <= 0:
            timeout = CFG.watch_timeout
        deadline = time.monotonic() + timeout
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true", "True")
        initial_events = q.get("sendInitialEvents") in ("1", "true", "True")
        rv_param = q.get("resourceVersion", "")

        def matches(obj):
            if obj is None:
                return False
            m = obj["metadata"]
            if ns is not None and m.get("namespace") != ns:
                return False
            return labels_match(lsel, m.get("labels")) and fields_match(fsel, obj)

        def ext(obj):
            return with_type(rt, obj)

        expired = None
        with store.lock:
            if rv_param in ("", "0") or initial_events:
                initial = [ext(o) for o in store.items(rt.key) if matches(o)]
                last = store.rv
            else:
                try:
                    last = int(rv_param)
                except ValueError:
                    raise bad_request(f'invalid resource version: "{rv_param}"')
                initial = []
                if last < store.oldest:
                    expired = last, store.oldest
            wid = object()
            store.watchers[wid] = {"resource": rt.qualified, "userAgent": ua,
                                   "namespace": ns or "", "since": last}
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            self._log(200, " watch")

            def send(etype, obj):
                self._chunk((json.dumps({"type": etype, "object": obj},
                                        separators=(",", ":")) + "\n").encode())

            def expire(last, oldest):
                send("ERROR", status_obj(410, "Expired",
                                         f"too old resource version: {last} ({oldest})"))

            if expired:
                expire(*expired)
                return self._end_chunks()
            for o in initial:
                send("ADDED", o)

            def bookmark(rv, end=False):
                md = {"resourceVersion": str(rv)}
                if end:
                    md["annotations"] = {"k8s.io/initial-events-end": "true"}
                send("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.gv, "metadata": md})

            if initial_events and bookmarks:
                bookmark(last, True)
            interval = CFG.bookmark_interval
            next_bm = time.monotonic() + interval
            while True:
                out = []
                bm = False
                with store.cond:
                    while True:
                        if store.watchers[wid].get("drop"):
                            return self._abort()
                        now = time.monotonic()
                        if now >= deadline:
                            break
                        if last < store.oldest:
                            expired = last, store.oldest
                            break
                        if store.rv > last:
                            evs = store.events_after(last)
                            last = store.rv
                            out = evs
                            break
                        if bookmarks and now >= next_bm:
                            bm = True
                            break
                        wake = min(deadline, next_bm if bookmarks else deadline, now + 1.0)
                        store.cond.wait(max(wake - now, 0.01))
                        if self._client_gone():
                            return self._abort()
                    store.watchers[wid]["since"] = last
                if expired:
                    expire(*expired)
                    break
                if time.monotonic() >= deadline and not out and not bm:
                    break
                for ev in out:
                    if (ev["g"], ev["r"]) != rt.key:
                        continue
                    was, now_ = matches(ev["prev"]), matches(ev["obj"])
                    t = ev["type"]
                    if t == "DELETED":
                        if was:
                            send("DELETED", ext(ev["obj"]))
                    elif was and now_:
                        send("MODIFIED", ext(ev["obj"]))
                    elif now_:
                        send("ADDED", ext(ev["obj"]))
                    elif was:
                        send("DELETED", ext(ev["obj"]))
                if bm:
                    bookmark(last)
                    next_bm = time.monotonic() + interval
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            self.close_connection = True
        finally:
            with store.lock:
                store.watchers.pop(wid, None)

    def _end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self):
        """Close the connection mid-stream, no terminating chunk."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- /_test

    def _test_endpoint(self):
        store = CFG.store
        p = self.parts[1:]
        q = self.q
        m = self.command
        if p == ["stats"] and m == "GET":
            with CFG.stats.lock, store.lock:
                out = {"resourceVersion": str(store.rv), "oldestResourceVersion": str(store.oldest),
                       "historyLength": len(store.history), "requests": CFG.stats.requests,
                       "lists": dict(CFG.stats.lists), "watches": dict(CFG.stats.watches),
                       "byUserAgent": copy.deepcopy(CFG.stats.by_ua),
                       "byCode": dict(CFG.stats.by_code),
                       "activeWatches": [dict(w) for w in store.watchers.values()]}
            return self._send(200, out)
        if m != "POST":
            raise ApiError(405, "MethodNotAllowed", "use POST")
        if p == ["reset-stats"]:
            with CFG.stats.lock:
                CFG.stats.reset()
            return self._send(200, {"ok": True})
        if p == ["compact"]:
            with store.lock:
                upto = int(q.get("resourceVersion") or store.rv)
                upto = min(max(upto, store.oldest), store.rv)
                keep = store.events_after(upto)
                if store.history_json:
                    store.history_json = store.history_json[len(store.history) - len(keep):]
                store.history = list(keep)
                store.oldest = upto
                store.commit()
                out = {"oldestResourceVersion": str(store.oldest),
                       "resourceVersion": str(store.rv)}
            return self._send(200, out)
        if p == ["drop-watches"]:
            want = q.get("resource")
            with store.lock:
                n = 0
                for w in store.watchers.values():
                    if not want or w["resource"] == want:
                        w["drop"] = True
                        n += 1
                store.cond.notify_all()
            return self._send(200, {"dropped": n})
        if p == ["relabel"]:
            # A rollout's burst: COUNT label changes of one Pod, each its
            # own MODIFIED event, INTERVAL ms apart (0: all at once); KEY is
            # VALUE at the end, VALUE-i before.
            rt = store.resources[("", "v1", "pods")]
            key, value = q.get("key") or "burst", q.get("value") or "done"
            count = int(q.get("count") or 1)
            interval = int(q.get("interval") or 0) / 1000
            for i in range(count):
                with store.lock:
                    cur = store.get(rt, q.get("namespace"), q.get("name"))
                    if cur is None:
                        raise not_found(rt, q.get("name"))
                    new = copy.deepcopy(cur)
                    labels = new["metadata"].setdefault("labels", {})
                    labels[key] = value if i == count - 1 else f"{value}-{i}"
                    store.put(rt, new, cur)
                    if interval or i == count - 1:
                        store.commit()
                if interval:
                    time.sleep(interval)
            return self._send(200, {"events": count, "resourceVersion": str(store.rv)})
        if p == ["delay"]:
            with CFG.fault_lock:
                CFG.delay_ms = int(q.get("ms") or 0)
            return self._send(200, {"ms": CFG.delay_ms})
        if p == ["fail"]:
            with CFG.fault_lock:
                CFG.fail_status = int(q.get("status") or 500)
                CFG.fail_count = int(q.get("count") or 1)
                CFG.fail_match = q.get("match") or None
            return self._send(200, {"status": CFG.fail_status, "count": CFG.fail_count})
        raise self._nf()


# ---------------------------------------------------------------- operations

def with_type(rt, obj):
    """The object as served: apiVersion and kind of the requested version first."""
    o = {"apiVersion": rt.gv, "kind": rt.kind}
    o.update((k, v) for k, v in obj.items() if k not in ("apiVersion", "kind"))
    return o


class Ops:
    """The verbs on one resource (and namespace), as the API server runs them."""

    def __init__(self, rt, ns, q, user):
        self.rt = rt
        self.ns = ns
        self.q = q or {}
        self.user = user
        self.store = CFG.store
        self.dry = "All" in (self.q.get("dryRun") or "")
        self.writable_status = CFG.writable_status

    # -- helpers

    def ext(self, obj):
        return with_type(self.rt, obj)

    def _check_type(self, obj):
        rt = self.rt
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was in an unknown format")
        kind = obj.get("kind")
        av = obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected "
                              f"kind ({rt.kind})")
        if av and av != rt.gv:
            raise bad_request(f"the API version in the data ({av}) does not match the expected "
                              f"API version ({rt.gv})")
        obj["apiVersion"] = rt.gv
        obj["kind"] = rt.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}

    def _check_ns(self, obj):
        m = obj["metadata"]
        if self.rt.namespaced:
            if m.get("namespace") and m["namespace"] != self.ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            m["namespace"] = self.ns
        else:
            m.pop("namespace", None)

    def _custom(self, obj, errs):
        """Prune, default and validate a custom resource (or check strict
        field validation)."""
        rt = self.rt
        if rt.schema is None:
            return
        fv = (self.q.get("fieldValidation") or "").lower()
        unknown = crdschema.unknown_fields(rt.schema, obj)
        if unknown and fv == "strict":
            fields = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                              f"{rt.kind}: strict decoding error: {fields}")
        self.warnings = [f'unknown field "{u}"' for u in unknown] if fv == "warn" else []
        crdschema.prune(rt.schema, obj)
        crdschema.apply_defaults(rt.schema, obj)
        errs.extend(crdschema.validate_errors(rt.schema, obj, strict=False))

    def _defaults(self, obj, old):
        """What the real server's defaulting and strategies add."""
        rt = self.rt
        kind = rt.kind if not rt.crd else None
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
        if kind == "Namespace":
            meta(obj).setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            if old is None:
                obj["status"] = {"phase": "Active"}
        elif kind == "Pod" and spec is not None:
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("enableServiceLinks", True)
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                if not isinstance(c, dict):
                    continue
                for p in c.get("ports") or []:
                    if isinstance(p, dict):
                        p.setdefault("protocol", "TCP")
                img = c.get("image") or ""
                c.setdefault("imagePullPolicy",
                             "Always" if img.endswith(":latest") or ":" not in img.rsplit("/", 1)[-1]
                             else "IfNotPresent")
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
            if old is None and not self.writable_status:
                obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif kind == "NetworkPolicy" and spec is not None:
            if not spec.get("policyTypes"):
                spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
            for d, peer in (("ingress", "from"), ("egress", "to")):
                for r in spec.get(d) or []:
                    for p in (r.get("ports") or []) if isinstance(r, dict) else []:
                        if isinstance(p, dict):
                            p.setdefault("protocol", "TCP")
        elif kind == "Service" and spec is not None:
            self._service_defaults(spec, old)
        elif kind == "CustomResourceDefinition" and spec is not None:
            for v in spec.get("versions") or []:
                v.setdefault("served", True)
            spec.setdefault("conversion", {"strategy": "None"})

    def _service_defaults(self, spec, old):
        store = self.store
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        oldspec = (old or {}).get("spec") or {}
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                if oldspec.get("clusterIP"):
                    spec["clusterIP"] = oldspec["clusterIP"]
                else:
                    net = ipaddress.ip_network(CFG.service_cidr)
                    while True:
                        ip = net[store.next_svc_ip]
                        store.next_svc_ip += 1
                        if ip not in (net.network_address, net.broadcast_address):
                            break
                    spec["clusterIP"] = str(ip)
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            if not isinstance(p, dict):
                continue
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
            if p.get("nodePort"):
                store.used_node_ports.add(p["nodePort"])
            elif spec["type"] in ("NodePort", "LoadBalancer"):
                oldp = next((o for o in oldspec.get("ports") or []
                             if o.get("port") == p.get("port") and o.get("nodePort")), None)
                if oldp:
                    p["nodePort"] = oldp["nodePort"]
                else:
                    for np in range(30000, 32768):
                        if np not in store.used_node_ports:
                            store.used_node_ports.add(np)
                            p["nodePort"] = np
                            break

    def _finish(self, obj, old, sub):
        """Common to create and update: status rules, defaults, validation,
        generation, storing. Caller holds the lock."""
        rt = self.rt
        m = obj["metadata"]
        name = m.get("name")
        if old is not None:
            om = old["metadata"]
            for k in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                if k in om:
                    m[k] = om[k]
                else:
                    m.pop(k, None)
            if sub == "status":
                new = copy.deepcopy(old)
                new["status"] = obj.get("status")
                if new["status"] is None:
                    new.pop("status")
                obj = new
                m = obj["metadata"]
            elif rt.status and not self.writable_status:
                if "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
                else:
                    obj.pop("status", None)
        else:
            if rt.status and not self.writable_status and rt.kind != "Node":
                obj.pop("status", None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = now_rfc3339()
        for k in ("selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"):
            m.pop(k, None)
        self._defaults(obj, old)
        errs = []
        if rt.crd:
            self._custom(obj, errs)
        if rt.key == CRD_KEY:
            errs.extend(validate_crd(obj))
            if old is not None:
                for path in (("group",), ("names", "plural"), ("scope",)):
                    a, b = obj.get("spec") or {}, old["spec"]
                    for k in path:
                        a = (a or {}).get(k)
                        b = (b or {}).get(k)
                    if a != b:
                        f = "spec." + ".".join(path)
                        errs.append(_fe(f, "FieldValueInvalid",
                                        f"Invalid value: {json.dumps(a)}: field is immutable"))
        errs = validate_meta(rt, obj) + errs
        if errs:
            raise invalid(rt, name, errs)
        if rt.key == CRD_KEY:
            self.store.crd_accepted(obj, old)
        if rt.generation:
            if old is None:
                m["generation"] = 1
            else:
                def body(o):
                    return {k: v for k, v in o.items()
                            if k not in ("metadata", "status", "apiVersion", "kind")}
                m["generation"] = int(old["metadata"].get("generation") or 1) + \
                    (1 if body(obj) != body(old) else 0)
        if rt.crd:
            obj["apiVersion"] = f"{rt.group}/{rt.storage_version}"
        if old is not None and self._same(obj, old):
            return old, False
        if self.dry:
            m["resourceVersion"] = old["metadata"]["resourceVersion"] if old else ""
            return obj, False
        self.store.put(rt, obj, old)
        return obj, True

    @staticmethod
    def _same(a, b):
        def strip(o):
            o = dict(o)
            o["metadata"] = {k: v for k, v in o["metadata"].items()
                             if k not in ("resourceVersion", "managedFields")}
            return o
        return strip(a) == strip(b)

    # -- verbs

    def get(self, name):
        with self.store.lock:
            obj = self.store.get(self.rt, self.ns, name)
        if obj is None:
            raise not_found(self.rt, name)
        return self.ext(obj)

    def list(self, lazy=False):
        """The list the query asks for; lazy: (the list without its items,
        the stored objects to give as items with list_item)."""
        rt, q, store = self.rt, self.q, self.store
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(q.get("fieldSelector", ""), rt)
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise bad_request(f"invalid limit {q.get('limit')!r}")
        cont = q.get("continue") or ""
        rvp = q.get("resourceVersion") or ""
        match = q.get("resourceVersionMatch") or ""
        start = None
        with store.cond:
            if cont:
                try:
                    tok = json.loads(base64.b64decode(cont))
                    at = int(tok["rv"])
                    start = tok["start"]
                except (ValueError, KeyError, TypeError):
                    raise bad_request("continue key is not valid: invalid continue token")
                snap = store.snapshot(rt.key, at)
                if snap is None:
                    raise ApiError(410, "Expired",
                                   "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without "
                                   "the continue parameter.")
            else:
                at = store.rv
                if rvp and rvp != "0":
                    try:
                        want = int(rvp)
                    except ValueError:
                        raise bad_request(f'invalid resource version: "{rvp}"')
                    if match == "Exact":
                        if want > store.rv:
                            raise self._too_large(want)
                        at = want
                    else:
                        end = time.monotonic() + 3
                        while store.rv < want and time.monotonic() < end:
                            store.cond.wait(end - time.monotonic())
                        if store.rv < want:
                            raise self._too_large(want)
                        at = store.rv
                snap = store.snapshot(rt.key, at)
                if snap is None:
                    raise ApiError(410, "Expired", f"too old resource version: {at} ({store.oldest})")
            # The page is picked under the lock (snap reads the live
            # objects); the objects themselves are never changed once
            # stored, so they are serialized after it.
            keys = store.sorted_keys(rt.key, at, snap)
            first = 0 if start is None else bisect.bisect_right(keys, tuple(start))
            items = []
            i = first
            for i in range(first, len(keys)):
                k = keys[i]
                if self.ns is not None and k[0] != self.ns:
                    continue
                o = snap.get(k)
                if not labels_match(lsel, o["metadata"].get("labels")) or \
                        not fields_match(fsel, o):
                    continue
                items.append((k, o))
                if limit > 0 and len(items) > limit:
                    # a page: the rest is counted, not filtered and copied
                    break
        md = {"resourceVersion": str(at)}
        if limit > 0 and len(items) > limit:
            items = items[:limit]
            rest = len(keys) - i if self.ns is None else \
                sum(1 for j in range(i, len(keys)) if keys[j][0] == self.ns)
            tok = {"v": "meta.k8s.io/v1", "rv": at, "start": list(items[-1][0])}
            md["continue"] = base64.b64encode(json.dumps(tok).encode()).decode()
            if not lsel and not fsel:
                md["remainingItemCount"] = rest
        kind = getattr(rt, "list_kind", None) or rt.kind + "List"
        out = {"kind": kind, "apiVersion": rt.gv, "metadata": md, "items": []}
        if lazy:
            return out, [o for _, o in items]
        out["items"] = [self.list_item(o) for _, o in items]
        return out

    def list_item(self, o):
        """A stored object as an item of a list (no kind, as the real server)."""
        if self.rt.crd:
            return self.ext(o)
        return {k: v for k, v in o.items() if k not in ("apiVersion", "kind")}

    def _too_large(self, want):
        return ApiError(504, "Timeout", f"Too large resource version: {want}, current: {self.store.rv}",
                        {"causes": [{"reason": "ResourceVersionTooLarge",
                                     "message": "Too large resource version"}],
                         "retryAfterSeconds": 1})

    def create(self, obj, lock=True):
        rt, store = self.rt, self.store
        self._check_type(obj)
        obj = copy.deepcopy(obj)
        m = obj["metadata"]
        self._check_ns(obj)
        if not m.get("name"):
            if m.get("generateName"):
                m["name"] = m["generateName"] + "".join(
                    random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            else:
                raise invalid(rt, "", [_fe("metadata.name", "FieldValueRequired",
                                           "Required value: name or generateName is required")])
        for k in ("resourceVersion", "uid", "creationTimestamp", "generation"):
            m.pop(k, None)
        with store.lock:
            if rt.namespaced and not store.get(self._ns_rt(), None, self.ns):
                raise ApiError(404, "NotFound", f'namespaces "{self.ns}" not found',
                               {"name": self.ns, "kind": "namespaces"})
            if store.get(rt, self.ns, m["name"]) is not None:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{m["name"]}" already exists',
                               _details(rt, m["name"]))
            out, changed = self._finish(obj, None, None)
            if changed:
                store.commit()
        return 201, self.ext(out)

    def _ns_rt(self):
        return self.store.resource("", "v1", "namespaces")

    def update(self, name, obj, sub=None, patched=False):
        rt, store = self.rt, self.store
        self._check_type(obj)
        obj = copy.deepcopy(obj)
        m = obj["metadata"]
        self._check_ns(obj)
        if m.get("name") and m["name"] != name:
            raise bad_request(f"the name of the object ({m['name']}) does not match the name on "
                              f"the URL ({name})")
        m["name"] = name
        with store.lock:
            old = store.get(rt, self.ns, name)
            if old is None:
                raise not_found(rt, name)
            om = old["metadata"]
            if m.get("resourceVersion") and m["resourceVersion"] != om["resourceVersion"]:
                raise conflict(rt, name)
            if m.get("uid") and m["uid"] != om["uid"]:
                raise conflict(rt, name, f"Precondition failed: UID in precondition: {m['uid']}, "
                                         f"UID in object meta: {om['uid']}")
            out, changed = self._finish(obj, old, sub)
            if changed:
                store.commit()
        return 200, self.ext(out)

    def patch(self, name, ctype, body, sub):
        rt, store = self.rt, self.store
        if ctype == "application/strategic-merge-patch+json" and rt.crd:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media "
                           "types include: application/json-patch+json, "
                           "application/merge-patch+json, application/apply-patch+yaml")
        kinds = ("application/json-patch+json", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/apply-patch+yaml")
        if ctype not in kinds:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: {', '.join(kinds[:4])}")
        apply = ctype == "application/apply-patch+yaml"
        if apply and not self.q.get("fieldManager"):
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        try:
            patch = yaml.safe_load(body.decode() or "null") if apply else json.loads(body.decode())
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"error decoding patch: {e}")
        keys = {} if rt.crd else MERGE_KEYS.get(rt.kind, {})
        keys = {**_META_KEYS, **keys}
        if rt.crd and rt.schema:
            keys.update(_list_map_keys(rt.schema))
        # Retry on a concurrent write: the patch applies to the latest object.
        for _ in range(5):
            with store.lock:
                cur = store.get(rt, self.ns, name)
                if cur is None and apply:
                    if not isinstance(patch, dict):
                        raise bad_request("apply patch must be an object")
                    self._check_type(patch)
                    pm = patch["metadata"]
                    if pm.get("name") and pm["name"] != name:
                        raise bad_request("the name of the object does not match the name on the URL")
                    pm["name"] = name
                    obj = server_side_apply(None, patch, self.q["fieldManager"], keys, rt.gv)
                    return self.create(obj)
                if cur is None:
                    raise not_found(rt, name)
                cur = self.ext(cur)
                cur_rv = cur["metadata"]["resourceVersion"]
            try:
                if ctype == "application/json-patch+json":
                    new = json_patch(cur, patch)
                elif ctype == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("merge patch must be a JSON object")
                    new = merge_patch(cur, patch)
                elif ctype == "application/strategic-merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("strategic merge patch must be a JSON object")
                    new = strategic_merge(cur, patch, keys)
                else:
                    if not isinstance(patch, dict):
                        raise ValueError("apply patch must be an object")
                    self._check_type(patch)
                    new = server_side_apply(cur, patch, self.q["fieldManager"], keys, rt.gv)
            except ValueError as e:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an "
                                               f"error in our request: {e}")
            if not isinstance(new, dict):
                raise bad_request("patch produced a non-object")
            nm = meta(new)
            if nm.get("resourceVersion", cur_rv) != cur_rv:
                raise conflict(rt, name)
            nm["resourceVersion"] = cur_rv
            try:
                return self.update(name, new, sub, patched=True)
            except ApiError as e:
                if e.code == 409 and e.reason == "Conflict":
                    with store.lock:
                        again = store.get(rt, self.ns, name)
                        if again is not None and again["metadata"]["resourceVersion"] != cur_rv:
                            continue
                raise
        raise conflict(rt, name)

    def delete(self, name, opts, lock=True):
        rt, store = self.rt, self.store
        if not isinstance(opts, dict):
            raise bad_request("invalid DeleteOptions")
        pre = opts.get("preconditions") or {}
        with store.lock:
            old = store.get(rt, self.ns, name)
            if old is None:
                raise not_found(rt, name)
            om = old["metadata"]
            if pre.get("uid") and pre["uid"] != om["uid"]:
                raise conflict(rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                         f"UID in object meta: {om['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != om["resourceVersion"]:
                raise conflict(rt, name, "Precondition failed: ResourceVersion in precondition: "
                                         f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                         f"{om['resourceVersion']}")
            if rt.key == NS_KEY and name in ("default", "kube-system", "kube-public"):
                raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this '
                                                 f"namespace may not be deleted",
                               {"name": name, "kind": "namespaces"})
            if self.dry:
                return self.ext(old)
            self._cascade(old)
            store.remove(rt, old)
            if rt.key == CRD_KEY:
                store._unregister_crd(name)
            store.commit()
        return self.ext(old)

    def _cascade(self, obj):
        """Deleting a namespace deletes what is in it; deleting a CRD deletes
        its custom resources."""
        store = self.store
        rt = self.rt
        if rt.key == NS_KEY:
            ns = obj["metadata"]["name"]
            for key in sorted(store.objects):
                r = next((x for x in store.resources.values() if x.key == key), None)
                if r is None or not r.namespaced:
                    continue
                for o in store.items(key):
                    if o["metadata"].get("namespace") == ns:
                        store.remove(r, o)
        elif rt.key == CRD_KEY:
            spec = obj.get("spec") or {}
            key = (spec.get("group"), (spec.get("names") or {}).get("plural"))
            r = next((x for x in store.resources.values() if x.key == key), None)
            if r is not None:
                for o in store.items(key):
                    store.remove(r, o)
            store.objects.pop(key, None)

    def delete_collection(self):
        lst = self.list()
        out = []
        for o in lst["items"]:
            m = o["metadata"]
            ops = Ops(self.rt, m.get("namespace") if self.rt.namespaced else None, self.q, self.user)
            try:
                out.append(ops.delete(m["name"], {}))
            except ApiError as e:
                if e.code != 404:
                    raise
        lst["items"] = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
                        if not self.rt.crd else o for o in out]
        with self.store.lock:
            lst["metadata"] = {"resourceVersion": str(self.store.rv)}
        return lst


def openapi_gv(store, group, version):
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    paths = {}
    for (g, v, _r), rt in sorted(store.resources.items()):
        if (g, v) != (group, version):
            continue
        p = f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}" if rt.namespaced \
            else f"{base}/{rt.plural}/{{name}}"
        params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for n in ("dryRun", "fieldManager", "fieldValidation", "force")]
        paths[p] = {"patch": {
            "description": f"partially update the specified {rt.kind}",
            "operationId": f"patch{rt.kind}",
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": rt.kind}}}
    return {"openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def _list_map_keys(sch, path=(), out=None):
    """Merge keys for server-side apply of custom resources: lists with
    x-kubernetes-list-type map."""
    if out is None:
        out = {}
    if not isinstance(sch, dict):
        return out
    if sch.get("x-kubernetes-list-type") == "map" and sch.get("x-kubernetes-list-map-keys"):
        out[path] = sch["x-kubernetes-list-map-keys"][0]
    elif sch.get("x-kubernetes-list-type") == "set":
        out[path] = PRIMITIVE
    for k, v in (sch.get("properties") or {}).items():
        _list_map_keys(v, path + (k,), out)
    if isinstance(sch.get("items"), dict):
        _list_map_keys(sch["items"], path + ("*",) if path else path, out)
    return out


# ---------------------------------------------------------------- main

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, ctx):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.ctx = ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"TLS handshake with {client_address[0]}:{client_address[1]} failed: {e}")
            try:
                request.close()
            except OSError:
                pass
            return
        conn.settimeout(Handler.timeout)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass


def load_yaml_docs(path):
    with open(path) as f:
        if path.endswith(".json"):
            # JSON is YAML, but PyYAML takes minutes over a generated
            # cluster of 100 000 pods; json takes seconds
            docs = [json.load(f)]
        else:
            docs = [d for d in yaml.safe_load_all(f) if d]
    out = []
    for d in docs:
        if d.get("kind") == "List" or (d.get("kind", "").endswith("List") and "items" in d):
            out.extend(d.get("items") or [])
        else:
            out.append(d)
    return out


def preload(path, crds_only):
    """Create or update the objects of a YAML file at start (--crd, --load)."""
    store = CFG.store
    for obj in load_yaml_docs(path):
        if crds_only and obj.get("kind") != "CustomResourceDefinition":
            raise SystemExit(f"{path}: {obj.get('kind')} is not a CustomResourceDefinition")
        av = obj.get("apiVersion") or ""
        group, _, version = av.rpartition("/")
        with store.lock:
            rt = next((r for r in store.resources.values()
                       if r.group == group and r.version == version and r.kind == obj.get("kind")),
                      None)
        if rt is None:
            raise SystemExit(f"{path}: no resource for {av} {obj.get('kind')}")
        m = obj.get("metadata") or {}
        ns = (m.get("namespace") or "default") if rt.namespaced else None
        ops = Ops(rt, ns, {}, "preload")
        ops.writable_status = True
        try:
            with store.lock:
                if store.get(rt, ns, m.get("name")) is None:
                    ops.create(obj)
                else:
                    ops.update(m["name"], obj)
        except ApiError as e:
            raise SystemExit(f"{path}: {rt.kind} {m.get('name')}: {e.message}")


def main():
    ap = argparse.ArgumentParser(description="Kubernetes API server for sluice tests")
    ap.add_argument("--listen", default="127.0.0.1:0", help="ADDR:PORT (default 127.0.0.1:0)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server key (PEM)")
    ap.add_argument("--client-ca", "--ca", dest="client_ca",
                    help="accept client certificates signed by this CA")
    ap.add_argument("--token-file", help="bearer tokens, one a line (or token,user,...)")
    ap.add_argument("--crd", action="append", default=[], help="CRD YAML to load at start")
    ap.add_argument("--load", action="append", default=[], help="objects (YAML) to create at start")
    ap.add_argument("--state", help="persist everything to this file")
    ap.add_argument("--history", type=int, default=1000, help="watch events kept (default 1000)")
    ap.add_argument("--bookmark-interval", type=float, default=1.0,
                    help="seconds between BOOKMARK events (default 1)")
    ap.add_argument("--watch-timeout", type=float, default=1800,
                    help="watch length when the client gives no timeoutSeconds (default 1800)")
    ap.add_argument("--service-cidr", default="10.96.0.0/12")
    ap.add_argument("--writable-status", action="store_true",
                    help="let create/update of the main resource set status too")
    args = ap.parse_args()

    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if not host:
        ap.error("--listen needs ADDR:PORT")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    client_ca = args.client_ca
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL

    CFG.store = Store(args)
    CFG.tokens = Tokens(args.token_file)
    CFG.stats = Stats()
    CFG.fault_lock = threading.Lock()
    CFG.delay_ms = 0
    CFG.fail_count = 0
    CFG.fail_status = 500
    CFG.fail_match = None
    CFG.bookmark_interval = max(args.bookmark_interval, 0.05)
    CFG.watch_timeout = args.watch_timeout
    CFG.service_cidr = args.service_cidr
    CFG.writable_status = args.writable_status

    store = CFG.store
    if not store.loaded:
        nsrt = store.resource("", "v1", "namespaces")
        for n in DEFAULT_NAMESPACES:
            Ops(nsrt, None, {}, "init").create({"metadata": {"name": n}})
    for f in args.crd:
        preload(f, True)
    for f in args.load:
        preload(f, False)
    with store.lock:
        store.persist()

    srv = Server((host, int(port)), Handler, ctx)
    bound = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{bound}\n")
        os.replace(tmp, args.port_file)
    shown = f"[{host}]" if ":" in host else host
    log(f"listening on https://{shown}:{bound} (resourceVersion {store.rv})")
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
