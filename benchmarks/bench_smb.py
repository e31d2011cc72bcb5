"""SMB transfer of a 256 MB file over loopback: our ``smb/smbprotocol`` connector beside
Samba's ``smbclient`` against the same private smbd (SPEC section 8: >= 0.5x the
throughput of smbclient, both directions).

Each timed run is a whole transfer as a user would do it: ours builds a fresh
connector (connect, log in, transfer, close), smbclient is a fresh process. Runs are
interleaved (ours, then smbclient, for each direction), one warm-up round, then the
median of three. Before each run the target of the previous one is removed, outside
the timing, so both sides always create a new file.

    python -m benchmarks.bench_smb        (from the repository root, as root)
"""

from __future__ import annotations

import os
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


def _measure_pair(server, work: Path, source: Path, *, encrypt: bool) -> dict[str, list[float]]:
    from aetherflow.core.connectors.builtin.smb_smbprotocol import SMBConnector

    # Both sides protect the same way: our default signs every message.
    protection = ["--client-protection=encrypt" if encrypt else "--client-protection=sign"]
    share = server.share_dir
    samples: dict[str, list[float]] = {"ours_up": [], "base_up": [], "ours_down": [], "base_down": []}

    def ours_upload() -> None:
        with SMBConnector(config=server.config(), options={"encrypt": encrypt}) as connector:
            connector.upload(source, "ours.bin")

    def ours_download() -> None:
        with SMBConnector(config=server.config(), options={"encrypt": encrypt}) as connector:
            connector.download("theirs.bin", work / "ours.out")

    def smbclient(command: str) -> None:
        argv = server.smbclient_argv(command)
        subprocess.run(argv[:-2] + protection + argv[-2:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    for round_number in range(WARMUP + ROUNDS):
        results = {}
        (share / "ours.bin").unlink(missing_ok=True)
        results["ours_up"] = timed(ours_upload)
        (share / "theirs.bin").unlink(missing_ok=True)
        results["base_up"] = timed(lambda: smbclient(f'put "{source}" theirs.bin'))
        (work / "ours.out").unlink(missing_ok=True)
        results["ours_down"] = timed(ours_download)
        (work / "theirs.out").unlink(missing_ok=True)
        results["base_down"] = timed(lambda: smbclient(f'get theirs.bin "{work / "theirs.out"}"'))
        if round_number >= WARMUP:
            for key, value in results.items():
                samples[key].append(value)
    for name in ("ours.bin", "theirs.bin"):
        if os.path.getsize(share / name) != SIZE_MB * 1024 * 1024:
            raise RuntimeError(f"{name} on the share has the wrong size")
    if os.path.getsize(work / "ours.out") != SIZE_MB * 1024 * 1024:
        raise RuntimeError("downloaded file has the wrong size")
    return samples


def _rows(samples: dict[str, list[float]], label: str, baseline: str) -> list[dict]:
    from aetherflow.core.connectors.builtin import smb_smbprotocol as smb

    rows = []
    shapes = {
        "upload": f"{smb.WRITE_CHUNK_SIZE // 1024} KiB writes x {smb.WRITES_IN_FLIGHT} in flight",
        "download": f"{smb.READ_CHUNK_SIZE // 1024} KiB reads x {smb.READS_IN_FLIGHT} in flight",
    }
    for direction, ours_key, base_key in (("upload", "ours_up", "base_up"), ("download", "ours_down", "base_down")):
        ours, base = statistics.median(samples[ours_key]), statistics.median(samples[base_key])
        note = (
            f"ours {SIZE_MB / ours:.0f} MB/s, smbclient {SIZE_MB / base:.0f} MB/s, throughput ratio {base / ours:.2f}; "
            f"{shapes[direction]}; runs ours "
            + ", ".join(f"{v:.2f}" for v in samples[ours_key]) + " s / smbclient " + ", ".join(f"{v:.2f}" for v in samples[base_key]) + " s"
        )
        rows.append(row(f"smb {direction} {SIZE_MB} MB{label}", ours, base, baseline, note=note))
    return rows


def measure() -> list[dict]:
    from tests.services.smbd import smbd_server

    if shutil.which("smbclient") is None:
        raise RuntimeError("Samba's smbclient is not installed (make services)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="aetherflow-bench-smb-") as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        make_test_file(source, SIZE_MB)
        with smbd_server() as server:
            rows += _rows(_measure_pair(server, work, source, encrypt=False), "", "smbclient put/get --client-protection=sign, same smbd")
            rows += _rows(_measure_pair(server, work, source, encrypt=True), " encrypted", "smbclient --client-protection=encrypt")
    return rows


if __name__ == "__main__":
    for r in measure():
        print(f"{r['figure']}: ours {r['ours_s']:.2f} s, smbclient {r['baseline_s']:.2f} s ({r['note']})")
