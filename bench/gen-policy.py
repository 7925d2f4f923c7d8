#!/usr/bin/env python3
"""Writes the policy of the HTTP sidecar-pair benchmark (bench/zt-pair.sh http):
the pair's own rule (the shared mkpki.sh client may GET and POST on the server),
beside N more services with one ALLOW rule each, as ../shared/bench/policy
describes the Cedar workload (service i admits ns/w<i%100>/sa/client<i> for GET
and POST on /api/v1/<i>/*), and one organization-wide DENY of /admin*.
usage: gen-policy.py N > policy.yaml"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
W = 100
out = sys.stdout
out.write("apiVersion: zt.dev/v1\nkind: Organization\nmetadata: {name: bench}\nspec:\n"
          "  trustDomain: example.org\n  tenants:\n    - name: t\n      workspaces:\n")
out.write("        - {name: default, services: [server, client]}\n")
for w in range(W):
    svcs = ", ".join(f"svc{i}" for i in range(w, n, W))
    out.write(f"        - {{name: w{w}, services: [{svcs}]}}\n")
out.write("""---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, scope: bench}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {name: client-to-server, scope: bench/t/default}
spec:
  selector: {services: [server]}
  action: ALLOW
  rules: [{from: [{source: {principals: ["example.org/ns/default/sa/client"]}}],
           to: [{operation: {methods: [GET, POST]}}]}]
""")
for i in range(n):
    out.write(f"""---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {{name: p{i}, scope: bench/t/w{i % W}}}
spec:
  selector: {{services: [svc{i}]}}
  action: ALLOW
  rules: [{{from: [{{source: {{principals: ["example.org/ns/w{i % W}/sa/client{i}"]}}}}],
           to: [{{operation: {{methods: [GET, POST], paths: ["/api/v1/{i}/*"]}}}}]}}]
""")
