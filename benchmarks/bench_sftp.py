"""SFTP transfer of a 256 MB file over loopback: our ``sftp/paramiko`` connector beside
OpenSSH's ``sftp`` client in batch mode against the same private sshd (SPEC section 8:
>= 0.8x the throughput of OpenSSH ``sftp``, both directions).

Both sides do the same work: key authentication (the same ed25519 key), the host key
checked against the same known_hosts file (``StrictHostKeyChecking=yes`` for OpenSSH),
a fresh connection per transfer (ours builds a new connector: connect, log in,
transfer, close; ``sftp -b`` is a new process). Each side keeps its default cipher
choice (ours prefers aes128-gcm, OpenSSH chacha20-poly1305). Runs are interleaved (ours,
then OpenSSH, per direction), one warm-up round, then the median of three. Before each
run the target of the previous one is removed, outside the timing.

    python -m benchmarks.bench_sftp        (from the repository root, as root)
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import make_test_file, row, timed

SIZE_MB = 256
ROUNDS = 3
WARMUP = 1


def _measure(server, work: Path, source: Path) -> tuple[dict[str, list[float]], str]:
    from aetherflow.core.connectors.builtin.sftp_paramiko import SFTPConnector

    config = {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "private_key_path": str(server.key.path),
        "known_hosts": str(server.known_hosts),
    }
    remote = server.data_dir
    shutil.copy(source, remote / "theirs.bin")
    server.chown_to_user(remote)
    samples: dict[str, list[float]] = {"ours_up": [], "base_up": [], "ours_down": [], "base_down": []}
    cipher = ""

    def ours_upload() -> None:
        with SFTPConnector(config=config, options={}) as connector:
            connector.upload(source, "ours.bin")

    def ours_download() -> None:
        nonlocal cipher
        with SFTPConnector(config=config, options={}) as connector:
            connector.download("theirs.bin", work / "ours.out")
            cipher = connector.connect().transport.remote_cipher

    def openssh(command: str) -> None:
        batch = work / "batch"
        batch.write_text(command + "\n")
        subprocess.run(server.sftp_batch_argv(batch), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    for round_number in range(WARMUP + ROUNDS):
        results = {}
        (remote / "ours.bin").unlink(missing_ok=True)
        results["ours_up"] = timed(ours_upload)
        (remote / "base.bin").unlink(missing_ok=True)
        results["base_up"] = timed(lambda: openssh(f'put "{source}" base.bin'))
        (work / "ours.out").unlink(missing_ok=True)
        results["ours_down"] = timed(ours_download)
        (work / "base.out").unlink(missing_ok=True)
        results["base_down"] = timed(lambda: openssh(f'get theirs.bin "{work / "base.out"}"'))
        for path in (remote / "ours.bin", remote / "base.bin", work / "ours.out", work / "base.out"):
            if path.stat().st_size != SIZE_MB * 1024 * 1024:
                raise RuntimeError(f"{path} has {path.stat().st_size} bytes after the transfer")
        if round_number >= WARMUP:
            for key, value in results.items():
                samples[key].append(value)
    return samples, cipher


def measure() -> list[dict]:
    from tests.services.sshd import sshd_server

    work = Path(tempfile.mkdtemp(prefix="aetherflow-bench-sftp-"))
    try:
        source = work / "source.bin"
        make_test_file(source, SIZE_MB)
        with sshd_server() as server:
            samples, cipher = _measure(server, work, source)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = []
    for direction, ours_key, base_key in (("upload", "ours_up", "base_up"), ("download", "ours_down", "base_down")):
        ours = statistics.median(samples[ours_key])
        base = statistics.median(samples[base_key])
        note = (
            f"{SIZE_MB / ours:.0f} MB/s vs {SIZE_MB / base:.0f} MB/s = {base / ours:.2f}x OpenSSH's throughput; "
            f"runs ours {', '.join(f'{s:.2f}' for s in samples[ours_key])} s, "
            f"OpenSSH {', '.join(f'{s:.2f}' for s in samples[base_key])} s; our cipher {cipher}; "
            f"peak RSS of the benchmark process {peak_mb:.0f} MB"
        )
        rows.append(
            row(
                f"SFTP {direction} {SIZE_MB} MB (loopback)",
                ours,
                base,
                "OpenSSH sftp -b, same sshd, key auth, known_hosts",
                note=note,
            )
        )
    return rows


if __name__ == "__main__":
    for item in measure():
        print(item)
