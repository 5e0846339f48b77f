"""A small structural checker for the Kubernetes manifests in infra/ (no cluster, no vendored CRDs).

Why not kubeconform: it is a Go binary that needs the KubeRay CRDs converted to JSON schema, and neither can
be fetched on these machines; the CRD files are not copied into this repository on purpose. Instead this
module writes down, from KubeRay's v1 API types (ray-operator/apis/ray/v1/{raycluster,rayjob,raycronjob}
_types.go, KubeRay 1.6) and the Kubernetes core/apps/batch/rbac v1 APIs, the part of each schema our
manifests touch:

* every object's fields, with their types; an unknown field is an error (a typo such as
  `shutdownAfterJobFinish` would otherwise be silently dropped by the API server's pruning);
* required fields (e.g. RayCronJob `schedule` + `jobTemplate`, worker group `groupName`, container `name`);
* enum values (e.g. `submissionMode` in K8sJobMode | HTTPMode | InteractiveMode | SidecarMode,
  `authOptions.mode` in disabled | token, `restartPolicy`, `concurrencyPolicy`);
* value formats: resource quantities, DNS-1123 names, 5-field cron schedules, `rayStartParams` values
  being strings (the CRD types them map[string]string).

Fields we do not use are simply not listed, so using a new one means adding it here first, with its type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def cron_errors(expr: str) -> list[str]:
    """Errors in a standard 5-field cron expression (minute hour day-of-month month day-of-week)."""
    fields = expr.split()
    if len(fields) != 5:
        return [f"cron '{expr}' has {len(fields)} fields, expected 5"]
    errors = []
    for text, (lo, hi) in zip(fields, _CRON_RANGES):
        if not _CRON_FIELD.match(text):
            errors.append(f"cron field '{text}' is malformed")
            continue
        for number in re.findall(r"(?<![/\d])\d+", text):
            if not lo <= int(number) <= hi:
                errors.append(f"cron field '{text}': {number} outside {lo}-{hi}")
    return errors


# --- schema nodes -----------------------------------------------------------------------------------------


@dataclass
class Str:
    enum: tuple[str, ...] | None = None
    pattern: re.Pattern | None = None
    max_len: int | None = None


@dataclass
class Int:
    minimum: int | None = None


@dataclass
class Num:
    minimum: float | None = None


@dataclass
class Bool:
    pass


@dataclass
class Quantity:
    """int-or-string resource quantity ("4", 170Gi, 50m, 4)."""


@dataclass
class Cron:
    pass


@dataclass
class Map:
    values: Any


@dataclass
class List:
    items: Any
    min_items: int = 0


@dataclass
class Obj:
    fields: dict[str, Any]
    required: tuple[str, ...] = ()
    open: bool = False  # True: unknown keys allowed (free-form maps such as annotations)


@dataclass
class AnyValue:
    pass


@dataclass
class Errors:
    items: list[str] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path or '<root>'}: {message}")


def check(value: Any, schema: Any, path: str = "", errors: Errors | None = None) -> list[str]:
    """All schema violations of `value` as 'path: message' strings (empty when it conforms)."""
    errors = errors if errors is not None else Errors()
    if isinstance(schema, AnyValue):
        pass
    elif isinstance(schema, Str):
        if not isinstance(value, str):
            errors.add(path, f"expected a string, got {type(value).__name__} {value!r}")
        else:
            if schema.enum is not None and value not in schema.enum:
                errors.add(path, f"{value!r} not one of {list(schema.enum)}")
            if schema.pattern is not None and not schema.pattern.match(value):
                errors.add(path, f"{value!r} does not match {schema.pattern.pattern}")
            if schema.max_len is not None and len(value) > schema.max_len:
                errors.add(path, f"{value!r} is longer than {schema.max_len}")
    elif isinstance(schema, Int):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.add(path, f"expected an integer, got {value!r}")
        elif schema.minimum is not None and value < schema.minimum:
            errors.add(path, f"{value} < {schema.minimum}")
    elif isinstance(schema, Num):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.add(path, f"expected a number, got {value!r}")
        elif schema.minimum is not None and value < schema.minimum:
            errors.add(path, f"{value} < {schema.minimum}")
    elif isinstance(schema, Bool):
        if not isinstance(value, bool):
            errors.add(path, f"expected true/false, got {value!r}")
    elif isinstance(schema, Quantity):
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not QUANTITY.match(str(value)):
            errors.add(path, f"{value!r} is not a resource quantity")
    elif isinstance(schema, Cron):
        if not isinstance(value, str):
            errors.add(path, f"expected a cron string, got {value!r}")
        else:
            for message in cron_errors(value):
                errors.add(path, message)
    elif isinstance(schema, Map):
        if not isinstance(value, dict):
            errors.add(path, f"expected a mapping, got {type(value).__name__}")
        else:
            for key, item in value.items():
                if not isinstance(key, str):
                    errors.add(path, f"key {key!r} is not a string")
                check(item, schema.values, f"{path}.{key}", errors)
    elif isinstance(schema, List):
        if not isinstance(value, list):
            errors.add(path, f"expected a list, got {type(value).__name__}")
        else:
            if len(value) < schema.min_items:
                errors.add(path, f"needs at least {schema.min_items} item(s)")
            for i, item in enumerate(value):
                check(item, schema.items, f"{path}[{i}]", errors)
    elif isinstance(schema, Obj):
        if not isinstance(value, dict):
            errors.add(path, f"expected an object, got {type(value).__name__}")
        else:
            for key in schema.required:
                if key not in value:
                    errors.add(path, f"missing required field '{key}'")
            for key, item in value.items():
                if key in schema.fields:
                    check(item, schema.fields[key], f"{path}.{key}" if path else key, errors)
                elif not schema.open:
                    errors.add(path, f"unknown field '{key}' (allowed: {sorted(schema.fields)})")
    else:  # pragma: no cover - a bug in the schema tables
        raise TypeError(f"unknown schema node {schema!r}")
    return errors.items


# --- Kubernetes core pieces -------------------------------------------------------------------------------

NAME = Str(pattern=DNS1123_LABEL, max_len=63)
STR_MAP = Map(Str())
METADATA = Obj(
    {"name": Str(pattern=DNS1123_SUBDOMAIN, max_len=253),
     "generateName": Str(pattern=re.compile(r"^[a-z0-9][-a-z0-9]*-$")), "namespace": NAME, "labels": STR_MAP, "annotations": STR_MAP},
)
TEMPLATE_METADATA = Obj({"labels": STR_MAP, "annotations": STR_MAP})
RESOURCES = Obj({"requests": Map(Quantity()), "limits": Map(Quantity())})
KEY_REF = Obj({"name": Str(), "key": Str(), "optional": Bool()}, required=("key",))
ENV_VAR = Obj(
    {"name": Str(), "value": Str(),
     "valueFrom": Obj({"secretKeyRef": KEY_REF, "configMapKeyRef": KEY_REF,
                       "fieldRef": Obj({"fieldPath": Str(), "apiVersion": Str()}, required=("fieldPath",))})},
    required=("name",),
)
ENV_FROM = Obj({"secretRef": Obj({"name": Str(), "optional": Bool()}),
                "configMapRef": Obj({"name": Str(), "optional": Bool()}), "prefix": Str()})
PORT = Obj({"containerPort": Int(minimum=1), "name": Str(pattern=re.compile(r"^[a-z0-9-]{1,15}$")),
            "protocol": Str(enum=("TCP", "UDP", "SCTP"))}, required=("containerPort",))
INT_OR_STR = AnyValue()
HTTP_GET = Obj({"path": Str(), "port": INT_OR_STR, "scheme": Str(enum=("HTTP", "HTTPS"))}, required=("port",))
PROBE = Obj({"httpGet": HTTP_GET, "exec": Obj({"command": List(Str())}),
             "initialDelaySeconds": Int(0), "periodSeconds": Int(1), "timeoutSeconds": Int(1),
             "failureThreshold": Int(1), "successThreshold": Int(1)})
CONTAINER = Obj(
    {"name": NAME, "image": Str(), "imagePullPolicy": Str(enum=("Always", "IfNotPresent", "Never")),
     "command": List(Str()), "args": List(Str()), "workingDir": Str(), "env": List(ENV_VAR),
     "envFrom": List(ENV_FROM), "ports": List(PORT), "resources": RESOURCES,
     "volumeMounts": List(Obj({"name": Str(), "mountPath": Str(), "readOnly": Bool(), "subPath": Str()},
                              required=("name", "mountPath"))),
     "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE,
     "securityContext": Obj({}, open=True)},
    required=("name",),
)
VOLUME = Obj(
    {"name": NAME,
     "persistentVolumeClaim": Obj({"claimName": Str(), "readOnly": Bool()}, required=("claimName",)),
     "emptyDir": Obj({"medium": Str(enum=("", "Memory")), "sizeLimit": Quantity()}),
     "configMap": Obj({"name": Str(), "items": List(Obj({"key": Str(), "path": Str()}, required=("key", "path"))),
                       "defaultMode": Int(0), "optional": Bool()}),
     "secret": Obj({"secretName": Str(), "items": List(AnyValue()), "defaultMode": Int(0), "optional": Bool()})},
    required=("name",),
)
TOLERATION = Obj({"key": Str(), "operator": Str(enum=("Exists", "Equal")), "value": Str(),
                  "effect": Str(enum=("NoSchedule", "PreferNoSchedule", "NoExecute")),
                  "tolerationSeconds": Int()})
POD_SPEC = Obj(
    {"containers": List(CONTAINER, min_items=1), "initContainers": List(CONTAINER), "volumes": List(VOLUME),
     "serviceAccountName": NAME, "restartPolicy": Str(enum=("Always", "OnFailure", "Never")),
     "nodeSelector": STR_MAP, "tolerations": List(TOLERATION), "affinity": Obj({}, open=True),
     "securityContext": Obj({}, open=True), "imagePullSecrets": List(Obj({"name": Str()})),
     "priorityClassName": Str(), "terminationGracePeriodSeconds": Int(0)},
    required=("containers",),
)
POD_TEMPLATE = Obj({"metadata": TEMPLATE_METADATA, "spec": POD_SPEC}, required=("spec",))

# --- KubeRay ray.io/v1 (KubeRay 1.6) ------------------------------------------------------------------------

HEAD_GROUP = Obj(
    {"rayStartParams": Map(Str()), "template": POD_TEMPLATE,
     "serviceType": Str(enum=("ClusterIP", "NodePort", "LoadBalancer")), "enableIngress": Bool(),
     "headService": Obj({}, open=True)},
    required=("template",),
)
WORKER_GROUP = Obj(
    {"groupName": NAME, "replicas": Int(0), "minReplicas": Int(0), "maxReplicas": Int(0),
     "numOfHosts": Int(1), "idleTimeoutSeconds": Int(0), "suspend": Bool(), "rayStartParams": Map(Str()),
     "template": POD_TEMPLATE, "scaleStrategy": Obj({"workersToDelete": List(Str())})},
    required=("groupName", "template"),
)
RAY_CLUSTER_SPEC = Obj(
    {"rayVersion": Str(pattern=re.compile(r"^\d+\.\d+\.\d+$")), "enableInTreeAutoscaling": Bool(),
     "autoscalerOptions": Obj({"upscalingMode": Str(enum=("Default", "Aggressive", "Conservative")),
                               "idleTimeoutSeconds": Int(0), "version": Str(enum=("v1", "v2")),
                               "image": Str(), "imagePullPolicy": Str(), "resources": RESOURCES,
                               "env": List(ENV_VAR), "envFrom": List(ENV_FROM)}),
     "authOptions": Obj({"mode": Str(enum=("disabled", "token"))}),
     "headGroupSpec": HEAD_GROUP, "workerGroupSpecs": List(WORKER_GROUP), "suspend": Bool(),
     "headServiceAnnotations": STR_MAP},
    required=("headGroupSpec",),
)
RAY_JOB_SPEC = Obj(
    {"entrypoint": Str(), "runtimeEnvYAML": Str(), "jobId": Str(), "metadata": STR_MAP,
     "submissionMode": Str(enum=("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")),
     "rayClusterSpec": RAY_CLUSTER_SPEC, "clusterSelector": STR_MAP,
     "shutdownAfterJobFinishes": Bool(), "ttlSecondsAfterFinished": Int(0), "activeDeadlineSeconds": Int(1),
     "backoffLimit": Int(0), "submitterPodTemplate": POD_TEMPLATE,
     "submitterConfig": Obj({"backoffLimit": Int(0)}), "suspend": Bool(),
     "entrypointNumCpus": Num(0), "entrypointNumGpus": Num(0), "entrypointResources": Str(),
     "managedBy": Str(enum=("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue"))},
)
RAY_CRON_JOB_SPEC = Obj({"schedule": Cron(), "jobTemplate": RAY_JOB_SPEC, "suspend": Bool()},
                        required=("schedule", "jobTemplate"))

# --- Kubernetes built-ins we use ----------------------------------------------------------------------------

LABEL_SELECTOR = Obj({"matchLabels": STR_MAP, "matchExpressions": List(AnyValue())})
JOB_SPEC = Obj({"template": POD_TEMPLATE, "backoffLimit": Int(0), "activeDeadlineSeconds": Int(1),
                "ttlSecondsAfterFinished": Int(0)}, required=("template",))
SCHEMAS: dict[tuple[str, str], Obj] = {
    ("ray.io/v1", "RayCluster"): RAY_CLUSTER_SPEC,
    ("ray.io/v1", "RayJob"): RAY_JOB_SPEC,
    ("ray.io/v1", "RayCronJob"): RAY_CRON_JOB_SPEC,
    ("apps/v1", "Deployment"): Obj({"replicas": Int(0), "selector": LABEL_SELECTOR, "template": POD_TEMPLATE,
                                    "strategy": Obj({}, open=True)}, required=("selector", "template")),
    ("v1", "Service"): Obj({"type": Str(enum=("ClusterIP", "NodePort", "LoadBalancer")), "selector": STR_MAP,
                            "ports": List(Obj({"name": Str(), "port": Int(1), "targetPort": INT_OR_STR,
                                               "protocol": Str(enum=("TCP", "UDP"))}, required=("port",)),
                                          min_items=1)}),
    ("batch/v1", "CronJob"): Obj({"schedule": Cron(), "timeZone": Str(), "suspend": Bool(),
                                  "concurrencyPolicy": Str(enum=("Allow", "Forbid", "Replace")),
                                  "startingDeadlineSeconds": Int(0), "successfulJobsHistoryLimit": Int(0),
                                  "failedJobsHistoryLimit": Int(0),
                                  "jobTemplate": Obj({"metadata": TEMPLATE_METADATA, "spec": JOB_SPEC},
                                                     required=("spec",))},
                                 required=("schedule", "jobTemplate")),
    ("v1", "PersistentVolumeClaim"): Obj({"accessModes": List(Str(enum=("ReadWriteOnce", "ReadOnlyMany",
                                                                        "ReadWriteMany", "ReadWriteOncePod")),
                                                              min_items=1),
                                          "storageClassName": Str(), "resources": RESOURCES}),
}
NO_SPEC_KINDS = {("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"),
                 ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("v1", "ConfigMap")}
RULE = Obj({"apiGroups": List(Str()), "resources": List(Str()), "verbs": List(Str(enum=(
    "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")))},
    required=("verbs",))
TOP_LEVEL_EXTRA = {
    ("rbac.authorization.k8s.io/v1", "Role"): {"rules": List(RULE)},
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): {
        "roleRef": Obj({"apiGroup": Str(), "kind": Str(enum=("Role", "ClusterRole")), "name": Str()},
                       required=("apiGroup", "kind", "name")),
        "subjects": List(Obj({"kind": Str(enum=("ServiceAccount", "User", "Group")), "name": Str(),
                              "namespace": Str(), "apiGroup": Str()}, required=("kind", "name")))},
    ("v1", "ConfigMap"): {"data": STR_MAP},
    ("v1", "ServiceAccount"): {},
}


def check_object(doc: dict) -> list[str]:
    """Structural errors of one Kubernetes object (apiVersion/kind/metadata/spec and the spec's schema)."""
    if not isinstance(doc, dict):
        return ["<root>: a manifest document must be a mapping"]
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in SCHEMAS:
        top = Obj({"apiVersion": Str(), "kind": Str(), "metadata": METADATA, "spec": SCHEMAS[key]},
                  required=("apiVersion", "kind", "metadata", "spec"))
    elif key in NO_SPEC_KINDS:
        top = Obj({"apiVersion": Str(), "kind": Str(), "metadata": METADATA, **TOP_LEVEL_EXTRA[key]},
                  required=("apiVersion", "kind", "metadata"))
    else:
        return [f"<root>: no schema for apiVersion/kind {key} (add one to tests/infra/k8s_structure.py)"]
    errors = check(doc, top)
    meta = doc.get("metadata") or {}
    if "name" not in meta and "generateName" not in meta:
        errors.append("metadata: needs name or generateName")
    return errors
