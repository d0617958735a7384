"""Fixtures for the infrastructure tests: parsed Terraform (python-hcl2) and paths.

``terraform init/validate`` cannot run offline (the google provider cannot be downloaded), so the
configuration is checked structurally: each folder's ``*.tf`` files are parsed with python-hcl2
into plain dicts (quotes stripped, blocks as lists) and merged per block kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TF_ROOT = REPO / "infra" / "terraform"
ENVS = ("dev", "stg", "prod")
FUNCTIONS = ("webhook", "sync", "renew", "publish")
_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


def parse_file(path: Path) -> dict[str, Any]:
    """One .tf or .tfvars file as python-hcl2's dict."""
    with path.open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = hcl2.load(handle, serialization_options=_OPTIONS)
    return parsed


@dataclass
class TfFolder:
    """The merged blocks of one Terraform module folder."""

    path: Path
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        """The body of ``kind.name`` (KeyError names what is missing)."""
        try:
            return self.resources[kind][name]
        except KeyError:
            raise KeyError(f"{kind}.{name} not declared in {self.path}") from None

    def iter_resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(kind, name, body) of every resource."""
        for kind, by_name in self.resources.items():
            for name, body in by_name.items():
                yield kind, name, body


def load_folder(path: Path) -> TfFolder:
    """Parse and merge every ``*.tf`` file of a module folder."""
    folder = TfFolder(path=path)
    texts = []
    for tf in sorted(path.glob("*.tf")):
        texts.append(tf.read_text(encoding="utf-8"))
        parsed = parse_file(tf)
        for block in parsed.get("locals", []):
            folder.locals.update(block)
        for block in parsed.get("variable", []):
            folder.variables.update(block)
        for block in parsed.get("output", []):
            folder.outputs.update(block)
        for block in parsed.get("module", []):
            folder.modules.update(block)
        for block in parsed.get("resource", []):
            for kind, by_name in block.items():
                folder.resources.setdefault(kind, {}).update(by_name)
        folder.terraform.extend(parsed.get("terraform", []))
    folder.text = "\n".join(texts)
    return folder


@pytest.fixture(scope="session")
def calsync_module() -> TfFolder:
    """modules/calsync, merged."""
    return load_folder(TF_ROOT / "modules" / "calsync")


@pytest.fixture(scope="session")
def function_module() -> TfFolder:
    """modules/function, merged."""
    return load_folder(TF_ROOT / "modules" / "function")


@pytest.fixture(scope="session")
def env_roots() -> dict[str, TfFolder]:
    """envs/{dev,stg,prod}, merged."""
    return {env: load_folder(TF_ROOT / "envs" / env) for env in ENVS}
