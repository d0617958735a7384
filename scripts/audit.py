"""``make audit``: a dependency vulnerability audit (pip-audit) of the hashed runtime lock.

Exit codes: 0 when no known vulnerability was found, or when no advisory service answered (then it
says how many packages went unaudited, so a pipeline without one is not failed by its network);
1 when a vulnerability is known; 2 when pip-audit itself failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

AUDIT_TIMEOUT_S = 600


def main(argv: list[str]) -> int:
    """Audit the lock given as the only argument."""
    if len(argv) != 1:
        print("usage: audit.py REQUIREMENTS_LOCK", file=sys.stderr)
        return 2
    lock = Path(argv[0])
    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "--requirement",
        str(lock),
        "--require-hashes",
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=AUDIT_TIMEOUT_S, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed (exit {done.returncode}):\n{done.stderr.strip()}", file=sys.stderr)
        return 2
    packages = report.get("dependencies", [])
    skipped = [p for p in packages if p.get("skip_reason")]
    vulnerable = [p for p in packages if p.get("vulns")]
    audited = len(packages) - len(skipped)
    for package in vulnerable:
        ids = ", ".join(v["id"] for v in package["vulns"])
        print(f"VULNERABLE {package['name']}=={package['version']}: {ids}")
    if vulnerable:
        print(f"{len(vulnerable)} of {audited} audited packages have known vulnerabilities ({lock}).")
        return 1
    if packages and not audited:
        print(
            f"No advisory service answered from this machine: 0 of {len(packages)} packages of {lock} "
            "could be audited. Run `make audit` where PyPI's vulnerability data is reachable."
        )
        return 0
    note = f"; {len(skipped)} could not be audited" if skipped else ""
    print(f"No known vulnerabilities in {audited} packages of {lock}{note}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
