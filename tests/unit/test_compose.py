"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file parses,
every service builds from the one Dockerfile with its own SERVICE, and the environment compose
hands each service is exactly what that service's settings class reads."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml

from deploy.tools import k8s
from services.deadline.settings import DeadlineSettings
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.routing.settings import RoutingSettings
from shared.messaging.access import ADMIN, DOWNSTREAM
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
POSTGRES_INIT = ROOT / "deploy" / "compose" / "postgres-init.sh"
# ${NAME:?message}: compose refuses to start while NAME is unset or empty.
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?[^}]*\}")

APP_SERVICES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "routing": RoutingSettings,
    "deadline": DeadlineSettings,
    "notifier": NotifierSettings,
}
INFRA_SERVICES = ("kafka", "kafka-access", "postgres", "jaeger", "keycloak")
MONITORING_SERVICES = ("prometheus", "grafana")
KAFKA_PRINCIPALS = (ADMIN, *sorted(APP_SERVICES), DOWNSTREAM)
app_service = pytest.mark.parametrize("name", sorted(APP_SERVICES))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service = compose["services"][name]
    assert isinstance(service, dict)
    return service


def _environment(compose: dict[str, Any], name: str) -> dict[str, str]:
    environment = _service(compose, name).get("environment", {})
    assert isinstance(environment, dict), f"{name}: write environment as a mapping"
    return environment


def _required_variables(value: str) -> list[str]:
    return REQUIRED_VARIABLE.findall(value)


def _interpolated(value: str, variables: dict[str, str]) -> str:
    """What compose makes of the value, given .env; any other `$` form is not used here."""
    result = REQUIRED_VARIABLE.sub(lambda match: variables[match.group(1)], value)
    assert "$" not in result, f"{value}: only ${{NAME:?message}} interpolation is expected"
    return result


def _filled_env() -> dict[str, str]:
    """A .env with every variable of .env.example set (to a value naming it)."""
    return {key: f"secret-of-{key.lower()}-{'x' * 32}" for key in _env_example()}


def _database_url(compose: dict[str, Any], name: str) -> SplitResult:
    """The service's DATABASE_URL as compose hands it over, .env filled in."""
    return urlsplit(_interpolated(_environment(compose, name)["DATABASE_URL"], _filled_env()))


def _env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def _instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"{dockerfile}: dangling line continuation"
    return instructions


def _only(instructions: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for kw, arguments in instructions if kw == keyword]
    assert len(found) == 1, f"expected exactly one {keyword}, found {found}"
    return found[0]


def _image_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """Every ENV of the Dockerfile, as written (`${ARG}` left unexpanded)."""
    env: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _listener_protocols(kafka_environment: dict[str, str]) -> dict[str, str]:
    pairs = kafka_environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    return dict(pair.split(":", 1) for pair in pairs)


def _dockerignore_patterns() -> set[str]:
    return {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }


# --- compose file ----------------------------------------------------------------------------


def test_compose_parses_and_has_every_service(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the compose spec has no version key"
    assert set(compose["services"]) == {*INFRA_SERVICES, *MONITORING_SERVICES, *APP_SERVICES}


def test_every_environment_value_is_a_string(compose: dict[str, Any]) -> None:
    """Quoted values: YAML must not turn `true`, `0` or `1` into something else."""
    for name in compose["services"]:
        for key, value in _environment(compose, name).items():
            assert isinstance(value, str), f"{name}.{key} = {value!r} should be quoted"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_kafka_is_a_single_kraft_node_with_a_healthcheck(compose: dict[str, Any]) -> None:
    kafka = _service(compose, "kafka")
    assert kafka["image"] == "apache/kafka:4.1.0"
    env = _environment(compose, "kafka")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "CLIENT://kafka:9092"
    for key, value in env.items():
        if key.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert value == "1", f"{key}: one broker cannot hold {value} replicas"
    test = kafka["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "kafka-broker-api-versions.sh" in test[1]
    assert test[test.index("--command-config") + 1] == "/opt/kafka/config/admin.properties"


def test_kafka_lets_in_only_signed_in_principals_and_denies_what_no_acl_allows(
    compose: dict[str, Any],
) -> None:
    env = _environment(compose, "kafka")
    protocols = _listener_protocols(env)
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener without sign-in"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == f"User:{ADMIN}"
    # Every principal gets its SCRAM credentials when the storage is formatted.
    script = _service(compose, "kafka")["command"][-1]
    assert "--add-scram" in script and "exec /etc/kafka/docker/launch" in script
    [names] = re.findall(r"for name in ([a-z ]+); do", script)
    assert sorted(names.split()) == sorted(KAFKA_PRINCIPALS)
    for principal in KAFKA_PRINCIPALS:
        variable = f"KAFKA_{principal.upper()}_PASSWORD"
        assert (
            env[f"SCRAM_{principal.upper()}_PASSWORD"]
            == f"${{{variable}:?set it in .env (see .env.example)}}"
        )


def test_the_acls_are_in_place_before_any_service_starts(compose: dict[str, Any]) -> None:
    access = _service(compose, "kafka-access")
    assert access["command"][:3] == ["python", "-m", "shared.messaging.access"]
    assert importlib.util.find_spec("shared.messaging.access") is not None
    env = _environment(compose, "kafka-access")
    assert env["KAFKA_USERNAME"] == ADMIN
    assert env["KAFKA_PASSWORD"] == "${KAFKA_ADMIN_PASSWORD:?set it in .env (see .env.example)}"
    assert access["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        condition = _service(compose, name)["depends_on"]["kafka-access"]["condition"]
        assert condition == "service_completed_successfully"


def test_every_secret_comes_from_the_env_file_with_a_placeholder_committed(
    compose: dict[str, Any],
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert {f"KAFKA_{p.upper()}_PASSWORD" for p in KAFKA_PRINCIPALS} <= required
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), f".env.example lacks {sorted(required - set(example))}"
    assert set(example.values()) == {""}, "placeholders only, never a real secret"
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_postgres_has_a_healthcheck(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_keycloak_imports_the_committed_realm_with_secrets_from_the_env_file(
    compose: dict[str, Any],
) -> None:
    keycloak = _service(compose, "keycloak")
    pom = (ROOT / "deploy/local/keycloak/pom.xml").read_text(encoding="utf-8")
    [version] = re.findall(r"<keycloak.version>(.+)</keycloak.version>", pom)
    assert keycloak["image"] == f"quay.io/keycloak/keycloak:{version}", "same as deploy/local"
    assert keycloak["command"] == ["start-dev", "--import-realm"]
    source, target, *_ = keycloak["volumes"][0].split(":")
    assert (ROOT / source).resolve() == ROOT / "deploy/keycloak/onestop-realm.json"
    assert target == "/opt/keycloak/data/import/onestop-realm.json"
    env = _environment(compose, "keycloak")
    for key in ("KC_BOOTSTRAP_ADMIN_PASSWORD", "KEYCLOAK_DOWNSTREAM_CLIENT_SECRET"):
        variable = "KEYCLOAK_ADMIN_PASSWORD" if key.startswith("KC_") else key
        assert env[key].startswith("${" + variable + ":?"), f"{key}: from the env file, required"
    assert env["KC_HOSTNAME"] == "http://localhost:8080", "the issuer browsers and tokens see"
    assert keycloak["ports"] == ["8080:8080"]
    assert env["KC_HEALTH_ENABLED"] == "true"
    assert "/tcp/127.0.0.1/" + env["KC_HTTP_MANAGEMENT_PORT"] in keycloak["healthcheck"]["test"][3]


# --- dashboards and alerts --------------------------------------------------------------------


def _mounts(compose: dict[str, Any], name: str) -> dict[str, str]:
    """Host path (resolved) → container path, of each bind mount."""
    return {
        str((ROOT / v.split(":")[0]).resolve()): v.split(":")[1]
        for v in _service(compose, name)["volumes"]
        if v.startswith("./")
    }


@pytest.mark.parametrize("name", MONITORING_SERVICES)
def test_monitoring_images_are_pinned_and_published_on_loopback_only(
    compose: dict[str, Any], name: str
) -> None:
    image = _service(compose, name)["image"]
    assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", image), f"{name}: pin a version ({image})"
    for published in _service(compose, name)["ports"]:
        assert str(published).startswith("127.0.0.1:"), f"{name} publishes {published} to all"


def test_prometheus_loads_the_committed_configuration_and_rules(compose: dict[str, Any]) -> None:
    prometheus = _service(compose, "prometheus")
    mounts = _mounts(compose, "prometheus")
    config_path = mounts[str(ROOT / "deploy/prometheus/prometheus.yml")]
    assert f"--config.file={config_path}" in prometheus["command"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text("utf-8"))
    assert config["rule_files"] == [mounts[str(ROOT / "deploy/prometheus/alerts.yml")]]
    # It scrapes each app service's /metrics at the port compose gives it, job = service.
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(APP_SERVICES)
    for name, job in jobs.items():
        assert job["metrics_path"] == "/metrics"
        [target] = job["static_configs"][0]["targets"]
        assert target == f"{name}:{_environment(compose, name)['HTTP_PORT']}"
    assert set(prometheus["depends_on"]) == set(APP_SERVICES)


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(compose: dict[str, Any]) -> None:
    mounts = _mounts(compose, "grafana")
    assert mounts[str(ROOT / "deploy/grafana/provisioning")] == "/etc/grafana/provisioning"
    dashboards_at = mounts[str(ROOT / "deploy/grafana/dashboards")]
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/onestop.yml").read_text("utf-8")
    )
    assert [p["options"]["path"] for p in provider["providers"]] == [dashboards_at]
    [source] = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in _service(compose, "prometheus")["ports"]
    env = _environment(compose, "grafana")
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_at + "/")
    assert (ROOT / "deploy/grafana/dashboards" / home.rsplit("/", 1)[1]).is_file()


# --- app services ----------------------------------------------------------------------------


@app_service
def test_builds_from_the_one_dockerfile(compose: dict[str, Any], name: str) -> None:
    build = _service(compose, name)["build"]
    assert build["context"] == "."
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["args"] == {
        "SERVICE": name,
        "HTTP_PORT": _environment(compose, name)["HTTP_PORT"],
    }


def _stages(instructions: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions, by the name its FROM gives it."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            image, _, name = arguments.partition(" AS ")
            assert image == "${PYTHON_IMAGE}", f"every stage from the one pinned base: {arguments}"
            current = stages.setdefault(name.strip(), [])
        current.append((keyword, arguments))
    return stages


def test_dockerfile_has_a_builder_and_a_runtime_stage_from_one_pinned_base() -> None:
    instructions = _instructions()
    keyword, base = instructions[0]
    assert keyword == "ARG" and base.startswith("PYTHON_IMAGE=")
    image = base.removeprefix("PYTHON_IMAGE=")
    # An exact patch version of the Python the project is developed on, never a moving tag.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    stages = _stages(instructions)
    assert list(stages) == ["builder", "runtime"], "the last stage is the image"
    runtime = stages["runtime"]
    copied = [a for kw, a in runtime if kw == "COPY"]
    assert copied == ["--from=builder /opt/onestop /opt/onestop"], "only the environment"
    for keyword, arguments in runtime:
        if keyword == "RUN":
            assert not re.search(r"\b(pip|uv)\b", arguments), (
                f"installs in the runtime: {arguments}"
            )


def test_dockerfile_runs_the_service_as_non_root() -> None:
    instructions = _instructions()
    runtime = _stages(instructions)["runtime"]
    assert ("ARG", "SERVICE") in runtime
    assert _image_env(runtime)["ONESTOP_SERVICE"] == "${SERVICE}"
    user = _only(instructions, "USER")
    assert user not in {"root", "0"} and not user.startswith(("root:", "0:"))
    # Numeric, so Kubernetes' runAsNonRoot can check it; the uid deploy/k8s runs as.
    uid, _, gid = user.partition(":")
    [useradd] = [a for kw, a in runtime if kw == "RUN" and "useradd" in a]
    assert f"--uid {uid}" in useradd and f"--gid {gid}" in useradd
    assert (
        int(uid)
        == k8s.deployment("intake")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    )
    healthcheck = _only(instructions, "HEALTHCHECK")
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck


def test_dockerfile_installs_from_the_lock() -> None:
    builder = _stages(_instructions())["builder"]
    runs = [a for kw, a in builder if kw == "RUN"]
    [uv] = [a for a in runs if "pip install" in a]
    assert "--require-hashes -r deploy/uv-requirements.txt" in uv, "uv itself, pinned"
    syncs = [a for a in runs if "uv sync" in a]
    assert len(syncs) == 2 and "--no-install-project" in syncs[0], "dependencies, then the package"
    for sync in syncs:
        assert "--locked" in sync, "fail, do not re-resolve, when uv.lock is stale"
        assert "--no-editable" in sync and "--extra" not in sync
    env = _image_env(builder)
    assert env["UV_PROJECT_ENVIRONMENT"] == "/opt/onestop" and env["UV_COMPILE_BYTECODE"] == "1"
    # The dependencies' layer is built before the sources are copied, so it is reused.
    copies = [a for kw, a in builder if kw == "COPY"]
    assert builder.index(("RUN", syncs[0])) < builder.index(("COPY", "shared/ shared/"))
    assert copies.index("pyproject.toml uv.lock ./") < copies.index("shared/ shared/")


def test_dockerfile_copies_only_what_exists_and_is_in_the_context() -> None:
    ignored = _dockerignore_patterns()
    sources = [
        source
        for keyword, arguments in _instructions()
        if keyword == "COPY" and not arguments.startswith("--from=")  # from the context
        for source in arguments.split()[:-1]
    ]
    assert {"pyproject.toml", "uv.lock", "shared/", "services/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        parts = Path(source).parts
        for depth in range(1, len(parts) + 1):
            assert "/".join(parts[:depth]) not in ignored, f"COPY {source}: .dockerignore drops it"


@app_service
def test_dockerfile_command_runs_the_service(name: str) -> None:
    """The CMD's shell, given the image's ONESTOP_SERVICE, runs `python -m services.<name>`."""
    command = json.loads(_only(_instructions(), "CMD"))
    assert command[:2] == ["sh", "-c"] and command[2].startswith("exec python -m ")
    echoed = subprocess.run(
        ["sh", "-c", command[2].replace("exec python", "exec echo python", 1)],
        env={"ONESTOP_SERVICE": name, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert echoed.stdout.split() == ["python", "-m", f"services.{name}"]
    assert importlib.util.find_spec(f"services.{name}.__main__") is not None


@app_service
def test_http_port_matches_dockerfile_expose(compose: dict[str, Any], name: str) -> None:
    instructions = _instructions()
    assert _only(instructions, "EXPOSE") == "${HTTP_PORT}"
    assert _image_env(instructions)["HTTP_PORT"] == "${HTTP_PORT}"
    port = _environment(compose, name)["HTTP_PORT"]
    assert _service(compose, name)["build"]["args"]["HTTP_PORT"] == port
    for published in _service(compose, name).get("ports", []):
        assert str(published).rsplit(":", 1)[-1] == port, f"{name} publishes {published}"


def test_only_intake_is_published(compose: dict[str, Any]) -> None:
    published = {name for name in APP_SERVICES if _service(compose, name).get("ports")}
    assert published == {"intake"}
    assert _service(compose, "intake")["ports"] == ["8000:8000"]


@app_service
def test_waits_for_healthy_kafka_and_postgres(compose: dict[str, Any], name: str) -> None:
    depends_on = _service(compose, name)["depends_on"]
    assert isinstance(depends_on, dict), "long form, so that conditions can be given"
    for dependency in ("kafka", "postgres"):
        assert depends_on[dependency]["condition"] == "service_healthy"
        assert "healthcheck" in _service(compose, dependency), f"{dependency} never turns healthy"
    assert set(depends_on) <= set(compose["services"])


@app_service
def test_environment_satisfies_the_settings_class(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_class = APP_SERVICES[name]
    environment = _environment(compose, name)
    # Start from an environment that holds nothing the settings class could read...
    for key in list(os.environ):
        if key.lower() in settings_class.model_fields:
            monkeypatch.delenv(key)
    # ...then give it exactly what compose gives the container, .env filled in.
    filled = _filled_env()
    for key, value in environment.items():
        monkeypatch.setenv(key, _interpolated(value, filled))

    settings = settings_class()  # type: ignore[call-arg]

    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_security_protocol == "SASL_PLAINTEXT"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_username == name, "each service signs in as its own principal"
    assert settings.kafka_password is not None
    assert settings.kafka_password.get_secret_value() == (
        f"secret-of-kafka_{name}_password-{'x' * 32}"
    )
    assert settings.database_url.hosts()[0]["host"] == "postgres"
    assert settings.database_url.hosts()[0]["username"] == f"onestop_{name}"
    assert settings.database_url.hosts()[0]["password"] == (
        f"secret-of-postgres_{name}_password-{'x' * 32}"
    )
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == int(environment["HTTP_PORT"])


@app_service
def test_no_dead_or_misspelt_settings(compose: dict[str, Any], name: str) -> None:
    fields = set(APP_SERVICES[name].model_fields)
    unknown = {
        key
        for key in _environment(compose, name)
        if not key.startswith("OTEL_") and key.lower() not in fields
    }
    assert not unknown, f"{name}: compose sets {sorted(unknown)}, which no setting reads"


@app_service
def test_environment_points_at_the_compose_services(compose: dict[str, Any], name: str) -> None:
    environment = _environment(compose, name)
    postgres = _environment(compose, "postgres")
    database = _database_url(compose, name)
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.path == f"/{postgres['POSTGRES_DB']}"
    # Its own role, with the password that postgres hands the init script for that role.
    assert database.username == f"onestop_{name}"
    password = f"POSTGRES_{name.upper()}_PASSWORD"
    assert _required_variables(environment["DATABASE_URL"]) == [password]
    assert _required_variables(postgres[password]) == [password]

    kafka = _environment(compose, "kafka")
    advertised = dict(
        listener.split("://") for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    [listener] = [n for n, a in advertised.items() if a == environment["KAFKA_BOOTSTRAP_SERVERS"]]
    protocols = _listener_protocols(kafka)
    assert protocols[listener] == environment["KAFKA_SECURITY_PROTOCOL"]

    assert environment["OTEL_SERVICE_NAME"] == name
    assert urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"]).hostname == "jaeger"
    assert environment["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"


# --- secrets --------------------------------------------------------------------------------


def test_no_password_is_written_in_compose(compose: dict[str, Any]) -> None:
    """Every password comes from .env through ${NAME:?…}, which refuses to start without it."""
    assert "onestop:onestop" not in COMPOSE_FILE.read_text(encoding="utf-8")
    for name in compose["services"]:
        for key, value in _environment(compose, name).items():
            if "PASSWORD" in key:
                assert re.fullmatch(REQUIRED_VARIABLE, value), f"{name}.{key} = {value!r}"
            if "://" in value:  # a URL's password, if any, is a variable too
                userinfo = value.split("://", 1)[1].rsplit("@", 1)
                if len(userinfo) == 2 and ":" in userinfo[0]:
                    password = userinfo[0].split(":", 1)[1]
                    assert re.fullmatch(REQUIRED_VARIABLE, password), f"{name}.{key}"


def test_postgres_runs_as_its_superuser_only_for_the_init_script(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    mounted = {v.split(":")[0]: v.split(":")[1] for v in postgres["volumes"]}
    assert mounted["./deploy/compose/postgres-init.sh"].startswith("/docker-entrypoint-initdb.d/")
    assert (ROOT / "deploy/compose/postgres-init.sh").stat().st_mode & 0o111, "executable"
    superuser = _environment(compose, "postgres")["POSTGRES_USER"]
    for name in APP_SERVICES:
        user = _database_url(compose, name).username
        assert user != superuser and user == f"onestop_{name}"


@app_service
def test_the_init_script_gives_each_service_a_role_owning_only_its_schema(name: str) -> None:
    script = POSTGRES_INIT.read_text(encoding="utf-8")
    role = f"onestop_{name}"
    create_role = re.search(rf"^CREATE ROLE {role} (.*);$", script, re.MULTILINE)
    assert create_role is not None, f"no CREATE ROLE {role}"
    assert {"LOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE"} <= set(
        create_role.group(1).split()
    )
    assert f"PASSWORD :'{name}_password'" in create_role.group(1)
    assert f'-v {name}_password="$POSTGRES_{name.upper()}_PASSWORD"' in script
    assert f"CREATE SCHEMA {name} AUTHORIZATION {role};" in script
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC;" in script


def test_env_example_lists_every_variable_compose_requires_with_no_value() -> None:
    required = set(REQUIRED_VARIABLE.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    example = _env_example()
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    assert all(value == "" for value in example.values()), "placeholders only: no secret"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored
    assert ".env" in _dockerignore_patterns()


# --- .dockerignore ---------------------------------------------------------------------------


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = _dockerignore_patterns()
    assert {".venv", ".cache", ".run", ".git", "artifacts", "tests"} <= patterns
    assert any("__pycache__" in pattern for pattern in patterns)
    assert not patterns & {"shared", "services", "pyproject.toml", "uv.lock", "deploy", "*", "**"}
