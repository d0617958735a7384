"""``make bundle``: each function's zip is reproducible and imports on its own, as Cloud Functions runs it.

How "a clean venv" is built here, and why: installing the pinned requirements into a fresh venv
per run would need the network (or minutes of pip), so the test makes a pip-less venv whose
site-packages holds one ``.pth`` line pointing at the project venv's site-packages. A ``.pth`` line
only appends that folder to ``sys.path``; the ``.pth`` files inside it are *not* executed, so the
editable install of ``calsync`` (``__editable__.calsync-*.pth``) stays inactive. The third-party
dependencies resolve (same pinned versions the buildpack installs from the bundle's
requirements.txt), but ``calsync`` and ``main`` can only come from the unzipped bundle, which is
the working directory, as on Cloud Functions. ``PYTHONNOUSERSITE`` and a scrubbed environment keep
user site-packages and ``PYTHONPATH`` out. The test then asserts where ``main`` and ``calsync``
were imported from and that the Terraform entry point is a callable of ``main``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.infra.conftest import FUNCTIONS, REPO, TfFolder

PROBE = """
import json, sys
import main, calsync, calsync.config
entry = sys.argv[1]
repo_code = [m.__name__ for m in list(sys.modules.values())
             if any(str(getattr(m, "__file__", None) or "").startswith(p) for p in sys.argv[2:])]
print(json.dumps({"main": main.__file__, "calsync": calsync.__file__,
                  "entry_callable": callable(getattr(main, entry, None)), "repo_code": repo_code}))
"""


def _load_bundle_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calsync_bundle_script", REPO / "scripts" / "bundle.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundle_script = _load_bundle_script()


def _build(function: str, out_dir: Path) -> Path:
    main = REPO / "functions" / function / "main.py"
    if not main.is_file():
        pytest.fail(f"{main.relative_to(REPO)} does not exist yet: the {function} bundle cannot be built")
    path: Path = bundle_script.write_bundle(function, out_dir)
    return path


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pip-less venv seeing the project's third-party packages but not the repo's code."""
    root = tmp_path_factory.mktemp("clean-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    Path(site, "calsync-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return python


@pytest.mark.parametrize("function", FUNCTIONS)
def test_bundle_is_reproducible(function: str, tmp_path: Path) -> None:
    """Two builds are byte-identical, hold main.py + calsync + requirements.txt, and nothing else."""
    first = _build(function, tmp_path / "a")
    second = _build(function, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert bundle_script.md5_of(first) == hashlib.md5(first.read_bytes(), usedforsecurity=False).hexdigest()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {"main.py", "requirements.txt", "calsync/__init__.py", "calsync/config.py"} <= set(names)
        assert all(name in {"main.py", "requirements.txt"} or name.startswith("calsync/") for name in names)
        assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
        # The admin CLI (typer, rich: not runtime dependencies) stays out of the functions.
        assert not [name for name in names if name.startswith("calsync/cli/")]
        # Nor do the fakes: they serve tests, devstack and bench.
        assert not [name for name in names if name.startswith("calsync/testing/")]
        assert {info.date_time for info in archive.infolist()} == {bundle_script.FIXED_DATE_TIME}
        assert archive.read("main.py") == (REPO / "functions" / function / "main.py").read_bytes()
        assert archive.read("requirements.txt") == (REPO / "requirements.txt").read_bytes()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_bundle_imports_in_a_clean_venv(
    function: str, clean_python: Path, calsync_module: TfFolder, tmp_path: Path
) -> None:
    """The unzipped bundle imports with only its own code, and has the Terraform entry point."""
    with zipfile.ZipFile(_build(function, tmp_path / "build")) as archive:
        archive.extractall(tmp_path / "src")
    source = tmp_path / "src"
    entry_point = calsync_module.locals["functions"][function]["entry_point"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    repo_code_dirs = [str(REPO / part) for part in ("shared", "functions", "devstack", "tests")]
    result = subprocess.run(
        [str(clean_python), "-c", PROBE, entry_point, *repo_code_dirs],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"importing the {function} bundle failed:\n{result.stderr[-3000:]}"
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(probe["main"]).resolve() == (source / "main.py").resolve()
    assert Path(probe["calsync"]).resolve().is_relative_to(source.resolve())
    assert probe["entry_callable"], f"main.{entry_point} (the Terraform entry point) is not callable"
    assert probe["repo_code"] == [], f"modules loaded from the repo instead of the bundle: {probe['repo_code']}"
