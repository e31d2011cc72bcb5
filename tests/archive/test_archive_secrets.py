"""archive/zipfile errors never show the password (see tests/test_driver_errors_scrubbed.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.archive_zipfile import ZipArchiveConnector
from tests.helpers import driver_fault

SECRET = "Zq7-distinct-S3cret"


def test_zip_errors_never_show_the_password(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("data")
    archive = tmp_path / "a.zip"
    ZipArchiveConnector(config={"password": "the-right-one"}, options={}).create(archive, [tmp_path / "in"], tmp_path)
    wrong = driver_fault(lambda c: c.extract(archive, tmp_path / "out"), ZipArchiveConnector(config={"password": SECRET}, options={}), SECRET)
    assert "wrong password" in str(wrong)
    # A message built from the call quotes a path that happens to hold the password.
    missing = tmp_path / f"missing-{SECRET}.zip"
    driver_fault(lambda c: c.extract(missing, tmp_path / "out"), ZipArchiveConnector(config={"password": SECRET}, options={}), SECRET)
