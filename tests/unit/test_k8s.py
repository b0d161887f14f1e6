"""deploy/k8s, checked without a cluster: the base is what the generator makes from the code,
each overlay renders with the pinned kustomize, core resources validate against the Kubernetes
JSON schemas (kubernetes-validate), CloudNativePG's and KEDA's resources against the CRDs their
operators publish (fetched by `make install`: deploy/tools/crds.py), Strimzi's structurally
(no registry this project uses serves its CRDs), and the project's own rules hold: hardened
pods, secrets only referenced, topics, users and ACLs exactly the code's."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.local import databases
from deploy.tools import crds, k8s
from services.deadline.settings import DeadlineSettings
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.routing.settings import RoutingSettings
from shared.events import Topic, dead_letter_topic
from shared.messaging import access
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("city", "national")
KUBERNETES_VERSION = "1.33.0"  # the oldest version the manifests must validate against
SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "routing": RoutingSettings,
    "deadline": DeadlineSettings,
    "notifier": NotifierSettings,
}
CORE_GROUPS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}
CRD_FILES = {
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_clusters.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentications.yaml",
}
STRIMZI = "kafka.strimzi.io/v1beta2"
overlay = pytest.mark.parametrize("name", OVERLAYS)


def _kustomize() -> Path:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    version = re.search(r"^KUSTOMIZE_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert version, "the Makefile pins KUSTOMIZE_VERSION"
    binary = ROOT / ".cache" / "bin" / f"kustomize-{version.group(1)}"
    assert binary.exists(), f"{binary} is missing: run `make install`"
    return binary


def _build(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(_kustomize()), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/nonexistent")},
    )
    assert result.returncode == 0, f"kustomize build {directory}: {result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


_rendered: dict[str, list[dict[str, Any]]] = {}


def rendered(name: str) -> list[dict[str, Any]]:
    if name not in _rendered:
        _rendered[name] = _build(K8S / "overlays" / name)
    return copy.deepcopy(_rendered[name])


def _of(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


# --- generated from the code -------------------------------------------------------------------


def test_the_committed_base_is_what_the_generator_makes() -> None:
    expected = {name: k8s.render(documents) for name, documents in k8s.files().items()}
    for name, text in expected.items():
        committed = (k8s.BASE / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `make k8s` and commit it"
    listed = yaml.safe_load((k8s.BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(listed["resources"]) == sorted(expected), "kustomization.yaml lists them all"
    on_disk = {p.name for p in k8s.BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(expected), "no stray file in the base"


@overlay
def test_topics_are_the_codes_with_their_dead_letters(name: str) -> None:
    topics = _of(rendered(name), "KafkaTopic")
    expected = {str(t) for t in Topic} | {
        dead_letter_topic(group) for groups in access.CONSUMER_GROUPS.values() for group in groups
    }
    assert {t["spec"]["topicName"] for t in topics.values()} == expected
    assert (
        str(Topic.INTAKE_PERSONAL_DATA) in expected and "onestop.dead-letter.notifier" in expected
    )
    partitions = int(_of(rendered(name), "ConfigMap")[k8s.CONFIG]["data"]["KAFKA_PARTITIONS"])
    assert partitions >= 12
    for topic in topics.values():
        spec = topic["spec"]
        assert topic["metadata"]["labels"] == {"strimzi.io/cluster": k8s.KAFKA_CLUSTER}
        assert spec["partitions"] == partitions, "the services create topics as Strimzi does"
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        retention = spec["config"]["retention.ms"]
        inbox = ServiceSettings.model_fields["inbox_retention_seconds"].default * 1000
        assert 0 < retention, spec
        if not spec["topicName"].startswith("onestop.dead-letter."):
            assert retention < inbox, "an event outlives no inbox row that deduplicates it"


def _acl_rules(user: dict[str, Any]) -> set[access.Rule]:
    resource_types = {v: k for k, v in k8s._RESOURCE.items()}
    patterns = {v: k for k, v in k8s._PATTERN.items()}
    operations = {v: k for k, v in k8s._OPERATION.items()}
    return {
        access.Rule(
            user["metadata"]["name"],
            resource_types[acl["resource"]["type"]],
            acl["resource"]["name"],
            patterns[acl["resource"]["patternType"]],
            operations[operation],
        )
        for acl in user["spec"]["authorization"]["acls"]
        for operation in acl["operations"]
    }


@overlay
def test_users_and_acls_are_exactly_the_principals_rules(name: str) -> None:
    users = _of(rendered(name), "KafkaUser")
    assert set(users) == {*access.SERVICES, access.DOWNSTREAM}
    wanted = set(access.rules(""))
    granted = set().union(*(_acl_rules(user) for user in users.values()))
    assert granted == wanted
    for user in users.values():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["metadata"]["labels"] == {"strimzi.io/cluster": k8s.KAFKA_CLUSTER}
    # Only notifier reads the personal data (shared/events.py, RESTRICTED_READERS).
    readers = {
        rule.principal
        for rule in granted
        if rule.name == Topic.INTAKE_PERSONAL_DATA and rule.operation == access.Operation.READ
    }
    assert readers == {"notifier"}


def test_acl_round_trip_can_tell_a_missing_rule() -> None:
    user = next(u for u in k8s.kafka_users() if u["metadata"]["name"] == "routing")
    user["spec"]["authorization"]["acls"].pop()
    assert _acl_rules(user) < {r for r in access.rules("") if r.principal == "routing"}


@overlay
def test_consumers_scale_on_their_own_groups_lag(name: str) -> None:
    documents = rendered(name)
    scaled = _of(documents, "ScaledObject")
    assert set(scaled) == set(access.SERVICES) - {"intake"}
    partitions = int(_of(documents, "ConfigMap")[k8s.CONFIG]["data"]["KAFKA_PARTITIONS"])
    for service, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        assert spec["scaleTargetRef"]["name"] == service
        assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
        groups = {t["metadata"]["consumerGroup"] for t in spec["triggers"]}
        assert groups == set(access.CONSUMER_GROUPS[service])
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            # KEDA's operator runs in its own namespace: the brokers' full name.
            namespace = scaled_object["metadata"]["namespace"]
            assert trigger["metadata"]["bootstrapServers"] == (
                f"{k8s.KAFKA_CLUSTER}-kafka-bootstrap.{namespace}.svc:9093"
            )
            assert trigger["metadata"]["sasl"] == "scram_sha512"
            auth = _of(documents, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
            secrets = {r["parameter"]: r["name"] for r in auth["spec"]["secretTargetRef"]}
            assert secrets["password"] == service, "the service's own KafkaUser secret"
            assert auth["spec"]["env"][0]["containerName"] == service
    hpa = _of(documents, "HorizontalPodAutoscaler")["intake"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "intake"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_the_national_overlay_is_larger_than_the_city() -> None:
    city, national = rendered("city"), rendered("national")

    def topic_partitions(documents: list[dict[str, Any]]) -> set[int]:
        return {t["spec"]["partitions"] for t in _of(documents, "KafkaTopic").values()}

    assert topic_partitions(city) == {12} and topic_partitions(national) == {48}
    assert (
        _of(national, "ScaledObject")["routing"]["spec"]["maxReplicaCount"]
        > _of(city, "ScaledObject")["routing"]["spec"]["maxReplicaCount"]
    )


@overlay
def test_postgres_has_one_login_role_per_service(name: str) -> None:
    documents = rendered(name)
    cluster = _of(documents, "Cluster")[k8s.POSTGRES_CLUSTER]
    assert cluster["spec"]["instances"] == 3
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == {databases.service_role(s) for s in databases.SERVICES}
    for service in databases.SERVICES:
        role = roles[databases.service_role(service)]
        assert role["login"] and not role["superuser"] and not role["createrole"]
        assert role["passwordSecret"]["name"] == k8s.postgres_secret(service)
    [ref] = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQLRefs"]["configMapRefs"]
    sql = _of(documents, "ConfigMap")[ref["name"]]["data"][ref["key"]]
    for service in databases.SERVICES:
        owner = databases.service_role(service)
        assert f'CREATE SCHEMA IF NOT EXISTS "{service}" AUTHORIZATION {owner};' in sql


@overlay
def test_kafka_is_a_replicated_kraft_cluster_with_scram_and_acls(name: str) -> None:
    """Structural: Strimzi's CRDs are served by no registry this project fetches from."""
    documents = rendered(name)
    kafka = _of(documents, "Kafka")[k8s.KAFKA_CLUSTER]
    assert kafka["apiVersion"] == STRIMZI
    assert kafka["metadata"]["annotations"] == {
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    spec = kafka["spec"]["kafka"]
    assert spec["authorization"] == {"type": "simple"}
    [listener] = spec["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"] == {"type": "scram-sha-512"}
    config = _of(documents, "ConfigMap")[k8s.CONFIG]["data"]
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == f"{k8s.KAFKA_CLUSTER}-kafka-bootstrap:9093"
    assert listener["port"] == 9093
    assert spec["config"]["min.insync.replicas"] == 2
    assert spec["config"]["default.replication.factor"] == 3
    assert spec["config"]["auto.create.topics.enable"] is False
    assert set(kafka["spec"]["entityOperator"]) == {"topicOperator", "userOperator"}
    pools = _of(documents, "KafkaNodePool")
    roles = {tuple(p["spec"]["roles"]) for p in pools.values()}
    assert roles == {("controller",), ("broker",)}
    for pool in pools.values():
        assert pool["apiVersion"] == STRIMZI
        assert pool["metadata"]["labels"] == {"strimzi.io/cluster": k8s.KAFKA_CLUSTER}
        assert pool["spec"]["replicas"] >= 3
        assert pool["spec"]["storage"]["type"] == "jbod"
    for kind in ("KafkaTopic", "KafkaUser"):
        for document in _of(documents, kind).values():
            assert document["apiVersion"] == STRIMZI and set(document) == {
                "apiVersion",
                "kind",
                "metadata",
                "spec",
            }


# --- Kubernetes' schemas -----------------------------------------------------------------------


def _core_errors(document: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{document['kind']}/{document['metadata']['name']}: {error.message}"]
    return []


@overlay
def test_core_resources_validate_against_the_kubernetes_schemas(name: str) -> None:
    documents = [d for d in rendered(name) if d["apiVersion"] in CORE_GROUPS]
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= {
        d["kind"] for d in documents
    }
    errors = [e for d in documents for e in _core_errors(d)]
    assert not errors, "\n".join(errors)
    others = {(d["apiVersion"], d["kind"]) for d in rendered(name)} - {
        (d["apiVersion"], d["kind"]) for d in documents
    }
    assert {k for k in others if k[0] != STRIMZI} == set(CRD_FILES), "each CR is validated"


def test_the_kubernetes_schemas_refuse_a_misspelt_field() -> None:
    deployment = _of(rendered("city"), "Deployment")["intake"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    assert _core_errors(deployment)


def _strict(schema: Any) -> Any:
    """The CRD's schema, refusing unknown fields (the API server would silently drop them)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    path = crds.DESTINATION / CRD_FILES[(api_version, kind)]
    assert path.exists(), f"{path} is missing: run `make install`"
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert crd["spec"]["names"]["kind"] == kind
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert served["served"], f"{api_version} {kind} is no longer served"
    schema = _strict(served["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft4Validator(schema)


def _cr_errors(document: dict[str, Any]) -> list[str]:
    validator = _crd_validator(document["apiVersion"], document["kind"])
    return [
        f"{document['kind']}/{document['metadata']['name']} at {list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(document)
    ]


@overlay
def test_operator_resources_validate_against_their_published_crds(name: str) -> None:
    documents = [d for d in rendered(name) if (d["apiVersion"], d["kind"]) in CRD_FILES]
    assert {d["kind"] for d in documents} == {k for _, k in CRD_FILES}
    errors = [e for d in documents for e in _cr_errors(d)]
    assert not errors, "\n".join(errors)


def test_the_crd_schemas_refuse_a_misspelt_field() -> None:
    cluster = _of(rendered("city"), "Cluster")[k8s.POSTGRES_CLUSTER]
    cluster["spec"]["instance"] = 3
    assert _cr_errors(cluster)
    scaled = _of(rendered("city"), "ScaledObject")["routing"]
    scaled["spec"]["maxReplicaCount"] = "many"
    assert _cr_errors(scaled)


# --- the project's rules -------------------------------------------------------------------


def _pod_specs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: d["spec"]["template"]["spec"] for name, d in _of(documents, "Deployment").items()}


@overlay
def test_every_pod_is_hardened_probed_and_sized(name: str) -> None:
    pods = _pod_specs(rendered(name))
    assert set(access.SERVICES) | {k8s.OTEL_COLLECTOR} == set(pods)
    for pod_name, pod in pods.items():
        assert pod["automountServiceAccountToken"] is False, pod_name
        assert pod["securityContext"]["runAsNonRoot"] is True, pod_name
        assert pod["securityContext"]["runAsUser"] != 0, pod_name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, pod_name
            assert security["allowPrivilegeEscalation"] is False, pod_name
            assert security["capabilities"] == {"drop": ["ALL"]}, pod_name
            assert container["readinessProbe"] and container["livenessProbe"], pod_name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), pod_name
            assert "memory" in resources["limits"], pod_name
    for service in access.SERVICES:
        [container] = pods[service]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["ports"][0]["containerPort"] == k8s.HTTP_PORTS[service]


@overlay
def test_every_service_has_a_disruption_budget_and_a_service(name: str) -> None:
    documents = rendered(name)
    budgets, services = _of(documents, "PodDisruptionBudget"), _of(documents, "Service")
    for service in access.SERVICES:
        assert budgets[service]["spec"]["minAvailable"] == 1
        assert budgets[service]["spec"]["selector"]["matchLabels"] == k8s.selector(service)
        assert services[service]["spec"]["selector"] == k8s.selector(service)


def _referenced_secrets(documents: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for node in _walk(documents):
        for key in ("secretKeyRef", "secretRef", "passwordSecret"):
            if isinstance(node.get(key), dict):
                names.add(node[key]["name"])
        if "secretName" in node:
            names.add(node["secretName"])
    for auth in _of(documents, "TriggerAuthentication").values():
        names |= {ref["name"] for ref in auth["spec"]["secretTargetRef"]}
    return names


@overlay
def test_secrets_are_referenced_by_a_documented_name_never_written(name: str) -> None:
    documents = rendered(name)
    assert not _of(documents, "Secret"), "no Secret is ever part of the manifests"
    referenced = _referenced_secrets(documents)
    # Every secret the manifests reference is listed; downstream's is for downstream systems.
    assert referenced == set(k8s.SECRETS) - {access.DOWNSTREAM}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    undocumented = {s for s in k8s.SECRETS if f"`{s}`" not in readme}
    assert not undocumented, f"README's 'Deploying to Kubernetes' does not name {undocumented}"
    for config_map in _of(documents, "ConfigMap").values():
        for key in config_map.get("data", {}):
            assert not re.search(r"PASSWORD|SECRET|_KEY$", key), f"{key} belongs in a Secret"


def _container_environment(documents: list[dict[str, Any]], service: str) -> dict[str, str]:
    """What the kubelet hands the container, secrets filled with stand-ins."""
    config_maps = _of(documents, "ConfigMap")
    [container] = _pod_specs(documents)[service]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in container["env"]:
        if "value" in variable:
            value = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], variable["value"])
        elif "secretKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["secretKeyRef"]
            value = f"{ref['name']}-{ref['key']}-".lower().replace("_", "-") + "0" * 32
        else:
            ref = variable["valueFrom"]["configMapKeyRef"]
            value = config_maps[ref["name"]]["data"][ref["key"]]
        env[variable["name"]] = value
    return env


@overlay
@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_environment_satisfies_the_settings_class(
    name: str, service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_class = SETTINGS[service]
    for key in list(os.environ):
        if key.lower() in settings_class.model_fields:
            monkeypatch.delenv(key)
    documents = rendered(name)
    environment = _container_environment(documents, service)
    # The CA file is Strimzi's cluster CA, mounted where KAFKA_CA_FILE says; here a stand-in.
    pod = _pod_specs(documents)[service]
    volumes = {v["name"]: v for v in pod["volumes"]}
    ca_file = Path(environment["KAFKA_CA_FILE"])
    [mount] = [
        m for m in pod["containers"][0]["volumeMounts"] if Path(m["mountPath"]) == ca_file.parent
    ]
    assert volumes[mount["name"]]["secret"] == {
        "secretName": k8s.KAFKA_CA_SECRET,
        "items": [{"key": "ca.crt", "path": ca_file.name}],
    }
    (tmp_path / "ca.crt").write_text("stand-in", encoding="utf-8")
    environment["KAFKA_CA_FILE"] = str(tmp_path / "ca.crt")
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    settings = settings_class()  # type: ignore[call-arg]

    assert settings.kafka_username == service
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_ca_file is not None
    assert settings.database_url.hosts()[0]["username"] == databases.service_role(service)
    assert settings.database_url.hosts()[0]["host"] == f"{k8s.POSTGRES_CLUSTER}-rw"
    assert settings.kafka_partitions == int(environment["KAFKA_PARTITIONS"])
    assert settings.kafka_replication_factor == 3
    assert settings.http_host == "0.0.0.0"
    unknown = {
        key
        for key in environment
        if not key.startswith("OTEL_")
        and key != "POSTGRES_PASSWORD"
        and not any(key.lower() in s.model_fields for s in SETTINGS.values())
    }
    assert not unknown, f"{service}: set but read by no service: {sorted(unknown)}"


@overlay
def test_network_policies_deny_by_default_and_open_only_the_needed_paths(name: str) -> None:
    policies = _of(rendered(name), "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "onestop"}
    for service in access.SERVICES:
        spec = policies[service]["spec"]
        ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
        assert {53, 9093, 5432, 4318} <= ports, service
        assert (443 in ports) == (service in k8s.WITH_OIDC), "Keycloak, only if it checks tokens"
        assert (service in k8s.PUBLIC) == (service != "routing"), "routing has no API"
        allowed_in = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
        assert allowed_in == ({k8s.HTTP_PORTS[service]} if service in k8s.PUBLIC else set())
