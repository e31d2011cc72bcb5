"""What /proc says about processes: alive, exited (zombie or reaped), group members."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from aetherflow.core.procfs import group_members, process_alive


def test_a_running_process_is_alive_and_an_exited_one_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid) is True
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while process_alive(child.pid) and time.monotonic() < deadline:  # a zombie until reaped
        time.sleep(0.01)
    assert process_alive(child.pid) is False
    child.wait()
    assert process_alive(child.pid) is False


def test_group_members_lists_the_processes_of_a_group():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert group_members(child.pid) == [child.pid]
        assert os.getpid() in group_members(os.getpgrp())
    finally:
        child.kill()
        child.wait()
    assert group_members(child.pid) == []
