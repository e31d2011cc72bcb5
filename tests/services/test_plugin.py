"""The services plugin itself: a session says which servers it started, once each, and
fails when a server is started a second time (run in an inner pytest session)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.services import ServiceUnavailable, close_ledger, open_ledger, plugin, record_boot, record_restart
from tests.services.plugin import serve

TWO_TESTS_ONE_SERVER = """
def test_one(http_srv):
    assert http_srv.url.startswith("http://127.0.0.1:")

def test_two(http_srv, https_srv):
    assert https_srv.url.startswith("https://")
"""

A_SECOND_HTTP_SERVER = """
from tests.services.http_server import http_server

def test_starts_its_own(http_srv):
    with http_server() as again:
        assert again.port != http_srv.port
"""


def test_a_session_names_each_server_it_started_once(pytester):
    pytester.makepyfile(TWO_TESTS_ONE_SERVER)
    result = pytester.runpytest_inprocess("-p", "tests.services.plugin", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["services: http 127.0.0.1:* started in * s (once)", "services: https 127.0.0.1:* started in * s (once)"])


def test_a_server_started_twice_fails_the_session(pytester):
    pytester.makepyfile(A_SECOND_HTTP_SERVER)
    result = pytester.runpytest_inprocess("-p", "tests.services.plugin", "-q")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["services: http 127.0.0.1:* then 1 more time(s)*", "services: ERROR http started more than once in this session"])


def test_restarts_are_counted_apart_from_boots():
    book = open_ledger()
    try:
        record_boot("postgres", "127.0.0.1", 5432, since=0.0)
        record_restart("postgres")
        record_restart("postgres")
    finally:
        close_ledger(book)
    assert book.twice() == []
    [line] = book.lines()
    assert line.startswith("postgres 127.0.0.1:5432 started in ") and line.endswith("(once); restarted 2x by tests that stop it")


def test_a_server_that_cannot_run_here_skips_naming_make_services(monkeypatch):
    def missing():
        raise ServiceUnavailable("smbd not found")

    monkeypatch.delenv("AETHERFLOW_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"smbd not found; install the test servers with `make services`"):
        next(serve(missing))
    monkeypatch.setenv("AETHERFLOW_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match=r"required service unavailable: smbd not found; .*`make services`"):
        next(serve(missing))


def _fixture_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) == "pytest.fixture":
                    names.add(node.name)
    return names


def test_no_conftest_redefines_a_server_fixture():
    ours = _fixture_names(Path(plugin.__file__))
    assert {"pg_server", "sshd", "smbd", "http_srv", "smtp_starttls_srv"} <= ours
    tests = Path(__file__).resolve().parent.parent
    clashes = {str(path.relative_to(tests)): sorted(_fixture_names(path) & ours) for path in tests.rglob("conftest.py")}
    assert {path: names for path, names in clashes.items() if names} == {}
