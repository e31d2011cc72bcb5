"""Encrypted zip archives (``archive/zipfile`` with a password) against the real 7-Zip
and Info-ZIP programs: AES-256 archives made here open with ``7z x -pPASS``; archives
made by ``7z a -mem=AES256`` (AES) and ``zip -P`` (ZipCrypto) extract here; a wrong or
missing password is a clear error; the password shows nowhere."""

from __future__ import annotations

import builtins
import sqlite3
import subprocess
from pathlib import Path

import pytest

from aetherflow.core.connectors.builtin.archive_zipfile import ZipArchiveConnector
from aetherflow.core.errors import ConnectorError, MissingDependencyError
from tests.helpers import base_env, program, run_cli, write_flow

PASSWORD = "Zip-Pa55w0rd-7c1"


@pytest.fixture(scope="module")
def sevenzip():
    return program("7z", "p7zip-full")


@pytest.fixture(scope="module")
def infozip():
    return program("zip", "zip"), program("unzip", "unzip")


@pytest.fixture
def tree(tmp_path):
    """A small tree of files: text, binary (incompressible) and an empty file."""
    src = tmp_path / "src"
    (src / "sub dir").mkdir(parents=True)
    (src / "report.csv").write_text("id,name\n1,Zoë\n2,Łukasz\n", encoding="utf-8")
    (src / "sub dir" / "blob.bin").write_bytes(bytes(range(256)) * 4096)
    (src / "empty.txt").write_bytes(b"")
    return src


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _zip(password: str | None = PASSWORD, **config) -> ZipArchiveConnector:
    return ZipArchiveConnector(config={"password": password, **config}, options={})


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=120)


def test_archive_made_here_is_aes256_and_opens_with_7z(sevenzip, tree, tmp_path):
    archive = tmp_path / "out.zip"
    result = _zip().create(archive, [tree], tree)
    assert result["count"] == 3
    listing = _run(sevenzip, "l", "-slt", f"-p{PASSWORD}", str(archive)).stdout
    methods = [line for line in listing.splitlines() if line.startswith("Method = ")]
    assert sum(m.startswith("Method = AES-256") for m in methods) == 3, listing  # every file, not the directory
    extracted = tmp_path / "by7z"
    done = _run(sevenzip, "x", f"-p{PASSWORD}", f"-o{extracted}", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _files(extracted) == _files(tree)


def test_7z_refuses_our_archive_with_a_wrong_password(sevenzip, tree, tmp_path):
    archive = tmp_path / "out.zip"
    _zip().create(archive, [tree], tree)
    done = _run(sevenzip, "x", "-pnot-the-password", f"-o{tmp_path / 'x'}", str(archive))
    assert done.returncode != 0
    assert "Wrong password" in done.stdout + done.stderr


def test_archive_made_by_7z_with_aes256_extracts_here(sevenzip, tree, tmp_path):
    archive = tmp_path / "from7z.zip"
    done = _run(sevenzip, "a", "-tzip", f"-p{PASSWORD}", "-mem=AES256", str(archive), ".", cwd=tree)
    assert done.returncode == 0, done.stdout + done.stderr
    dest = tmp_path / "dest"
    names = _zip().extract(archive, dest)
    assert sorted(names) == sorted(_files(tree))
    assert _files(dest) == _files(tree)


def test_archive_made_by_zip_P_with_zipcrypto_extracts_here_like_unzip_P(infozip, tree, tmp_path):
    zip_bin, unzip_bin = infozip
    archive = tmp_path / "fromzip.zip"
    done = _run(zip_bin, "-r", "-q", "-P", PASSWORD, str(archive), ".", cwd=tree)
    assert done.returncode == 0, done.stderr
    dest = tmp_path / "dest"
    _zip().extract(archive, dest)
    assert _files(dest) == _files(tree)
    by_unzip = tmp_path / "by_unzip"
    done = _run(unzip_bin, "-q", "-P", PASSWORD, str(archive), "-d", str(by_unzip))
    assert done.returncode == 0, done.stderr
    assert _files(by_unzip) == _files(dest)


@pytest.mark.parametrize("maker", ["7z-aes", "zip-zipcrypto", "here-aes"])
def test_a_wrong_password_is_a_clear_error_and_extracts_nothing(maker, sevenzip, infozip, tree, tmp_path):
    archive = tmp_path / "a.zip"
    if maker == "7z-aes":
        _run(sevenzip, "a", "-tzip", f"-p{PASSWORD}", "-mem=AES256", str(archive), ".", cwd=tree)
    elif maker == "zip-zipcrypto":
        _run(infozip[0], "-r", "-q", "-P", PASSWORD, str(archive), ".", cwd=tree)
    else:
        _zip().create(archive, [tree], tree)
    dest = tmp_path / "dest"
    with pytest.raises(ConnectorError, match=r"wrong password for entry '[^']+'") as caught:
        _zip("Wrong-Guess-123").extract(archive, dest)
    assert "Wrong-Guess-123" not in str(caught.value)
    assert "config.password" in str(caught.value)
    assert list(dest.iterdir()) == []


def test_an_encrypted_archive_without_a_password_says_a_password_is_needed(tree, tmp_path):
    archive = tmp_path / "a.zip"
    _zip().create(archive, [tree], tree)
    with pytest.raises(ConnectorError, match="is encrypted and no password is configured"):
        _zip(None).extract(archive, tmp_path / "dest")


def test_a_password_also_opens_an_archive_that_is_not_encrypted(tree, tmp_path):
    archive = tmp_path / "plain.zip"
    _zip(None).create(archive, [tree], tree)
    _zip().extract(archive, tmp_path / "dest")
    assert _files(tmp_path / "dest") == _files(tree)


def test_without_pyzipper_a_password_asks_to_install_the_extra(tree, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pyzipper(name, *args, **kwargs):
        if name == "pyzipper" or name.startswith("pyzipper."):
            raise ImportError("No module named 'pyzipper'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyzipper)
    with pytest.raises(MissingDependencyError, match="need pyzipper") as caught:
        _zip().create(tmp_path / "a.zip", [tree], tree)
    assert "aetherflow[encrypted-zip]" in caught.value.hint
    assert not (tmp_path / "a.zip").exists()


FLOW = """
    version: 1
    flow:
      id: secret_zip
      workspace: {root: "{{ env.AETHERFLOW_WORK_ROOT }}", cleanup_policy: never}
    resources:
      sealed:
        kind: archive
        driver: zipfile
        config: {password: "{{ env.ZIP_PASSWORD }}"}
      guessed:
        kind: archive
        driver: zipfile
        config: {password: "{{ env.WRONG_PASSWORD }}"}
    jobs:
      - id: pack
        steps:
          - id: make
            type: external.process
            inputs: {command: ["sh", "-c", "mkdir -p in && printf 'id\\\\n1\\\\n' > in/data.csv"]}
          - id: zip
            type: archive_create
            inputs: {output: out/sealed.zip, files: [in], base_dir: in, resource: sealed}
            outputs: {archive: "{{ result.path }}"}
          - id: unzip
            type: archive_extract
            inputs: {archive: "{{ steps.zip.outputs.path }}", dest_dir: back, resource: sealed}
      - id: intrude
        depends_on: [pack]
        steps:
          - id: unzip
            type: archive_extract
            inputs: {archive: "{{ jobs.pack.outputs.archive }}", dest_dir: stolen, resource: guessed}
"""


def test_flow_with_a_password_from_the_environment_never_shows_it(sevenzip, tmp_path):
    wrong = "Guess-Pa55-987"
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = base_env(tmp_path, ZIP_PASSWORD=PASSWORD, WRONG_PASSWORD=wrong)
    outputs = []
    for args in ([], ["-v"], ["--json"], ["--json", "--log-format", "json", "-v"]):
        result = run_cli("run", flow, *args, env=env)
        assert result.exit_code == 1, result.output
        outputs.append(result)
    doc = outputs[2].json
    jobs = {job["id"]: job for job in doc["jobs"]}
    assert jobs["pack"]["status"] == "SUCCESS"
    archive = Path(jobs["pack"]["outputs"]["archive"])
    error = jobs["intrude"]["steps"][0]["error"]
    assert "wrong password for entry 'data.csv'" in error
    done = _run(sevenzip, "x", f"-p{PASSWORD}", f"-o{tmp_path / 'check'}", str(archive))
    assert done.returncode == 0 and (tmp_path / "check" / "data.csv").read_text() == "id\n1\n"

    def clean(text: str, where: str) -> None:
        for secret in (PASSWORD, wrong):
            assert secret not in text, f"password in {where}"

    for result in outputs:
        clean(result.stdout, "stdout")
        clean(result.stderr, "stderr")
    assert "Traceback" not in outputs[0].stderr
    state = tmp_path / "state" / "state.db"
    with sqlite3.connect(state) as conn:
        clean("\n".join(conn.iterdump()), "state rows")
    for path in (tmp_path / "state").glob("*"):
        clean(path.read_bytes().decode("latin-1"), str(path))
    resolved = run_cli("resolve", flow, "--show", "--json", env=env)
    clean(resolved.output, "resolve --show")
    assert resolved.json["resources"][0]["config"]["password"] == "***"
