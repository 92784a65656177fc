#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Structural-schema handling for CustomResourceDefinition openAPIV3Schema,
the way the Kubernetes API server treats a custom resource on create and
update: unknown fields are found (strict field validation) or pruned, nulls of
non-nullable fields are dropped, defaults are applied, then values are
validated.

Library use (the test API server and other tests import this):

    import schema
    errs = schema.validate(crd_schema, obj)          # ["spec.mode: Unsupported value: ..."]
    errs = schema.validate(crd_schema, obj, strict=False)   # unknown fields are pruned, not errors
    schema.crd_schemas(crd)                           # {"v1alpha1": openAPIV3Schema, ...}

Command line:

    schema.py CRD.yaml OBJECT.yaml...   prints every error; exit 1 if any object is invalid

Supported keywords: type, properties, required, additionalProperties, items,
enum, pattern, format (ipv4, ipv6, cidr, uuid, hostname, date-time, byte),
minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minLength,
maxLength, minItems, maxItems, minProperties, maxProperties, nullable, default,
allOf, anyOf, oneOf, not, x-kubernetes-int-or-string,
x-kubernetes-preserve-unknown-fields, x-kubernetes-embedded-resource,
x-kubernetes-list-type (set, map) with x-kubernetes-list-map-keys.
Not supported: x-kubernetes-validations (CEL rules are ignored).
"""

import base64
import copy
import ipaddress
import json
import re
import sys
import uuid

__all__ = ["FieldError", "validate", "validate_errors", "unknown_fields",
           "prune", "apply_defaults", "crd_schemas", "schema_for"]


class FieldError:
    """One field error, as in a Status's details.causes."""
    __slots__ = ("field", "reason", "detail")

    def __init__(self, field, reason, detail):
        self.field = field
        self.reason = reason    # FieldValueInvalid, FieldValueRequired, ...
        self.detail = detail    # "Invalid value: 7: ..." (the cause message)

    def __str__(self):
        return f"{self.field}: {self.detail}" if self.field else self.detail

    __repr__ = __str__

    def cause(self):
        return {"reason": self.reason, "message": self.detail, "field": self.field}


def _is_int(v):
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and v.is_integer()


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _fmt(v):
    """A value the way Go's field errors print it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    return json.dumps(v, sort_keys=True, default=str)


def _type_ok(t, v):
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return _is_int(v)
    if t == "number":
        return _is_num(v)
    if t == "boolean":
        return isinstance(v, bool)
    return True


def _join(path, key):
    return f"{path}.{key}" if path else key


def _body(path):
    return f"{path} in body" if path else "in body"


def _check_format(fmt, v):
    if not isinstance(v, str):
        return True
    try:
        if fmt == "ipv4":
            ipaddress.IPv4Address(v)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(v)
        elif fmt == "cidr":
            if "/" not in v:
                return False
            ipaddress.ip_network(v, strict=False)
        elif fmt == "uuid":
            uuid.UUID(v)
        elif fmt == "byte":
            base64.b64decode(v, validate=True)
        elif fmt == "hostname":
            return re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
                                v) is not None and len(v) <= 253
        elif fmt == "date-time":
            return re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                                r"(Z|[+-]\d\d:\d\d)", v) is not None
    except ValueError:
        return False
    return True


def _invalid(errs, path, v, msg):
    errs.append(FieldError(path, "FieldValueInvalid",
                           f"Invalid value: {_fmt(v)}: {_body(path)} {msg}"))


def _validate(s, v, path, errs):
    if not isinstance(s, dict):
        return
    n0 = len(errs)
    t = s.get("type")
    if v is None:
        if s.get("nullable"):
            return
        if t or s.get("x-kubernetes-int-or-string"):
            want = t or "integer,string"
            _invalid(errs, path, "null", f"must be of type {want}: \"null\"")
        return
    if s.get("x-kubernetes-int-or-string"):
        if not (_is_int(v) or isinstance(v, str)):
            _invalid(errs, path, _type_name(v),
                     f"must be of type integer,string: \"{_type_name(v)}\"")
            return
    elif t and not _type_ok(t, v):
        _invalid(errs, path, _type_name(v),
                 f"must be of type {t}: \"{_type_name(v)}\"")
        return

    if "enum" in s and v not in s["enum"]:
        allowed = ", ".join(_fmt(e) for e in s["enum"])
        errs.append(FieldError(path, "FieldValueNotSupported",
                               f"Unsupported value: {_fmt(v)}: supported values: {allowed}"))

    if isinstance(v, str):
        n = len(v)
        if "maxLength" in s and n > s["maxLength"]:
            errs.append(FieldError(path, "FieldValueTooLong",
                                   f"Too long: may not be more than {s['maxLength']} bytes"))
        if "minLength" in s and n < s["minLength"]:
            _invalid(errs, path, v, f"should be at least {s['minLength']} chars long")
        if "pattern" in s:
            try:
                if re.search(s["pattern"], v) is None:
                    _invalid(errs, path, v, f"should match '{s['pattern']}'")
            except re.error:
                pass
        if "format" in s and not _check_format(s["format"], v):
            _invalid(errs, path, v, f"must be of type {s['format']}: {_fmt(v)}")

    if _is_num(v):
        if "maximum" in s:
            m = s["maximum"]
            if s.get("exclusiveMaximum") and v >= m:
                _invalid(errs, path, v, f"should be less than {_fmt(m)}")
            elif v > m:
                _invalid(errs, path, v, f"should be less than or equal to {_fmt(m)}")
        if "minimum" in s:
            m = s["minimum"]
            if s.get("exclusiveMinimum") and v <= m:
                _invalid(errs, path, v, f"should be greater than {_fmt(m)}")
            elif v < m:
                _invalid(errs, path, v, f"should be greater than or equal to {_fmt(m)}")
        if s.get("multipleOf"):
            q = v / s["multipleOf"]
            if not float(q).is_integer():
                _invalid(errs, path, v, f"should be a multiple of {_fmt(s['multipleOf'])}")

    if isinstance(v, list):
        if "maxItems" in s and len(v) > s["maxItems"]:
            errs.append(FieldError(path, "FieldValueTooMany",
                                   f"Too many: {len(v)}: must have at most {s['maxItems']} items"))
        if "minItems" in s and len(v) < s["minItems"]:
            _invalid(errs, path, len(v), f"should have at least {s['minItems']} items")
        lt = s.get("x-kubernetes-list-type")
        if lt == "set" or s.get("uniqueItems"):
            seen = []
            for i, e in enumerate(v):
                if e in seen:
                    errs.append(FieldError(f"{path}[{i}]", "FieldValueDuplicate",
                                           f"Duplicate value: {_fmt(e)}"))
                else:
                    seen.append(e)
        elif lt == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            seen = []
            for i, e in enumerate(v):
                if not isinstance(e, dict):
                    continue
                k = {key: e.get(key) for key in keys}
                if k in seen:
                    errs.append(FieldError(f"{path}[{i}]", "FieldValueDuplicate",
                                           f"Duplicate value: {_fmt(k)}"))
                else:
                    seen.append(k)
        items = s.get("items")
        if isinstance(items, dict):
            for i, e in enumerate(v):
                _validate(items, e, f"{path}[{i}]", errs)

    if isinstance(v, dict):
        for r in s.get("required") or []:
            if r not in v:
                errs.append(FieldError(_join(path, r), "FieldValueRequired", "Required value"))
        if "maxProperties" in s and len(v) > s["maxProperties"]:
            errs.append(FieldError(path, "FieldValueTooMany",
                                   f"Too many: {len(v)}: must have at most {s['maxProperties']} items"))
        if "minProperties" in s and len(v) < s["minProperties"]:
            _invalid(errs, path, len(v), f"should have at least {s['minProperties']} properties")
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k, sub in v.items():
            if k in props:
                _validate(props[k], sub, _join(path, k), errs)
            elif isinstance(addl, dict):
                _validate(addl, sub, _join(path, k), errs)

    # Value validations of the non-structural part. Only report them when the
    # structural part above found nothing, like the real server's order.
    if len(errs) != n0:
        return
    for sub in s.get("allOf") or []:
        _validate(sub, v, path, errs)
    if s.get("anyOf"):
        if not any(not _errs_of(sub, v, path) for sub in s["anyOf"]):
            _invalid(errs, path, v, "must validate at least one schema (anyOf)")
    if s.get("oneOf"):
        good = sum(1 for sub in s["oneOf"] if not _errs_of(sub, v, path))
        if good != 1:
            _invalid(errs, path, v, "must validate one and only one schema (oneOf)")
    if isinstance(s.get("not"), dict) and not _errs_of(s["not"], v, path):
        _invalid(errs, path, v, "shouldn't validate the schema (not)")


def _errs_of(s, v, path):
    e = []
    _validate(s, v, path, e)
    return e


def _walk_unknown(s, v, path, out, remove, root):
    """Find (and with remove, delete) fields the schema does not declare."""
    if not isinstance(s, dict):
        return
    if isinstance(v, dict):
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        keep_all = bool(s.get("x-kubernetes-preserve-unknown-fields")) or addl is True
        embedded = root or s.get("x-kubernetes-embedded-resource")
        for k in list(v):
            if embedded and k in ("apiVersion", "kind", "metadata") and k not in props:
                continue
            if embedded and k == "metadata":
                continue    # ObjectMeta: not the CRD's business
            if k in props:
                _walk_unknown(props[k], v[k], _join(path, k), out, remove, False)
            elif isinstance(addl, dict):
                _walk_unknown(addl, v[k], _join(path, k), out, remove, False)
            elif not keep_all:
                out.append(_join(path, k))
                if remove:
                    del v[k]
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, e in enumerate(v):
                _walk_unknown(items, e, f"{path}[{i}]", out, remove, False)


def unknown_fields(schema, obj):
    """Paths of fields in obj that the schema does not declare (what
    fieldValidation=Strict rejects)."""
    out = []
    _walk_unknown(schema, obj, "", out, False, True)
    return out


def prune(schema, obj):
    """Delete undeclared fields from obj in place, as the API server does;
    returns their paths."""
    out = []
    _walk_unknown(schema, obj, "", out, True, True)
    return out


def _child_schema(s, k):
    props = s.get("properties") or {}
    if k in props:
        return props[k]
    addl = s.get("additionalProperties")
    return addl if isinstance(addl, dict) else None


def apply_defaults(schema, obj):
    """Drop nulls of non-nullable fields (replaced by the default if there is
    one) and fill in defaults, in place. Returns obj."""
    s = schema
    if not isinstance(s, dict):
        return obj
    if isinstance(obj, dict):
        for k in list(obj):
            sub = _child_schema(s, k)
            if sub is None:
                continue
            if obj[k] is None and not sub.get("nullable"):
                if "default" in sub:
                    obj[k] = copy.deepcopy(sub["default"])
                else:
                    del obj[k]
                    continue
            apply_defaults(sub, obj[k])
        for k, sub in (s.get("properties") or {}).items():
            if k not in obj and isinstance(sub, dict) and "default" in sub:
                obj[k] = copy.deepcopy(sub["default"])
                apply_defaults(sub, obj[k])
    elif isinstance(obj, list):
        items = s.get("items")
        if isinstance(items, dict):
            for e in obj:
                apply_defaults(items, e)
    return obj


def validate_errors(schema, obj, strict=True):
    """FieldErrors for obj, after the API server's decoding steps (on a copy):
    with strict, undeclared fields are errors, else they are pruned; then
    defaults; then validation."""
    o = copy.deepcopy(obj)
    errs = []
    if strict:
        for p in unknown_fields(schema, o):
            errs.append(FieldError(p, "FieldValueInvalid", f'unknown field "{p}"'))
    prune(schema, o)
    apply_defaults(schema, o)
    _validate(schema, o, "", errs)
    return errs


def validate(schema, obj, strict=True):
    """Error strings such as 'spec.ingress[0].ports[0].port: Invalid value: ...';
    empty if obj is valid."""
    return [str(e) for e in validate_errors(schema, obj, strict)]


def crd_schemas(crd):
    """{version name: openAPIV3Schema} of a CustomResourceDefinition (v1)."""
    out = {}
    spec = crd.get("spec") or {}
    top = ((spec.get("validation") or {}).get("openAPIV3Schema"))   # v1beta1 style
    for v in spec.get("versions") or []:
        sch = ((v.get("schema") or {}).get("openAPIV3Schema")) or top
        out[v.get("name")] = sch or {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": True}
    return out


def schema_for(crds, obj):
    """The schema for obj (by apiVersion and kind) among a list of CRDs, or None."""
    group, _, version = (obj.get("apiVersion") or "").rpartition("/")
    for crd in crds:
        spec = crd.get("spec") or {}
        if spec.get("group") == group and (spec.get("names") or {}).get("kind") == obj.get("kind"):
            return crd_schemas(crd).get(version)
    return None


def _main(argv):
    import yaml
    if len(argv) < 3:
        print("usage: schema.py CRD.yaml OBJECT.yaml...", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        crds = [d for d in yaml.safe_load_all(f)
                if d and d.get("kind") == "CustomResourceDefinition"]
    bad = 0
    for fn in argv[2:]:
        with open(fn) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for d in docs:
            items = d.get("items", []) if d.get("kind") == "List" else [d]
            for o in items:
                sch = schema_for(crds, o)
                if sch is None:
                    continue
                name = (o.get("metadata") or {}).get("name", "?")
                for e in validate(sch, o):
                    print(f"{fn}: {o.get('kind')} {name}: {e}")
                    bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
