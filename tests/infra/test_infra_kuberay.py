"""KubeRay and Kubernetes manifests: parsed, structurally validated, and consistent with each other.

Validation is structural (tests/infra/k8s_structure.py): the fields, types, required keys and enum values
of KubeRay's ray.io/v1 RayCluster / RayJob / RayCronJob (KubeRay 1.6) and the Kubernetes objects we use,
written down by hand from the API types because kubeconform and the CRD files cannot be fetched here (and
the CRDs are not vendored). On top of the schema, the rules KubeRay's own validation enforces for what we
use: unique worker-group names, minReplicas <= replicas <= maxReplicas, a RayJob has exactly one of
rayClusterSpec / clusterSelector, ttlSecondsAfterFinished only with shutdownAfterJobFinishes, runtimeEnvYAML
is a YAML mapping Ray accepts as a runtime env. Then the facts that tie the manifests together: one image
and Ray version everywhere, GPUs requested where tolerated, volumes mounted that exist, the RayCronJob
template identical to the hand-run RayJob, the legacy CronJob mounting the ConfigMap the README creates.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.infra import k8s_structure as ks
from tests.infra.manifests import (
    APP_DIR, HELM_VALUES, INFRA, K8S_MANIFESTS, MLFLOW_URI, RAY_VERSION, REPO, all_objects, load_docs,
    objects_of_kind, ray_cluster_specs, ray_job_specs,
)


def test_every_manifest_parses_and_names_a_kind():
    assert K8S_MANIFESTS, "no manifests found"
    for path in K8S_MANIFESTS:
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert {"apiVersion", "kind"} <= set(doc), f"{path}: a document without apiVersion/kind"


@pytest.mark.parametrize("path", K8S_MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_schema(path):
    for doc in load_docs(path):
        errors = ks.check_object(doc)
        assert not errors, f"{path.name} {doc.get('kind')}:\n  " + "\n  ".join(errors)


def test_the_checker_catches_typos_wrong_types_and_bad_enums():
    """The checker itself: a valid RayJob passes, and each kind of mistake is reported."""
    (_, good), = [(p, d) for p, d in objects_of_kind("RayJob") if p.name == "rayjob-sweep.yaml"]
    assert ks.check_object(good) == []
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["spec"]["shutdownAfterJobFinish"] = True                      # typo
    bad["spec"]["submissionMode"] = "K8sMode"                          # bad enum
    bad["spec"]["ttlSecondsAfterFinished"] = "600"                     # wrong type
    bad["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0   # must be a string
    del bad["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]              # required
    bad["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"][
        "limits"]["memory"] = "170 GB"                                                 # not a quantity
    text = "\n".join(ks.check_object(bad))
    for needle in ("unknown field 'shutdownAfterJobFinish'", "'K8sMode' not one of", "expected an integer",
                   "num-cpus: expected a string", "missing required field 'groupName'", "not a resource quantity"):
        assert needle in text, f"checker missed: {needle}\n{text}"


def test_cron_expressions():
    assert ks.cron_errors("0 2 * * *") == []
    assert ks.cron_errors("*/15 0-6 1,15 * 1-5") == []
    assert ks.cron_errors("0 24 * * *")
    assert ks.cron_errors("0 2 * *")
    assert ks.cron_errors("@nightly")


def test_kinds_the_issue_asks_for_exist():
    kinds = [d["kind"] for _, d in all_objects()]
    assert kinds.count("RayCluster") == 1
    assert kinds.count("RayJob") == 2          # the sweep and the data-prep run
    assert kinds.count("RayCronJob") == 1
    assert kinds.count("CronJob") == 1
    assert {"Deployment", "Service", "PersistentVolumeClaim"} <= set(kinds)


def test_ray_clusters_follow_kuberay_rules():
    for where, spec in ray_cluster_specs():
        assert spec["rayVersion"] == RAY_VERSION, where
        head = spec["headGroupSpec"]
        assert head["template"]["spec"]["containers"][0]["name"] == "ray-head", where
        ports = {p["containerPort"] for p in head["template"]["spec"]["containers"][0].get("ports", [])}
        assert {6379, 8265} <= ports, f"{where}: head must expose GCS 6379 and the dashboard 8265"
        assert spec.get("authOptions", {}).get("mode") == "token", f"{where}: token auth must be on"
        groups = spec.get("workerGroupSpecs", [])
        names = [g["groupName"] for g in groups]
        assert len(names) == len(set(names)), f"{where}: duplicate worker group names {names}"
        for g in groups:
            assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], f"{where}/{g['groupName']}: replica bounds"
        for group in [head, *groups]:
            pod = group["template"]["spec"]
            volumes = {v["name"] for v in pod.get("volumes", [])}
            for c in pod["containers"]:
                for m in c.get("volumeMounts", []):
                    assert m["name"] in volumes, f"{where}: mount {m['name']} has no volume"


def test_gpu_groups_request_gpus_and_tolerate_the_gpu_taint():
    gpu_groups = 0
    for where, spec in ray_cluster_specs():
        for g in spec.get("workerGroupSpecs", []):
            pod = g["template"]["spec"]
            res = pod["containers"][0]["resources"]
            if g["groupName"].startswith("gpu"):
                gpu_groups += 1
                gpus = res["limits"].get("nvidia.com/gpu")
                assert gpus and int(gpus) >= 1, f"{where}/{g['groupName']}: no GPU limit"
                assert res["requests"].get("nvidia.com/gpu") == gpus, "GPU requests must equal limits"
                assert any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])), where
                assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod.get("volumes", [])), \
                    f"{where}: GPU workers need a memory-backed /dev/shm for NCCL"
            else:
                assert "nvidia.com/gpu" not in res.get("limits", {}), where
    assert gpu_groups >= 2  # the long-lived cluster and the sweep's cluster


def test_one_image_everywhere_ray_pods_run():
    images = set()
    for _, spec in ray_cluster_specs():
        for group in [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]:
            images |= {c["image"] for c in group["template"]["spec"]["containers"]}
    assert len(images) == 1, f"Ray pods use several images: {images}"


def test_ray_jobs_follow_kuberay_rules():
    from ray.runtime_env import RuntimeEnv

    specs = ray_job_specs()
    assert len(specs) == 3
    for where, spec in specs:
        assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec), f"{where}: exactly one cluster source"
        if spec.get("ttlSecondsAfterFinished"):
            assert spec.get("shutdownAfterJobFinishes") is True, f"{where}: TTL needs shutdownAfterJobFinishes"
        assert spec.get("submissionMode", "K8sJobMode") == "K8sJobMode", \
            f"{where}: a local working_dir is uploaded by the submitter pod, which only K8sJobMode has"
        assert spec["entrypoint"].strip(), where
        env = yaml.safe_load(spec["runtimeEnvYAML"])
        assert isinstance(env, dict), f"{where}: runtimeEnvYAML is not a mapping"
        # Ray checks a local working_dir exists; the image's APP_DIR is a copy of this repository.
        RuntimeEnv(**{**env, "working_dir": str(REPO)})  # raises on unknown or malformed fields
        assert env["working_dir"] == APP_DIR, f"{where}: working_dir must be the image's copy of the repo"


def test_raycronjob_runs_exactly_the_data_prep_rayjob():
    (_, cron), = objects_of_kind("RayCronJob")
    (_, job), = [(p, d) for p, d in objects_of_kind("RayJob") if p.name == "rayjob-data-prep.yaml"]
    assert cron["spec"]["jobTemplate"] == job["spec"], \
        "raycronjob-data-prep.yaml's jobTemplate drifted from rayjob-data-prep.yaml's spec"
    assert "--incremental" in job["spec"]["entrypoint"].split()
    assert cron["spec"].get("suspend") is False


def test_legacy_cronjob_creates_the_rayjob_from_the_configmap_the_readme_makes():
    (path, cron), = objects_of_kind("CronJob")
    (_, legacy), = [(p, d) for p, d in objects_of_kind("RayCronJob")]
    assert cron["spec"]["schedule"] == legacy["spec"]["schedule"], "both schedulers should run at the same time"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    (cm_volume,) = [v for v in pod["volumes"] if "configMap" in v]
    cm_name = cm_volume["configMap"]["name"]
    (item,) = cm_volume["configMap"]["items"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == cm_volume["name"]]
    command = pod["containers"][0]["command"]
    assert command[:3] == ["kubectl", "create", "-f"], "create, not apply: the RayJob uses generateName"
    assert command[3] == f"{mount['mountPath']}/{item['path']}"
    creates = f"create configmap {cm_name} --from-file={item['key']}=infra/kuberay/rayjob-data-prep.yaml"
    for doc in (path, INFRA / "README.md"):
        assert creates in _flat(doc.read_text()), f"{doc.name} does not show: kubectl ... {creates}"
    # RBAC: the pod's service account may create RayJobs, and nothing broader.
    (_, role), = objects_of_kind("Role")
    (_, binding), = objects_of_kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert role["rules"] == [{"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list"]}]


def test_operator_values_enable_the_raycronjob_gate():
    values = yaml.safe_load(HELM_VALUES.read_text())
    gates = {g["name"]: g["enabled"] for g in values["featureGates"]}
    assert gates["RayCronJob"] is True


def test_no_secret_values_inline():
    """Credentials come from Secrets (secretKeyRef / secretRef), never literal env values or Secret objects."""
    suspicious = ("PASSWORD", "SECRET", "TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    for path, doc in all_objects():
        assert doc["kind"] != "Secret", f"{path.name}: Secrets are created out of band, not committed"
        for env in _all_env_vars(doc):
            if any(s in env["name"].upper() for s in suspicious):
                assert "value" not in env and "valueFrom" in env, f"{path.name}: {env['name']} set inline"
            assert not URI_WITH_PASSWORD.match(env.get("value", "")), f"{path.name}: password in {env['name']}"


def test_jobs_log_to_the_shared_mlflow_service():
    for where, spec in ray_job_specs():
        if "scale_sweep.py" in spec["entrypoint"]:
            assert f"--tracking-uri {MLFLOW_URI}" in " ".join(spec["entrypoint"].split()), where
    (_, svc), = objects_of_kind("Service")
    (_, dep), = objects_of_kind("Deployment")
    host = MLFLOW_URI.split("//")[1]
    name, namespace = host.split(".")[:2]
    assert svc["metadata"]["name"] == name and namespace == "vitok"
    assert svc["spec"]["ports"][0]["port"] == int(host.rsplit(":", 1)[1])
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items(), "the Service selects no MLflow pod"


URI_WITH_PASSWORD = re.compile(r"^[a-z0-9+.-]+://[^/@:]*:[^/@]*@")


def _flat(text: str) -> str:
    """Text with comment markers, shell line continuations and runs of whitespace folded to single spaces."""
    lines = (re.sub(r"^\s*#", "", line) for line in text.splitlines())
    return " ".join(" ".join(lines).replace("\\", " ").split())


def _all_env_vars(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield from value
            else:
                yield from _all_env_vars(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_env_vars(item)
