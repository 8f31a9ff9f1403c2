"""deploy/kubernetes/: every overlay rendered and checked without a cluster.

Rendering: ``kustomize.py`` beside this file, a small renderer of the kustomize features the
files use (no kustomize comes from the registries this project installs from), compared
object by object with the real tool wherever one is on the machine (kustomize v5, or kubectl
with it). Then every object is validated against the schemas of Kubernetes 1.30 and of the
newest release ``kubernetes-validate`` ships (strict: an unknown field is an error), and what
a schema cannot see is checked: the Role against the calls the provider makes, the server
Pod's label against the workspaces' NetworkPolicy, the Ingress's hosts against the server's
settings, no secret value in the repository. Schemas and a renderer, not a cluster.
"""

from __future__ import annotations

import ast
import base64
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_schemas
from tests.unit.deploy import kustomize

from dev8.core.naming import LABEL_ROLE
from dev8.core.resources import PRESETS
from dev8.providers.base import WorkspaceSpec
from dev8.providers.kubernetes.specs import SERVER_ROLE, ClusterOptions, network_policy
from dev8.server.routes.system import router as system_routes
from dev8.server.settings import ELSEWHERE, Settings, check_environment, load_settings
from dev8.store.secretbox import new_key

REPOSITORY = Path(__file__).resolve().parents[3]
DEPLOY = REPOSITORY / "deploy" / "kubernetes"
PROVIDER = REPOSITORY / "src" / "dev8" / "providers" / "kubernetes"
OVERLAYS = ("try-it", "production")
VERSIONS = ("1.30", kubernetes_schemas.latest_version())
# The files the operator makes, each with a .example beside it; never committed.
OPERATOR_FILES = (
    "base/secret.env",
    "overlays/try-it/postgres.env",
    "overlays/production/database.env",
)
SERVER_CONTAINER = "server"
# The provider's I/O (client, settings) is being written beside these manifests; until it is
# in the tree, the RBAC test compares the Role with what docs/kubernetes.md says it calls.
PROVIDER_IO = importlib.util.find_spec("dev8.providers.kubernetes.client") is not None
NAMESPACE = (
    importlib.import_module("dev8.providers.kubernetes.settings").NAMESPACE
    if importlib.util.find_spec("dev8.providers.kubernetes.settings")
    else "DEV8_KUBERNETES_NAMESPACE"
)

Object = dict[str, Any]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/kubernetes/ with the operator's files made as the docs say."""
    root = tmp_path_factory.mktemp("deploy") / "kubernetes"
    shutil.copytree(
        DEPLOY, root, ignore=shutil.ignore_patterns(*(Path(f).name for f in OPERATOR_FILES))
    )
    write_operator_files(root)
    return root


def write_operator_files(root: Path) -> None:
    (root / "base/secret.env").write_text(f"DEV8_SECRET_KEY={new_key()}\n")
    (root / "overlays/try-it/postgres.env").write_text(f"POSTGRES_PASSWORD={'ab12' * 12}\n")
    url = "postgresql://dev8:s3cret-in-a-test@db.example.com:5432/dev8"
    (root / "overlays/production/database.env").write_text(f"DEV8_DATABASE_URL={url}\n")


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, list[Object]]:
    return {overlay: kustomize.render(tree / "overlays" / overlay) for overlay in OVERLAYS}


def find(objects: list[Object], kind: str, name: str | None = None) -> Object:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def server_container(objects: list[Object]) -> Object:
    pod = find(objects, "Deployment", "dev8-server")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == SERVER_CONTAINER)


def server_environment(objects: list[Object]) -> dict[str, str]:
    """The server's environment as the kubelet gives it: the ConfigMap and Secret of
    ``envFrom``, then ``env`` (plain values, ``$(NAME)`` expanded as Kubernetes does)."""
    container = server_container(objects)
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            environment.update(secret_data(find(objects, "Secret", source["secretRef"]["name"])))
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            environment[variable["name"]] = secret_data(find(objects, "Secret", ref["name"]))[
                ref["key"]
            ]
        elif "value" in variable:
            environment[variable["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: environment.get(m[1], m[0]), variable["value"]
            )
    return environment


def secret_data(secret: Object) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


# Rendering ---------------------------------------------------------------------------------


def real_kustomize() -> list[str] | None:
    """``kustomize build`` or ``kubectl kustomize`` if the machine has a kustomize v5."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        version = subprocess.run(
            ["kubectl", "version", "--client"], capture_output=True, text=True, check=False
        ).stdout
        if re.search(r"Kustomize Version: v([5-9]|\d\d)\.", version):
            return ["kubectl", "kustomize"]
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kustomize(
    tree: Path, rendered: dict[str, list[Object]], overlay: str
):
    """The stand-in renders exactly what kustomize does, hashed names included."""
    command = real_kustomize()
    if command is None:
        pytest.skip("no kustomize v5 on this machine (kustomize, or kubectl >= 1.27)")
    output = subprocess.run(
        [*command, str(tree / "overlays" / overlay)], capture_output=True, text=True, check=True
    ).stdout

    def by_name(objects: Iterator[Object] | list[Object]) -> dict[tuple[str, str], Object]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objects}

    assert by_name(rendered[overlay]) == by_name(yaml.safe_load_all(output))


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(kustomize.KustomizeError, match="namePrefix"):
        kustomize.render(tmp_path)


def test_an_address_set_in_an_overlay_reaches_the_ingress(tree: Path, tmp_path: Path):
    """The hosts are copied after the overlay's own ConfigMap values are merged (a
    component), not from the base's defaults."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(tree, copy)
    overlay = copy / "overlays" / "production" / "kustomization.yaml"
    text = overlay.read_text()
    text = text.replace("https://dev8.example.com", "https://dev8.corp.test")
    overlay.write_text(text.replace("=apps.dev8.example.com", "=ide.corp.test"))
    ingress = find(kustomize.render(overlay.parent), "Ingress")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [
        "dev8.corp.test",
        "*.ide.corp.test",
    ]


# Schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid(rendered: dict[str, list[Object]], overlay: str, version: str):
    kinds = set()
    for obj in rendered[overlay]:
        kubernetes_schemas.validate(obj, version, strict=True)
        kinds.add(obj["kind"])
    expected = {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret"}
    expected |= {"PersistentVolumeClaim", "Deployment", "Service", "Ingress"}
    if overlay == "try-it":
        expected |= {"StatefulSet", "NetworkPolicy"}
    assert kinds == expected


def test_the_schemas_refuse_a_misspelt_field(rendered: dict[str, list[Object]]):
    """The validation has teeth on these objects too."""
    deployment = find(rendered["production"], "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    try:
        with pytest.raises(kubernetes_schemas.ValidationError, match="readinesProbe"):
            kubernetes_schemas.validate(deployment, VERSIONS[-1], strict=True)
    finally:
        del deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"]


# What the server is given ------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_server_starts_with_its_environment(
    rendered: dict[str, list[Object]], overlay: str, monkeypatch: pytest.MonkeyPatch
):
    """Every DEV8_* variable is a setting or read elsewhere in dev8 (none misspelt), and
    the settings pass the server's own start-up checks: a real key, a database URL,
    addresses that go together."""
    environment = server_environment(rendered[overlay])
    for name in [n for n in os.environ if n.startswith("DEV8_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    settings.check()
    check_environment(environment)
    unknown = {n for n in environment if n.startswith("DEV8_")} - set(_setting_names()) - ELSEWHERE
    assert unknown <= {NAMESPACE}, unknown  # the provider's, read by its settings module
    assert environment["DEV8_PROVIDER"] == "kubernetes"
    assert urlsplit(settings.database()).scheme == "postgresql"
    if overlay == "try-it":
        password = secret_data(
            find(rendered[overlay], "Secret", _generated("dev8-postgres", rendered[overlay]))
        )
        assert (
            settings.database()
            == f"postgresql://dev8:{password['POSTGRES_PASSWORD']}@dev8-postgres:5432/dev8"
        )


def _setting_names() -> list[str]:
    return ["DEV8_" + name.upper() for name in Settings.model_fields]


def _generated(prefix: str, objects: list[Object]) -> str:
    (name,) = [
        o["metadata"]["name"]
        for o in objects
        if re.fullmatch(rf"{prefix}-[a-z0-9]{{10}}", o["metadata"]["name"])
    ]
    return name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_server_process(rendered: dict[str, list[Object]], overlay: str):
    """Replicas 1 and Recreate: a server keeps state in its memory and its directory
    (base/deployment.yaml says what), so two must never run at once."""
    spec = find(rendered[overlay], "Deployment", "dev8-server")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_server_runs_confined(rendered: dict[str, list[Object]], overlay: str):
    pod = find(rendered[overlay], "Deployment", "dev8-server")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = server_container(rendered[overlay])
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"requests", "limits"} <= set(container["resources"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_probes_ask_the_servers_health_endpoint(
    rendered: dict[str, list[Object]], overlay: str
):
    paths = {getattr(route, "path", None) for route in system_routes.routes}
    container = server_container(rendered[overlay])
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] in paths and check["path"] == "/healthz", probe
        assert check["port"] in port_names, probe
    assert port_names[container["ports"][0]["name"]] == int(
        server_environment(rendered[overlay])["DEV8_PORT"]
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_both_images_come_from_the_overlay(
    tree: Path, rendered: dict[str, list[Object]], overlay: str
):
    kustomization = yaml.safe_load((tree / "overlays" / overlay / "kustomization.yaml").read_text())
    images = {
        i["name"]: f"{i.get('newName', i['name'])}:{i['newTag']}" for i in kustomization["images"]
    }
    assert server_container(rendered[overlay])["image"] == images["dev8/server"]
    assert server_environment(rendered[overlay])["DEV8_IMAGES"] == images["dev8/workspace"]


# Reaching workspaces, and being reached ----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_workspaces_network_policy_admits_the_server(
    rendered: dict[str, list[Object]], overlay: str
):
    """The server's Pods match the peer of the NetworkPolicy the provider gives each
    workspace, in the namespace the provider is told to use."""
    deployment = find(rendered[overlay], "Deployment", "dev8-server")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_ROLE] == SERVER_ROLE
    namespace = deployment["metadata"]["namespace"]
    (variable,) = [v for v in server_container(rendered[overlay])["env"] if v["name"] == NAMESPACE]
    assert variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    spec = WorkspaceSpec("abc123def456", "demo", "alice", "registry.invalid/w:1", PRESETS["small"])
    policy = network_policy(spec, ClusterOptions(namespace=namespace))
    (peer,) = policy["spec"]["ingress"][0]["from"]
    assert "namespaceSelector" not in peer  # the policy's own namespace: the server's
    assert peer["podSelector"]["matchLabels"].items() <= labels.items()
    assert not deployment["spec"]["selector"]["matchLabels"].keys() & {LABEL_ROLE}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_covers_the_main_and_the_wildcard_host(
    rendered: dict[str, list[Object]], overlay: str
):
    objects = rendered[overlay]
    environment = server_environment(objects)
    main = urlsplit(environment["DEV8_PUBLIC_URL"]).hostname
    wildcard = "*." + environment["DEV8_APPS_DOMAIN"]
    ingress = find(objects, "Ingress")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [main, wildcard]
    assert [tls["hosts"] for tls in ingress["spec"]["tls"]] == [[main], [wildcard]]
    service = find(objects, "Service", "dev8-server")
    pod_labels = find(objects, "Deployment", "dev8-server")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    for rule in ingress["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert path["path"] == "/" and path["pathType"] == "Prefix"
        assert path["backend"]["service"] == {"name": "dev8-server", "port": {"name": "http"}}
    assert service["spec"]["ports"][0]["targetPort"] == "http"


# RBAC --------------------------------------------------------------------------------------

# exec is a WebSocket (an HTTP GET): ``get``, and from Kubernetes 1.35 ``create`` too.
EXEC = {("", "pods/exec"): {"create", "get"}}
ATTACH = {("", "pods/attach"): {"create", "get"}}  # the same for attach
# What the provider calls (docs/kubernetes.md, "RBAC"), for a tree without its I/O module.
DOCUMENTED = {
    ("", "pods"): {"create", "delete", "get", "list"},
    ("", "pods/log"): {"get"},
    **EXEC,
    **ATTACH,
    ("", "persistentvolumeclaims"): {"create", "delete", "get", "list", "patch"},
    ("", "secrets"): {"create", "delete", "get", "list"},
    ("networking.k8s.io", "networkpolicies"): {"create", "delete", "get"},
}


def provider_permissions() -> dict[tuple[str, str], set[str]]:
    """(API group, resource) -> verbs, read from the provider's source: every call of its
    ``KubeApi`` (``create/get/list/patch/delete/stream``) with the kind it names, or every
    kind the client knows when the kind is a variable (``create(manifest)``), and exec."""
    if not PROVIDER_IO:
        return DOCUMENTED
    paths = importlib.import_module("dev8.providers.kubernetes.client").PATHS
    kinds = {kind: _group_and_resource(path) for kind, path in paths.items()}
    verbs = {"create": "create", "get": "get", "list": "list", "patch": "patch", "delete": "delete"}
    found: dict[tuple[str, str], set[str]] = {}
    for source in sorted(PROVIDER.glob("*.py")):
        text = source.read_text()
        for websocket, granted in (("exec", EXEC), ("attach", ATTACH)):
            if f"connect_get_namespaced_pod_{websocket}" in text:
                for key, names in granted.items():
                    found.setdefault(key, set()).update(names)
        for call in ast.walk(ast.parse(text)):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            method, target = call.func.attr, ast.unparse(call.func.value)
            if not target.endswith("api") or method not in {*verbs, "stream"} or not call.args:
                continue
            first = call.args[0]
            named = (
                first.value
                if isinstance(first, ast.Constant) and isinstance(first.value, str)
                else None
            )
            for kind in [named] if named else list(kinds):
                group, resource = kinds[kind]
                if method == "stream":  # a subresource's body: stream(kind, name, sub, ...)
                    resource += "/" + ast.literal_eval(call.args[2])
                found.setdefault((group, resource), set()).add(verbs.get(method, "get"))
    return found


def _group_and_resource(path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/")
    return ("" if parts[0] == "api" else parts[1]), parts[-1]


def role_permissions(role: Object) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_the_scan_of_the_provider_finds_its_calls():
    """The scan below reads real calls (a provider rewritten so that it finds none would
    make the RBAC test vacuous)."""
    found = provider_permissions()
    assert {"create", "delete", "get", "list"} <= found[("", "pods")]
    assert ("", "pods/log") in found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_role_grants_exactly_what_the_provider_calls(
    rendered: dict[str, list[Object]], overlay: str
):
    objects = rendered[overlay]
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = find(objects, "Role", "dev8-server")
    assert role_permissions(role) == provider_permissions()
    binding = find(objects, "RoleBinding", "dev8-server")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "dev8-server",
    }
    account = find(objects, "ServiceAccount", "dev8-server")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == account["namespace"]
    pod = find(objects, "Deployment", "dev8-server")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]


# Secrets -----------------------------------------------------------------------------------


def test_no_secret_value_is_in_the_repository():
    """The generators read files the operator makes: ignored by git, never tracked; what is
    committed are examples whose placeholders the server refuses, and no manifest carries a
    Secret's data."""
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/kubernetes"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in OPERATOR_FILES:
        path = f"deploy/kubernetes/{name}"
        assert path not in tracked
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPOSITORY, check=False)
        assert ignored.returncode == 0, f"{path} is not ignored by git"
        assert (REPOSITORY / (path + ".example")).is_file()
    for manifest in DEPLOY.rglob("*.yaml"):
        for document in yaml.safe_load_all(manifest.read_text()):
            if document and document.get("kind") == "Secret":
                assert not {"data", "stringData"} & set(document), manifest
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / "base/secret.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    with pytest.raises(Exception, match="placeholder"):
        Settings(secret_key=example["DEV8_SECRET_KEY"]).check()
