"""ESPnet's style habits, so that a regression fails CI: black, isort (profile black) and flake8 on the package,
the tests and the benchmarks, with the settings of pyproject.toml and .flake8 (line length 120)."""

import subprocess
import sys

import pytest
from conftest import REPO

CHECKED = ["espnet2_slap", "tests", "bench"]
TOOLS = {
    "black": ["black", "--check", "--diff", "--quiet"],
    "isort": ["isort", "--check-only", "--diff"],
    "flake8": ["flake8"],
}


@pytest.mark.parametrize("tool", TOOLS)
def test_code_is_formatted_and_lint_free(tool):
    proc = subprocess.run(
        [sys.executable, "-m", *TOOLS[tool], *CHECKED], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    fix = {"black": "black espnet2_slap tests bench", "isort": "isort espnet2_slap tests bench"}.get(tool, "by hand")
    assert proc.returncode == 0, f"{tool} found problems (fix: {fix}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
