"""Helpers shared by the end-to-end tests of zt proxy (test_proxy_l4.py, test_proxy_ops.py):
ports, YAML flow values, process and socket utilities, and an echo service."""
import datetime as dt
import json
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import openssl

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def addr(port):
    return f"127.0.0.1:{port}"


def _flow(v):
    """A YAML flow value (JSON-quoted strings are valid YAML)."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_until(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(step)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        d = sock.recv(min(65536, n - len(buf)))
        if not d:
            break
        buf += d
    return bytes(buf)


def recv_all(sock):
    """Reads to the end of the stream; a reset counts as the end."""
    buf = bytearray()
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            buf += d
    except (ConnectionResetError, BrokenPipeError):
        pass
    return bytes(buf)


def not_after(pem):
    out = openssl("x509", "-in", pem, "-noout", "-enddate").stdout.strip()
    v = " ".join(out.split("=", 1)[1].split())
    return dt.datetime.strptime(v, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=dt.timezone.utc)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
        except OSError:
            pass


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_app():
    srv = _EchoServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
