"""End-to-end tests of active health checks (proxy/health.c): an upstream that accepts
connections but answers its health check with an error is taken out of balancing (passive
ejection cannot see it), and put back once it passes again.

Reuses the edge harness of test_proxy_http_edge.py (an edge listener over plain upstreams)."""
import pytest

from proxy_helpers import wait_until
from test_proxy_http import start_proxy, upstream  # noqa: F401
from test_proxy_http_edge import edge_ctx, edge_proxy, log_lines, one, pki, ups  # noqa: F401

SICK = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
HC = {"path": "/healthz", "interval": "1s", "timeout": "1s", "unhealthyAfter": 1,
      "healthyAfter": 1}


def test_failing_health_check_takes_an_upstream_out_and_back(edge_proxy, ups, pki):
    good, sick = ups(2)
    sick.mode, sick.raw_response = "raw", SICK
    px, port = edge_proxy(upstreams=[good.port, sick.port], healthCheck=HC)
    assert wait_until(lambda: log_lines(px, "upstream unhealthy"), 4), px.text()
    line = log_lines(px, "upstream unhealthy")[0]
    assert line["upstream"].endswith(f":{sick.port}") and "2xx" in line["reason"], line
    # the checks are real requests: GET path, our user agent
    hc = [q for q in good.reqs() if q.path == "/healthz"]
    assert hc and hc[0].method == "GET" and hc[0].get("user-agent") == "zt-health-check", hc
    ctx = edge_ctx(pki)
    sick_before = len([q for q in sick.reqs() if q.path != "/healthz"])
    for i in range(8):
        r = one(port, ctx, f"/lb/hc{i}")
        assert r is not None and r.status == 200, (i, r)
    assert len([q for q in sick.reqs() if q.path != "/healthz"]) == sick_before
    # healthy again: back in turn
    sick.mode = "echo"
    assert wait_until(lambda: log_lines(px, "upstream healthy"), 4), px.text()
    for i in range(8):
        r = one(port, ctx, f"/lb/back{i}")
        assert r is not None and r.status == 200, (i, r)
    assert [q for q in sick.reqs() if q.path.startswith("/lb/back")], "the upstream did not come back"


def test_every_upstream_failing_still_gets_traffic(edge_proxy, ups, pki):
    """When every address fails its checks, one is still tried rather than none."""
    (u,) = ups(1)
    u.mode, u.raw_response = "raw", SICK
    px, port = edge_proxy(upstreams=[u.port], healthCheck=HC)
    assert wait_until(lambda: log_lines(px, "upstream unhealthy"), 4), px.text()
    r = one(port, edge_ctx(pki), "/lb/anyway", timeout=3)
    assert r is not None and r.status == 503, r  # the upstream's own answer, passed on


@pytest.mark.parametrize("hc,words", [
    ({"path": "healthz"}, "path"),
    ({"path": "/a b"}, "space"),
    ({"path": "/x", "interval": "1s", "timeout": "2s"}, "timeout"),
    ({"path": "/x", "nope": 1}, "nope"),
])
def test_health_check_config_errors(hc, words, pki, tmp_path):
    from conftest import ZT
    import subprocess
    from proxy_helpers import free_port
    from test_proxy_http import proxy_config
    from test_proxy_http_edge import edge
    cfg = tmp_path / "c.yaml"
    cfg.write_text(proxy_config([edge(free_port(), pki, upstreams=[free_port()], healthCheck=hc)]))
    p = subprocess.run([ZT, "proxy", "-c", str(cfg)], cwd=pki, capture_output=True, text=True,
                       timeout=10)
    assert p.returncode != 0 and "healthCheck" in p.stderr and words in p.stderr, p.stderr


def test_outbound_checks_go_over_mutual_tls(start_proxy, upstream):  # noqa: F811
    """On an outbound listener the checks are mTLS requests with the expect check: they reach
    the service through its inbound proxy (XFCC names us), a dead address goes out, and an
    inbound proxy presenting an unexpected ID fails its checks too."""
    from proxy_helpers import addr, free_port
    from test_proxy_http import CLIENT_ID, http_in, proxy_config
    inp, outp, dead, other = free_port(), free_port(), free_port(), free_port()
    start_proxy(proxy_config([http_in(inp, upstream.port)]), "in")
    # an inbound proxy with the client's SVID: a workload other than the one expected
    start_proxy(proxy_config([http_in(other, upstream.port)], identity="client"), "impostor")
    out = {"name": "out", "mode": "outbound", "protocol": "http", "listen": addr(outp),
           "upstreams": [addr(inp), addr(dead), addr(other)],
           "expect": ["spiffe://example.org/ns/default/sa/server"],
           # mTLS checks under ASan on a busy machine: room for slow handshakes
           "healthCheck": {**HC, "path": "/api/healthz", "interval": "3s", "timeout": "3s"}}
    px = start_proxy(proxy_config([out], identity="client", policy=None), "out")
    down = lambda: {x["upstream"] for x in log_lines(px, "upstream unhealthy")}  # noqa: E731
    assert wait_until(lambda: {addr(dead), addr(other)} <= down(), 8), px.text()
    assert addr(inp) not in down(), px.text()
    assert "unexpected-peer" in next(x["reason"] for x in log_lines(px, "upstream unhealthy")
                                    if x["upstream"] == addr(other))
    hc = wait_until(lambda: [q for q in upstream.reqs() if q.path == "/api/healthz"], 8)
    assert hc and all(q.get("x-forwarded-client-cert").endswith(f";URI={CLIENT_ID}") for q in hc)
    assert not log_lines(px, "upstream healthy")  # the live one never went down
