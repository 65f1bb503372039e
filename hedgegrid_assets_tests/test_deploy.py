"""What this machine can test of the Kubernetes deployment (deploy/): no docker daemon, no
cluster, no helm binary here.

- deploy/Dockerfile: installs from the lock (`uv sync --frozen --no-dev`), copies only files
  that exist, runs as non-root, serves the code location on the port the Helm values use; and
  every package the lock resolves for the image has a wheel for its CPython 3.12 on
  manylinux x86_64 (so the build needs no compiler).
- deploy/dagster-k8s.yaml: validates against Dagster's instance schema and dagster-k8s's own
  K8sRunLauncher config schema, and loads (Postgres storage against a real server, the K8s
  launcher against a kubeconfig file).
- deploy/helm/values.yaml: has the keys the dagster/dagster chart (1.13.27) reads, and the run
  launcher config the chart renders from it validates against the same K8sRunLauncher schema.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher
from packaging.markers import Marker
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from hedgegrid_assets_tests import pg_server
from hedgegrid_assets_tests.conftest import REPO

postgres_server = pg_server.postgres_server  # the session fixture
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def _k8s_instance() -> dict:
    return yaml.safe_load((DEPLOY / "dagster-k8s.yaml").read_text())


# -- the Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_installs_from_the_lock_as_non_root():
    steps = _instructions()
    assert re.fullmatch(r"python:3\.12(-slim)?(-\w+)?", steps[0][1]), steps[0]
    copies = [rest for word, rest in steps if word == "COPY"]
    sources = []
    for rest in copies:
        parts = rest.split()
        if parts[0].startswith("--from="):
            continue
        sources += [p for p in parts[:-1] if not p.startswith("--")]
    assert "uv.lock" in sources and "pyproject.toml" in sources
    for source in sources:  # every file the build context must hold exists in the repository
        assert (REPO / source).exists(), f"deploy/Dockerfile copies {source}, which the repository does not have"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert not {s.rstrip("/").split("/")[0] for s in sources} & set(ignored)
    syncs = [rest for word, rest in steps if word == "RUN" and "uv sync" in rest]
    assert len(syncs) == 2 and all("--frozen" in s and "--no-dev" in s for s in syncs)
    assert not any("uv lock" in rest or "pip install" in rest for word, rest in steps if word == "RUN")
    # The uv the Makefile pins.
    uv_image = next(r for r in copies if "astral-sh/uv" in r)
    make_uv = re.search(r"^UV_VERSION := (\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    assert f"ghcr.io/astral-sh/uv:{make_uv} " in uv_image
    # Non-root from the last USER on, which comes before the command.
    users = [i for i, (word, _) in enumerate(steps) if word == "USER"]
    assert users and steps[users[-1]][1].split(":")[0] not in ("0", "root")
    cmd_index = next(i for i, (word, _) in enumerate(steps) if word == "CMD")
    assert users[-1] < cmd_index and not any(word == "ENTRYPOINT" for word, _ in steps)
    # The code server, on the port the Helm values give the user deployment.
    cmd = yaml.safe_load(steps[cmd_index][1])
    assert cmd[:3] == ["dagster", "code-server", "start"]
    module = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert cmd[cmd.index("-m") + 1] == module
    deployment = _values()["dagster-user-deployments"]["deployments"][0]
    expose = next(rest for word, rest in steps if word == "EXPOSE")
    assert expose == cmd[cmd.index("-p") + 1] == str(deployment["port"])
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]


def _uv() -> str | None:
    return shutil.which("uv") or next((str(p) for p in [REPO / ".tools" / "bin" / "uv"] if p.exists()), None)


def test_the_lock_matches_pyproject_and_has_a_wheel_for_every_image_package():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    packages = {p["name"]: p for p in lock["package"]}
    # The lock was made from this pyproject: its root package lists the same dependencies.
    root = packages[project["name"]]
    locked = {re.split(r"[\[<>=!~ ;]", r["name"])[0].lower() for r in root["metadata"]["requires-dist"]}
    declared = {re.split(r"[\[<>=!~ ;]", d)[0].lower().replace("_", "-") for d in project["dependencies"]}
    assert locked == declared
    uv = _uv()
    if uv is None:
        pytest.skip("no uv to export the lock (make install bootstraps one into .tools/)")
    exported = subprocess.run([uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
                               "--format", "requirements.txt"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
    # python:3.12-slim-bookworm: CPython 3.12, glibc 2.36, x86_64.
    env = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "python_version": "3.12", "python_full_version": "3.12.8", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix"}  # fmt: skip
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(36, 4, -1)] + [
        "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]  # fmt: skip
    supported = set(cpython_tags((3, 12), ["cp312"], platforms)) | set(compatible_tags((3, 12), "cp312", platforms))
    needed, missing = 0, []
    for line in exported.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(env):
            continue
        name, version = spec.strip().split("==")
        needed += 1
        entry = packages[re.sub(r"[-_.]+", "-", name).lower()]
        assert entry["version"] == version
        wheels = [parse_wheel_filename(w["url"].rsplit("/", 1)[1])[3] for w in entry.get("wheels", [])]
        if not any(tag in supported for tags in wheels for tag in tags):
            missing.append(f"{name}=={version}")
    assert needed > 100 and not missing, f"no CPython 3.12 manylinux x86_64 wheel in uv.lock for {missing}"


# -- the instance with K8sRunLauncher ----------------------------------------------------------


def test_k8s_instance_validates_against_dagster_k8s_config_schema(tmp_path):
    config = _k8s_instance()
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    # The schema is really consulted: a misspelt key or a wrong type is refused.
    assert not process_config(K8sRunLauncher.config_type(), launcher["config"] | {"job_namespce": "x"}).success
    assert not process_config(
        K8sRunLauncher.config_type(), launcher["config"] | {"env_secrets": "hedgegrid-env"}
    ).success
    # The whole file is a valid instance (Dagster's own instance schema)...
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster-k8s.yaml", home / "dagster.yaml")
    dagster_instance_config(str(home))
    # ...and is deploy/dagster.yaml plus the launcher: same storage, tag limit, pools, retries.
    local = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    for key in ("storage", "run_coordinator", "run_monitoring", "run_retries", "telemetry"):
        assert config[key] == local[key], key
    assert config["concurrency"]["pools"] == local["concurrency"]["pools"]
    assert (
        config["concurrency"]["runs"]["tag_concurrency_limits"]
        == local["concurrency"]["runs"]["tag_concurrency_limits"]
    )


def test_k8s_instance_loads_with_postgres_and_the_k8s_launcher(postgres_server, tmp_path, monkeypatch):
    """Instantiated for real: Postgres storage on the test server, the launcher from a kubeconfig
    file (in the cluster it reads the pod's service account instead: load_incluster_config)."""
    from dagster import DagsterInstance
    from dagster_postgres import PostgresRunStorage

    home = tmp_path / "home"
    home.mkdir()
    config = _k8s_instance()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "hedgegrid"}}],
        "users": [{"name": "test", "user": {"token": "not-a-real-token"}}],
    }))  # fmt: skip
    config["run_launcher"]["config"] |= {"load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_server.create_database("hedgegrid_k8s"))
    instance = DagsterInstance.from_config(str(home))
    launcher = instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher) and isinstance(instance.run_storage, PostgresRunStorage)
    assert launcher.job_namespace == "hedgegrid" and launcher.env_secrets == ["hedgegrid-env"]
    assert launcher.instance_config_map == "dagster-instance" and launcher.resources["requests"]["cpu"] == "1"
    assert instance.get_runs() == []  # the storage answers from Postgres
    tables = {
        r[0]
        for r in postgres_server.query("hedgegrid_k8s", "select tablename from pg_tables where schemaname = 'public'")
    }
    assert {"runs", "event_logs", "instigators"} <= tables


# -- the Helm values ------------------------------------------------------------------------------

# Keys of dagster/dagster's values schema (chart 1.13.27, helm/dagster/schema/schema/charts/...:
# the pydantic models values.schema.json is generated from) for the sections these values set.
# Sections with extra="forbid" refuse any other key, so a typo here would fail `helm install`.
CHART_KEYS = {
    "top": {
        "dagsterWebserver",
        "dagster-user-deployments",
        "postgresql",
        "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret",
        "rabbitmq",
        "redis",
        "flower",
        "ingress",
        "imagePullSecrets",
        "computeLogManager",
        "scheduler",
        "runLauncher",
        "pythonLogs",
        "dagsterDaemon",
        "busybox",
        "migrate",
        "telemetry",
        "serviceAccount",
        "global",
        "retention",
        "concurrency",
        "additionalInstanceConfig",
    },
    "global": {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"},
    "userDeployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "deployment": {
        "name",
        "image",
        "port",
        "dagsterApiGrpcArgs",
        "codeServerArgs",
        "includeConfigInLaunchedRuns",
        "env",
        "envConfigMaps",
        "envSecrets",
        "annotations",
        "nodeSelector",
        "affinity",
        "tolerations",
        "podSecurityContext",
        "securityContext",
        "resources",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "labels",
        "volumeMounts",
        "volumes",
        "schedulerName",
    },
    "k8sRunLauncher": {
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "loadInclusterConfig",
        "kubeconfigFile",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "failPodOnRunFailure",
        "resources",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    },
    "postgresql": {
        "postgresqlScheme",
        "image",
        "enabled",
        "postgresqlHost",
        "postgresqlUsername",
        "postgresqlPassword",
        "postgresqlDatabase",
        "postgresqlParams",
        "service",
    },
    "daemon": {
        "enabled",
        "image",
        "runCoordinator",
        "heartbeatTolerance",
        "env",
        "envConfigMaps",
        "envSecrets",
        "deploymentLabels",
        "labels",
        "nodeSelector",
        "affinity",
        "tolerations",
        "podSecurityContext",
        "securityContext",
        "resources",
        "checkDbReadyInitContainer",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "annotations",
        "runMonitoring",
        "runRetries",
        "sensors",
        "schedules",
        "backfills",
        "schedulerName",
        "logFormat",
        "volumeMounts",
        "volumes",
        "initContainerResources",
        "extraContainers",
        "extraPrependedInitContainers",
    },
    "runRetries": {"enabled", "maxRetries", "retryOnAssetOrOpFailure"},
    "concurrency": {"enabled", "pools", "runs"},
    "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
}


def render_k8s_run_launcher(values: dict, release: str = "dagster", namespace: str = "hedgegrid") -> dict:
    """The run_launcher config the chart writes into its instance ConfigMap from these values:
    a transcription of its `dagsterYaml.runLauncher.k8s` template helper (chart 1.13.27)."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    g = values.get("global", {})
    out = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or namespace,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": g.get("serviceAccountName") or release,
        "dagster_home": g.get("dagsterHome", "/opt/dagster/dagster_home"),
        "instance_config_map": f"{release}-instance",
        "postgres_password_secret": g.get("postgresqlSecretName", "dagster-postgresql-secret"),
    }
    if k8s.get("kubeconfigFile"):
        out["kubeconfig_file"] = k8s["kubeconfigFile"]
    if values.get("imagePullSecrets"):
        out["image_pull_secrets"] = values["imagePullSecrets"]
    for key, name in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        if k8s.get(key):
            out[name] = [e["name"] for e in k8s[key] if "name" in e]
    for key, name in (("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"),
                      ("labels", "labels"), ("resources", "resources"), ("schedulerName", "scheduler_name"),
                      ("securityContext", "security_context")):  # fmt: skip
        if k8s.get(key):
            out[name] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        out["fail_pod_on_run_failure"] = True
    return out


def test_helm_values_have_the_keys_the_chart_reads():
    values = _values()
    assert set(values) <= CHART_KEYS["top"]
    assert set(values["global"]) <= CHART_KEYS["global"]
    uds = values["dagster-user-deployments"]
    assert uds["enabled"] and uds["enableSubchart"] and set(uds) <= CHART_KEYS["userDeployments"]
    (deployment,) = uds["deployments"]
    assert set(deployment) <= CHART_KEYS["deployment"]
    assert {"name", "image", "port"} <= set(deployment) and set(deployment["image"]) == {
        "repository",
        "tag",
        "pullPolicy",
    }
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert deployment["image"]["tag"] == version
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert set(values["runLauncher"]["config"]["k8sRunLauncher"]) <= CHART_KEYS["k8sRunLauncher"]
    daemon = values["dagsterDaemon"]
    assert set(daemon) <= CHART_KEYS["daemon"] and set(daemon["runRetries"]) <= CHART_KEYS["runRetries"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    # The chart fails when limits are set both on the coordinator and under concurrency.
    assert not daemon["runCoordinator"].get("config", {}).get("queuedRunCoordinator")
    conc = values["concurrency"]
    assert set(conc) <= CHART_KEYS["concurrency"] and set(conc["pools"]) <= CHART_KEYS["pools"]
    assert set(conc["runs"]) <= CHART_KEYS["runs"]
    # External Postgres, every key the chart requires, the password only in the Secret.
    pg = values["postgresql"]
    assert set(pg) <= CHART_KEYS["postgresql"] and pg["enabled"] is False
    assert {"postgresqlHost", "postgresqlUsername", "postgresqlDatabase", "service"} <= set(pg)
    assert pg["postgresqlPassword"] == "" and values["generatePostgresqlPasswordSecret"] is False
    assert pg["postgresqlScheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3
    # The same queue limits and pools as deploy/dagster.yaml, in the chart's spelling.
    local = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]
    assert conc["enabled"] is True
    assert conc["pools"] == {
        "granularity": local["pools"]["granularity"],
        "defaultLimit": local["pools"]["default_limit"],
    }
    assert conc["runs"]["tagConcurrencyLimits"] == local["runs"]["tag_concurrency_limits"]
    assert conc["runs"]["maxConcurrentRuns"] == _k8s_instance()["concurrency"]["runs"]["max_concurrent_runs"]
    # S3, DAGSTER_POSTGRES_URL and the Tardis key reach every pod from one Secret; nothing secret here.
    for section in (deployment, values["runLauncher"]["config"]["k8sRunLauncher"], daemon, values["dagsterWebserver"]):
        assert {"name": "hedgegrid-env"} in section["envSecrets"]
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert not re.search(r"(?i)(aws_secret_access_key|password|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{8,}", text)


def test_helm_values_render_a_run_launcher_dagster_k8s_accepts():
    rendered = render_k8s_run_launcher(_values())
    result = process_config(K8sRunLauncher.config_type(), rendered)
    assert result.success, result.errors
    # ...the one deploy/dagster-k8s.yaml spells out (which reads the URL from hedgegrid-env instead
    # of the chart's password secret).
    expected = _k8s_instance()["run_launcher"]["config"]
    assert {k: v for k, v in rendered.items() if k != "postgres_password_secret"} == expected
