"""`make bench`'s runner: a part run as a script of its own (html, inventory, stream_sshd) that
crashes is reported as failed, as an in-process part that raises is, and the run exits 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

#: run_all.main with the html part replaced by a script given on the command line, and the
#: results written to a folder given there too (never benchmarks/results/).
DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import measure, run_all
measure.RESULTS = Path(sys.argv[3])
run_all.VENV_PY = Path(sys.executable)  # the repository's .venv, which a worktree may lack
run_all.RUNNERS["html"] = run_all._script(sys.argv[2])
sys.exit(run_all.main(["--only", "html"]))
"""


@pytest.mark.parametrize(("code", "rc"), [("import sys; sys.exit(3)", 1), ("pass", 0)])
def test_a_script_part_that_fails_fails_the_run(code: str, rc: int, tmp_path: Path) -> None:
    script = tmp_path / "part.py"
    script.write_text(code + "\n")
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(BENCH), str(script), str(tmp_path / "results")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == rc, out.stdout + out.stderr
    assert ("FAILED to run: html" in out.stdout) == (rc == 1), out.stdout
    assert (tmp_path / "results" / "all.json").is_file()
