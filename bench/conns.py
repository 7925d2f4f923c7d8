#!/usr/bin/python3
"""Resident memory of zt proxy idle and with N idle mutual-TLS connections open.

usage: conns.py PID PORT APP_PORT PKI N
Opens N TLS connections (client SVID from PKI) to the inbound listener on PORT, each
forwarded by zt to the holder on APP_PORT, sends one byte through each so all are piped,
then reports zt's RSS (VmRSS; and its private part, Pss_Anon) before and after, and the
increase per connection. Each zt connection holds two sockets, so N is bounded by the open-file
limit: 9,900 fits under this machine's 20,000.
"""
import selectors, socket, ssl, sys, threading, time

pid, port, app_port, pki, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])


def mem():
    vals = {}
    for f in ("status", "smaps_rollup"):
        for line in open(f"/proc/{pid}/{f}"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "Pss_Anon", "Threads"):
                vals[k] = int(v.split()[0])
    return vals


held = []
ready = threading.Event()


def holder():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", app_port))
    ls.listen(4096)
    ready.set()
    while True:
        c, _ = ls.accept()
        held.append(c)


threading.Thread(target=holder, daemon=True).start()
ready.wait()
time.sleep(0.5)
idle = mem()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(f"{pki}/ca.crt")
ctx.load_cert_chain(f"{pki}/client.crt", f"{pki}/client.key")
conns = []
t0 = time.monotonic()
for i in range(n):
    raw = socket.create_connection(("127.0.0.1", port))
    t = ctx.wrap_socket(raw)
    t.sendall(b"x")
    conns.append(t)
while len(held) < n and time.monotonic() - t0 < 300:
    time.sleep(0.1)
time.sleep(1.0)
full = mem()
per = (full["VmRSS"] - idle["VmRSS"]) * 1024 / n
per_anon = (full["Pss_Anon"] - idle["Pss_Anon"]) * 1024 / n
print(f"zt idle_rss_kb={idle['VmRSS']} idle_private_kb={idle['Pss_Anon']} threads={idle['Threads']}")
print(f"zt conns={n} held_upstream={len(held)} rss_kb={full['VmRSS']} "
      f"per_conn_bytes={per:.0f} per_conn_private_bytes={per_anon:.0f} "
      f"open_s={time.monotonic() - t0:.1f}")
