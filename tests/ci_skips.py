"""pytest plugin: with the environment variable ``CI`` set, a skipped test fails the run.

A skip hides a failure when what the test needs is missing by accident (a broken install, a tool not on
PATH): locally that is a yellow 's', in CI it must be red. With ``CI`` set (and not ``0``/``false``), a
test that skips is reported as failed with the skip reason, and a module skipped at collection (a
module-level ``importorskip``) fails the run (exit code 1) after the other tests ran; the terminal summary
names them all. Expected failures (``xfail``) are not skips and keep their meaning.

tests/conftest.py imports these hooks; another suite can use ``pytest -p tests.ci_skips``.
"""
import os

import pytest


def skips_fail():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail(report, what):
    reason = _reason(report)
    report.outcome = "failed"
    report.longrepr = (f"{what} {report.nodeid} was skipped, and skips fail the run when CI is set "
                       f"(CI={os.environ.get('CI')!r}). Skip reason: {reason}. Install what the test needs "
                       "(pip install -r requirements-dev.txt) or remove the skip.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and skips_fail() and not hasattr(report, "wasxfail"):
        _fail(report, "test")


_SKIPPED_MODULES = []


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module skipped at collection stays a skip (turning it into a collection error would stop the whole
    # run before any test ran); pytest_sessionfinish then fails the run and the summary names it.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and skips_fail():
        name = report.nodeid or collector.nodeid or str(getattr(collector, "path", collector))
        _SKIPPED_MODULES.append(f"{name}: {_reason(report)}")


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED_MODULES and skips_fail() and session.exitstatus in (pytest.ExitCode.OK,
                                                                   pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not skips_fail():
        return
    failed = terminalreporter.stats.get("failed", [])
    lines = [r.nodeid for r in failed if "skips fail the run when CI is set" in str(r.longrepr)] + _SKIPPED_MODULES
    if lines:
        terminalreporter.section(f"skipped under CI={os.environ.get('CI')!r}: these fail the run", red=True)
        for line in lines:
            terminalreporter.line(line)
