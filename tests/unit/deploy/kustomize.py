"""A small kustomize, limited to the features deploy/kubernetes/ uses, for the engine-free
suite: no kustomize binary comes from the registries this project installs from (PyPI, npm,
Debian: Debian's kubernetes-client is kubectl 1.20, whose kustomize v2 predates `labels`,
`patches`, `replacements` and components).

It is a stand-in, so it is checked against the real tool wherever one is on the machine:
``test_the_renderer_agrees_with_kustomize`` renders every overlay with ``kustomize build`` or
``kubectl kustomize`` (kustomize v5) and compares every object. A kustomization field it does
not implement is an error, never skipped.

What it does, in kustomize's order within each kustomization: resources (files and
directories), generators (ConfigMap literals, Secret env files, ``behavior: merge``),
components, then patches (strategic merge of whole objects), namespace, labels (``pairs``
only: object metadata), replicas, images (containers and the fields ``configurations:``
adds) and replacements (``delimiter``/``index`` options). Generated names get kustomize's
content hash at the end, and the references to them in Pod templates follow.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
SUPPORTED = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "components",
    "configMapGenerator",
    "secretGenerator",
    "configurations",
    "patches",
    "replicas",
    "images",
    "replacements",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Strategic merge: the lists merged item by item, by this key (from the API's
# x-kubernetes-patch-merge-key); every other list is replaced by the patch's.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


class KustomizeError(Exception):
    pass


@dataclass
class Build:
    objects: list[Object] = field(default_factory=list)
    generated: set[tuple[str, str]] = field(default_factory=set)  # (kind, name)
    image_fields: list[tuple[str, str]] = field(default_factory=list)  # (kind, path)


def render(directory: Path) -> list[Object]:
    """What ``kustomize build directory`` prints, as objects (in no particular order)."""
    build = Build()
    _accumulate(directory, build)
    _hash_generated_names(build)
    return build.objects


def _accumulate(directory: Path, build: Build) -> None:
    kustomization = _load_kustomization(directory)
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            _accumulate(path, build)
        else:
            build.objects.extend(_load_documents(path))
    for entry in kustomization.get("configurations", []):
        config = yaml.safe_load((directory / entry).read_text())
        build.image_fields.extend((spec["kind"], spec["path"]) for spec in config["images"])
    _generate(directory, kustomization, build)
    for entry in kustomization.get("components", []):
        _accumulate(directory / entry, build)
    _transform(directory, kustomization, build)


def _load_kustomization(directory: Path) -> dict[str, Any]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{directory}: this renderer does not implement {sorted(unknown)}")
    return kustomization


def _load_documents(path: Path) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _find(objects: list[Object], kind: str, name: str) -> Object:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KustomizeError(f"no {kind} {name}")


# Generators ---------------------------------------------------------------------------


def _generate(directory: Path, kustomization: dict[str, Any], build: Build) -> None:
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in kustomization.get(key, []):
            data = _generator_data(directory, generator)
            if kind == "Secret":
                data = {k: encode_base64(v) for k, v in data.items()}
            name = generator["name"]
            if generator.get("behavior", "create") == "merge":
                _find(build.objects, kind, name)["data"].update(data)
                continue
            obj: Object = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
            obj["data"] = data
            if kind == "Secret":
                obj["type"] = "Opaque"
            build.objects.append(obj)
            build.generated.add((kind, name))


def encode_base64(value: str) -> str:
    """A Secret's value as kustomize v5 writes it (kyaml's encodeBase64): base64 in lines of
    70 characters, each ending in a newline when there is more than one (by its count)."""
    encoded = base64.b64encode(value.encode()).decode()
    lines = [encoded[i : i + 70] for i in range(0, len(encoded), 70)]
    if len(encoded) // 70 + 1 == 1:
        return encoded
    return "".join(line + "\n" for line in lines)


def _generator_data(directory: Path, generator: dict[str, Any]) -> dict[str, str]:
    unknown = set(generator) - {"name", "behavior", "literals", "envs"}
    if unknown:
        raise KustomizeError(f"generator fields not implemented: {sorted(unknown)}")
    pairs = list(generator.get("literals", []))
    for env_file in generator.get("envs", []):
        lines = (line.strip() for line in (directory / env_file).read_text().splitlines())
        pairs.extend(line for line in lines if line and not line.startswith("#"))
    data = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        data[key] = value
    return data


def _hash_generated_names(build: Build) -> None:
    renamed = {}
    for obj in build.objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if (kind, name) in build.generated:
            renamed[kind, name] = obj["metadata"]["name"] = f"{name}-{content_hash(obj)}"
    for obj in build.objects:
        for pod in _pod_specs(obj):
            _rename_references(pod, renamed)


def content_hash(obj: Object) -> str:
    """kustomize's name suffix: SHA-256 of Go's JSON of kind, name, data (and a Secret's
    type), its first 10 hex digits with 0, 1, 3, a, e made letters (never all digits, no
    vowels). The name kustomize v5 hashes is empty (found by comparing with its output)."""
    encoded: dict[str, Any] = {"kind": obj["kind"], "name": "", "data": obj.get("data", {})}
    if obj["kind"] == "Secret":
        encoded["type"] = obj.get("type", "Opaque")
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escape)  # Go's json.Marshal escapes these
    digits = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digits.translate(str.maketrans("013ae", "ghkmt"))


def _rename_references(pod: Object, renamed: dict[tuple[str, str], str]) -> None:
    def rename(ref: Object | None, kind: str, key: str = "name") -> None:
        if ref is not None and (kind, ref.get(key)) in renamed:
            ref[key] = renamed[kind, ref[key]]

    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            rename(source.get("configMapRef"), "ConfigMap")
            rename(source.get("secretRef"), "Secret")
        for variable in container.get("env", []):
            value_from = variable.get("valueFrom", {})
            rename(value_from.get("configMapKeyRef"), "ConfigMap")
            rename(value_from.get("secretKeyRef"), "Secret")
    for volume in pod.get("volumes", []):
        rename(volume.get("configMap"), "ConfigMap")
        rename(volume.get("secret"), "Secret", "secretName")


def _pod_specs(obj: Object) -> list[Object]:
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    if obj["kind"] in WORKLOADS:
        return [obj["spec"]["template"]["spec"]]
    return []


# Transformers -------------------------------------------------------------------------


def _transform(directory: Path, kustomization: dict[str, Any], build: Build) -> None:
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise KustomizeError(f"only whole-object patches by path are implemented: {entry}")
        for patch in _load_documents(directory / entry["path"]):
            target = _find(build.objects, patch["kind"], patch["metadata"]["name"])
            target.update(strategic_merge(target, patch))
    namespace = kustomization.get("namespace")
    if namespace:
        _set_namespace(build.objects, namespace)
    for group in kustomization.get("labels", []):
        if set(group) != {"pairs"}:
            raise KustomizeError(f"only label pairs on metadata are implemented: {group}")
        for obj in build.objects:
            obj["metadata"].setdefault("labels", {}).update(group["pairs"])
    for replica in kustomization.get("replicas", []):
        for obj in build.objects:
            if obj["kind"] in WORKLOADS and obj["metadata"]["name"] == replica["name"]:
                obj["spec"]["replicas"] = replica["count"]
    for image in kustomization.get("images", []):
        for obj in build.objects:
            _set_images(obj, image, build.image_fields)
    for replacement in kustomization.get("replacements", []):
        _replace(build.objects, replacement)


def strategic_merge(original: Any, patch: Any, key: str | None = None) -> Any:
    if isinstance(original, dict) and isinstance(patch, dict):
        merged = dict(original)
        for name, value in patch.items():
            merged[name] = (
                strategic_merge(original[name], value, name) if name in original else value
            )
        return merged
    if isinstance(original, list) and isinstance(patch, list) and key in MERGE_KEYS:
        by = MERGE_KEYS[key]
        patched = {item[by]: item for item in patch}
        known = {item[by] for item in original}
        # kustomize puts the patch's new items first.
        added = [item for item in patch if item[by] not in known]
        return added + [
            strategic_merge(item, patched[item[by]]) if item[by] in patched else item
            for item in original
        ]
    return copy.deepcopy(patch)


def _set_namespace(objects: list[Object], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects", []):
            if subject["kind"] == "ServiceAccount":
                subject["namespace"] = namespace


def _set_images(obj: Object, image: dict[str, str], fields: list[tuple[str, str]]) -> None:
    for pod in _pod_specs(obj):
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            container["image"] = _new_image(container["image"], image)
    for kind, path in fields:
        if obj["kind"] == kind:
            *parents, last = path.split("/")
            holder = obj
            for part in parents:
                holder = holder.get(part, {})
            if last in holder:
                holder[last] = _new_image(holder[last], image)


def _new_image(reference: str, image: dict[str, str]) -> str:
    name, tag = reference, ""
    if ":" in reference.rsplit("/", 1)[-1]:
        name, tag = reference.rsplit(":", 1)
        tag = ":" + tag
    if name != image["name"]:
        return reference
    if "newTag" in image:
        tag = ":" + image["newTag"]
    return image.get("newName", name) + tag


def _replace(objects: list[Object], replacement: dict[str, Any]) -> None:
    source = replacement["source"]
    value = _get(_find(objects, source["kind"], source["name"]), source["fieldPath"])
    options = source.get("options", {})
    if options:
        value = value.split(options["delimiter"])[options["index"]]
    for target in replacement["targets"]:
        obj = _find(objects, target["select"]["kind"], target["select"]["name"])
        for path in target["fieldPaths"]:
            _set(obj, path, value, target.get("options", {}))


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _set(obj: Object, path: str, value: str, options: dict[str, Any]) -> None:
    *parents, last = path.split(".")
    holder = _get(obj, ".".join(parents))
    index = int(last) if isinstance(holder, list) else last
    if options:
        parts = holder[index].split(options["delimiter"])
        parts[options["index"]] = value
        value = options["delimiter"].join(parts)
    holder[index] = value
