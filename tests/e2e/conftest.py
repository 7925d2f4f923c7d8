"""Shared fixtures for zt's end-to-end tests: they drive the real `zt` binary."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ZT = os.environ.get("ZT_BIN", str(ROOT / "build" / "zt"))


def run(args, check=False, input=None, cwd=None):
    """Runs a command, returns CompletedProcess with text output."""
    p = subprocess.run(args, capture_output=True, text=True, input=input, cwd=cwd, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def zt(*args, check=False, input=None):
    return run([ZT, *map(str, args)], check=check, input=input)


def openssl(*args, check=True, input=None, cwd=None):
    return run(["openssl", *map(str, args)], check=check, input=input, cwd=cwd)


@pytest.fixture
def zt_bin():
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    return ZT


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: waits for real time (a key rotation); "
                                       "deselect with -m 'not slow'")
