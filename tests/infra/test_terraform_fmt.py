"""``terraform fmt -check -recursive`` over infra/terraform (runs offline; needs the terraform binary)."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.infra.conftest import REPO, TF_ROOT


def test_terraform_is_formatted() -> None:
    """Every .tf/.tfvars file is in canonical format."""
    terraform = shutil.which("terraform")
    assert terraform, (
        "terraform is not on PATH: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)"
    )
    # No checkpoint call home and no user CLI config (its absence otherwise prints a warning).
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF_ROOT)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive infra/terraform`:\n{result.stdout}{result.stderr}"
