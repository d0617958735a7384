"""Commands that start servers stop them when they are stopped: SIGTERM runs their ``finally`` blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


def test_sigterm_runs_the_commands_finally_block(tmp_path: Path) -> None:
    """A child that installs the handler, then waits in ``try``: SIGTERM → its ``finally`` runs, exit 143."""
    marker = tmp_path / "stopped"
    script = textwrap.dedent(
        f"""
        import sys, time
        from devstack import procs
        procs.exit_on_sigterm()
        try:
            print("ready", flush=True)  # inside the try: the signal may come at once
            time.sleep(60)
        finally:
            open({str(marker)!r}, "w").write("stack stopped")
        """
    )
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "stack stopped"
