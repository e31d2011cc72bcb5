"""End to end through ``aetherflow run``: the sample flow that delivers an SFTP inbox to
an SMB share (with an archive per batch), against the real sshd and smbd."""

from __future__ import annotations

import tarfile

from tests.helpers import ROOT, base_env, run_cli
from tests.services.smbd import TEST_PASSWORD as SMB_PASSWORD
from tests.services.sshd import TEST_PASSWORD as SFTP_PASSWORD

SAMPLE = ROOT / "sample_flows" / "sftp_inbox_to_smb.yaml"


def sample_env(tmp_path, sshd, smbd, sftp_name: str, smb_name: str, **extra) -> dict[str, str]:
    return base_env(
        tmp_path,
        SFTP_HOST=sshd.host,
        SFTP_PORT=str(sshd.port),
        SFTP_USER=sshd.username,
        SFTP_PASSWORD=sshd.password,
        SFTP_HOST_KEY=sshd.host_key_fingerprint,
        SFTP_INBOX=f"{sftp_name}/inbox",
        SMB_SERVER=smbd.server,
        SMB_PORT=str(smbd.port),
        SMB_SHARE=smbd.share,
        SMB_USER=smbd.username,
        SMB_PASSWORD=smbd.password,
        SMB_TARGET_DIR=f"{smb_name}/incoming",
        **extra,
    )


def test_sample_flow_delivers_the_inbox_to_the_share_and_archives_it(tmp_path, sshd, smbd, sftp_dir, smb_dir):
    sftp_name, sftp_local = sftp_dir
    smb_name, smb_local = smb_dir
    (sftp_local / "inbox").mkdir()
    (sftp_local / "inbox" / "orders 1.csv").write_bytes(b"id\n1\n")
    (sftp_local / "inbox" / "bestellungen-ü.csv").write_bytes(b"id\n2\n")
    sshd.chown_to_user(sftp_local)
    env = sample_env(tmp_path, sshd, smbd, sftp_name, smb_name)

    result = run_cli("run", SAMPLE, "--json", env=env)
    assert result.exit_code == 0, result.output
    [job] = result.json["jobs"]
    assert [s["status"] for s in job["steps"]] == ["SUCCESS"] * 6
    incoming = smb_local / "incoming"
    assert (incoming / "orders 1.csv").read_bytes() == b"id\n1\n"
    assert (incoming / "bestellungen-ü.csv").read_bytes() == b"id\n2\n"
    [archive] = list((incoming / "archive").iterdir())
    with tarfile.open(archive, "r:gz") as tf:
        assert sorted(tf.getnames()) == ["bestellungen-ü.csv", "orders 1.csv"]
    assert list((sftp_local / "inbox").iterdir()) == []  # the inbox was cleared
    assert SMB_PASSWORD not in result.output and SFTP_PASSWORD not in result.output

    again = run_cli("run", SAMPLE, "--json", env=env)
    assert again.exit_code == 0, again.output
    assert again.json["jobs"][0]["status"] == "SKIPPED"  # nothing new in the inbox


def test_sample_flow_with_a_wrong_smb_password_fails_at_delivery_and_keeps_the_inbox(tmp_path, sshd, smbd, sftp_dir, smb_dir):
    sftp_name, sftp_local = sftp_dir
    smb_name, _ = smb_dir
    (sftp_local / "inbox").mkdir()
    (sftp_local / "inbox" / "a.csv").write_bytes(b"a")
    sshd.chown_to_user(sftp_local)
    wrong = "Wr0ng-SMB-Pa55-xyz"
    env = sample_env(tmp_path, sshd, smbd, sftp_name, smb_name)
    env["SMB_PASSWORD"] = wrong

    result = run_cli("run", SAMPLE, "--json", env=env)
    assert result.exit_code == 1
    steps = {s["id"]: s for s in result.json["jobs"][0]["steps"]}
    assert steps["deliver"]["status"] == "FAILED"
    assert "exchange_share" in steps["deliver"]["error"] and "logon failure" in steps["deliver"]["error"]
    assert wrong not in result.output
    assert (sftp_local / "inbox" / "a.csv").exists()
