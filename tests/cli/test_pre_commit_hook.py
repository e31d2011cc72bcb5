"""This repository as a pre-commit hook repository: `pre-commit try-repo` on good and bad flows.

pre-commit installs the hook (`language: python`) into a virtual environment of its own,
from a commit of the hook repository: the test commits the working tree into a scratch
repository and points pre-commit at it, with its cache in a temporary folder, so the
installation is measured from cold every time (about two minutes on a 2-core machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT, base_env, write_flow

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "hook test",
    "GIT_AUTHOR_EMAIL": "hook@test.invalid",
    "GIT_COMMITTER_NAME": "hook test",
    "GIT_COMMITTER_EMAIL": "hook@test.invalid",
}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_IDENTITY}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def hook_repository(target: Path) -> Path:
    """The working tree as it is now (tracked and new files, nothing ignored), committed."""
    files = git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "hook under test")
    return target


GOOD = """
version: 1
flow: {id: good}
jobs:
  - id: a
    steps:
      - {id: s, type: check_items, inputs: {items: [1]}}
"""

BAD = """
version: 1
flow: {id: bad}
jobs:
  - id: a
    steps:
      - {id: s, type: check_items, inputs: {itmes: [1]}}
"""


def test_the_hook_passes_good_flows_and_fails_bad_ones_with_the_located_error(tmp_path):
    hooks = hook_repository(tmp_path / "hooks")
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    write_flow(project / "good.flow.yaml", GOOD)
    write_flow(project / "bad.flow.yaml", BAD)
    write_flow(project / "profiles.yaml", "dev: {}\n")  # not a flow: the hook's pattern leaves it alone
    git(project, "add", "-A")
    env = base_env(tmp_path, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-cache"))

    def try_repo(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PRE_COMMIT), "try-repo", str(hooks), "aetherflow-validate", "--files", *files],
            cwd=project, capture_output=True, text=True, env=env, timeout=1200,
        )

    started = time.monotonic()
    good = try_repo("good.flow.yaml", "profiles.yaml")
    installed_in = time.monotonic() - started
    assert good.returncode == 0, good.stdout + good.stderr
    assert "aetherflow validate" in good.stdout and "Passed" in good.stdout

    started = time.monotonic()
    bad = try_repo("good.flow.yaml", "bad.flow.yaml")
    warm = time.monotonic() - started
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert "bad.flow.yaml:6:45 at jobs[0].steps[0].inputs.itmes: unknown input 'itmes' for step type 'check_items'" in bad.stdout
    assert "did you mean 'items'?" in bad.stdout
    print(f"pre-commit: installing the hook and running it took {installed_in:.0f} s; running it again {warm:.1f} s")
