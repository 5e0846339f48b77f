"""Shared loading for the infra tests: where the manifests are, and the facts they must agree on."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
KUBE_FILES = sorted((INFRA / "kuberay").glob("*.yaml")) + [INFRA / "mlflow" / "k8s.yaml"]
# Helm values, not a Kubernetes object.
HELM_VALUES = INFRA / "kuberay" / "operator-values.yaml"
K8S_MANIFESTS = [p for p in KUBE_FILES if p != HELM_VALUES]

RAY_VERSION = "2.60.0"
APP_DIR = "/home/ray/vitok"  # where infra/docker/Dockerfile puts the repository
MLFLOW_URI = "http://mlflow.vitok.svc.cluster.local:5000"


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_objects() -> list[tuple[Path, dict]]:
    return [(p, d) for p in K8S_MANIFESTS for d in load_docs(p)]


def objects_of_kind(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in all_objects() if d.get("kind") == kind]


def ray_job_specs() -> list[tuple[str, dict]]:
    """Every RayJob spec, including the jobTemplate of each RayCronJob, labelled by where it comes from."""
    out = [(f"{p.name}:RayJob", d["spec"]) for p, d in objects_of_kind("RayJob")]
    out += [(f"{p.name}:RayCronJob.jobTemplate", d["spec"]["jobTemplate"]) for p, d in objects_of_kind("RayCronJob")]
    return out


def ray_cluster_specs() -> list[tuple[str, dict]]:
    out = [(f"{p.name}:RayCluster", d["spec"]) for p, d in objects_of_kind("RayCluster")]
    out += [(f"{where}.rayClusterSpec", s["rayClusterSpec"]) for where, s in ray_job_specs() if "rayClusterSpec" in s]
    return out
