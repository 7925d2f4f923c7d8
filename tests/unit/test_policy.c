/* Unit tests: the policy engine — fields and match kinds, the hierarchy, DENY/AUDIT/dry-run, connections, repeated headers, snapshots. */
#include "policy_fixtures.h"

/* ---- 1. every field and match kind --------------------------------------- */

/*
 * One case: the rules of a policy on pay/ledger, a request, and whether
 * the policy matches it (and by which rule). Each table runs twice: the
 * rules as an ALLOW policy (match: allowed by it, else denied by default)
 * and as a DENY policy beside an allow-all (match: denied by it, else
 * allowed by the allow-all). For HTTP requests with single values the two
 * must agree.
 */
struct mcase {
	int line;
	const char *rules;
	const char *req;
	int match;
	int rule;
};

#define M(rules, req) { __LINE__, rules, req, 1, 0 }
#define MR(rules, req, r) { __LINE__, rules, req, 1, r }
#define NO(rules, req) { __LINE__, rules, req, 0, 0 }

#define P_API "'example.org/ns/pay/sa/api'"

static const struct mcase field_cases[] = {
	/* principals: exact, prefix, suffix, presence; values ORed */
	M("[{from: [{source: {principals: [" P_API "]}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}]}]", "{" FROM("pay/sa/apix") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {principals: ['example.org/ns/web', " P_API "]}}]}]",
	  "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {principals: ['example.org/ns/pay/*']}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['example.org/ns/pay/*']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['example.org/ns/pay/*']}}]}]", "{" FROM("pay2/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {principals: ['*/sa/api']}}]}]", "{" FROM("shop/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['*/sa/api']}}]}]", "{" FROM("shop/sa/apix") ", " GET("/") "}"),
	M("[{from: [{source: {principals: ['*']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['*']}}]}]", "{" GET("/") "}"),
	/* notPrincipals: a missing principal is not in the list */
	NO("[{from: [{source: {notPrincipals: [" P_API "]}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {notPrincipals: [" P_API "]}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	M("[{from: [{source: {notPrincipals: [" P_API "]}}]}]", "{" GET("/") "}"),
	NO("[{from: [{source: {notPrincipals: ['*']}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	M("[{from: [{source: {notPrincipals: ['*']}}]}]", "{" GET("/") "}"),
	NO("[{from: [{source: {notPrincipals: ['example.org/ns/shop/*']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),

	/* requestPrincipals / notRequestPrincipals: the end user */
	M("[{from: [{source: {requestPrincipals: ['https://idp.example.com/u1']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u1'}}}"),
	NO("[{from: [{source: {requestPrincipals: ['https://idp.example.com/u1']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u2'}}}"),
	M("[{from: [{source: {requestPrincipals: ['https://idp.example.com/*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u2'}}}"),
	NO("[{from: [{source: {requestPrincipals: ['https://idp.example.com/*']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://evil.example/u2'}}}"),
	M("[{from: [{source: {requestPrincipals: ['*/u1']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://other/u1'}}}"),
	NO("[{from: [{source: {requestPrincipals: ['*']}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {requestPrincipals: ['*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'iss/sub'}}}"),
	/* the caller's SPIFFE ID is not the end user */
	NO("[{from: [{source: {requestPrincipals: ['*']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {notRequestPrincipals: ['*']}}]}]", "{" GET("/") "}"),
	NO("[{from: [{source: {notRequestPrincipals: ['*']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'iss/sub'}}}"),

	/* namespaces / notNamespaces (from the SPIFFE ID) */
	M("[{from: [{source: {namespaces: ['pay']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay']}}]}]", "{" FROM("pay2/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay']}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {namespaces: ['pay*']}}]}]", "{" FROM("pay2/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {namespaces: ['*op']}}]}]", "{" FROM("shop/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {namespaces: ['shop', 'pay']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {notNamespaces: ['shop']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	M("[{from: [{source: {notNamespaces: ['shop']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),

	/* ipBlocks / notIpBlocks: CIDR, single address, IPv6 */
	M("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '11.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['10.1.2.0/23']}}]}]", "{'source': {'ip': '10.1.3.9'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.1.2.0/23']}}]}]", "{'source': {'ip': '10.1.4.1'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['192.168.1.5']}}]}]", "{'source': {'ip': '192.168.1.5'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['192.168.1.5']}}]}]", "{'source': {'ip': '192.168.1.4'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['192.168.1.5', '10.0.0.0/8']}}]}]", "{'source': {'ip': '10.9.9.9'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['2001:db8::/32']}}]}]", "{'source': {'ip': '2001:db8:1::7'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['2001:db8::/32']}}]}]", "{'source': {'ip': '2001:db9::7'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['::1']}}]}]", "{'source': {'ip': '::1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '2001:db8::1'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['0.0.0.0/0']}}]}]", "{'source': {'ip': '203.0.113.9'}, " GET("/") "}"),
	NO("[{from: [{source: {notIpBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	M("[{from: [{source: {notIpBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '172.16.0.1'}, " GET("/") "}"),

	/* hosts / notHosts: case-insensitive, the request's port ignored */
	M("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'Ledger.Example.COM'}}"),
	M("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.example.com:8443'}}"),
	M("[{to: [{operation: {hosts: ['LEDGER.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.example.com'}}"),
	NO("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.example.org'}}"),
	NO("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {hosts: ['*.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'a.b.EXAMPLE.com:80'}}"),
	NO("[{to: [{operation: {hosts: ['*.example.com']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': 'example.com'}}"),
	M("[{to: [{operation: {hosts: ['ledger*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.internal'}}"),
	M("[{to: [{operation: {hosts: ['ledger*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'LEDGER.Internal:80'}}"),
	NO("[{to: [{operation: {hosts: ['ledger*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'xledger'}}"),
	M("[{to: [{operation: {hosts: ['[::1]']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': '[::1]:80'}}"),
	NO("[{to: [{operation: {hosts: ['[::1]']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': '[::2]:80'}}"),
	NO("[{to: [{operation: {notHosts: ['admin.example.com']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': 'ADMIN.example.com:443'}}"),
	M("[{to: [{operation: {notHosts: ['admin.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'www.example.com'}}"),

	/* ports / notPorts */
	M("[{to: [{operation: {ports: [8443]}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {ports: ['8443']}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {ports: [80, 8443]}}]}]", "{" GET("/") "}"),
	NO("[{to: [{operation: {ports: [8443]}}]}]", "{'destination': {'port': 80}, " GET("/") "}"),
	NO("[{to: [{operation: {ports: [8443]}}]}]", "{" TO("pay/sa/ledger") ", " GET("/") "}"),
	NO("[{to: [{operation: {notPorts: [8443]}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {notPorts: [8443]}}]}]", "{'destination': {'port': 80}, " GET("/") "}"),

	/* methods / notMethods: case-sensitive */
	M("[{to: [{operation: {methods: ['GET', 'POST']}}]}]", "{" REQ("POST", "/") "}"),
	NO("[{to: [{operation: {methods: ['GET', 'POST']}}]}]", "{" REQ("DELETE", "/") "}"),
	NO("[{to: [{operation: {methods: ['GET']}}]}]", "{" REQ("get", "/") "}"),
	NO("[{to: [{operation: {methods: ['GET']}}]}]", "{'request': {'path': '/'}}"),
	M("[{to: [{operation: {methods: ['P*']}}]}]", "{" REQ("PATCH", "/") "}"),
	NO("[{to: [{operation: {notMethods: ['DELETE']}}]}]", "{" REQ("DELETE", "/") "}"),
	M("[{to: [{operation: {notMethods: ['DELETE']}}]}]", "{" REQ("GET", "/") "}"),

	/* paths / notPaths: exact, prefix, suffix, presence; requests normalized */
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries/") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/ENTRIES") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries.json") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries?limit=5") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/a/../entries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("//entries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/./entries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/%65ntries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/x/%2e%2e/entries") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries/x/%2e%2e") "}"), /* "/entries/" */
	M("[{to: [{operation: {paths: ['/api/*']}}]}]", "{" GET("/api/v1/x") "}"),
	NO("[{to: [{operation: {paths: ['/api/*']}}]}]", "{" GET("/apix") "}"),
	NO("[{to: [{operation: {paths: ['/api/*']}}]}]", "{" GET("/api/../admin") "}"),
	M("[{to: [{operation: {paths: ['*.png']}}]}]", "{" GET("/img/a.png") "}"),
	NO("[{to: [{operation: {paths: ['*.png']}}]}]", "{" GET("/img/a.png.txt") "}"),
	M("[{to: [{operation: {paths: ['*']}}]}]", "{" GET("/anything") "}"),
	M("[{to: [{operation: {paths: ['/a', '/entries']}}]}]", "{" GET("/entries") "}"),
	M("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/public") "}"),
	NO("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/x/../admin/y") "}"),
	NO("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/./admin") "}"),
	NO("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/%61dmin") "}"),

	/* when: request.auth.claims[x], list claims, nested claims */
	M("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'admin'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'other': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'request.auth.claims[role]', values: ['admin', 'tell*']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'teller'}}}}"),
	M("[{when: [{key: 'request.auth.claims[groups]', values: ['ops']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'groups': ['dev', 'ops']}}}}"),
	NO("[{when: [{key: 'request.auth.claims[groups]', values: ['ops']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'groups': ['dev', 'qa']}}}}"),
	M("[{when: [{key: 'request.auth.claims[a][b]', values: ['c']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'a': {'b': 'c'}}}}}"),
	NO("[{when: [{key: 'request.auth.claims[a][b]', values: ['c']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'a': {'b': 'd'}}}}}"),
	NO("[{when: [{key: 'request.auth.claims[a][b]', values: ['c']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'a': 'c', 'b': 'c'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', notValues: ['admin']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'admin'}}}}"),
	M("[{when: [{key: 'request.auth.claims[role]', notValues: ['admin']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'teller'}}}}"),

	/* when: audiences, presenter, principal */
	M("[{when: [{key: 'request.auth.audiences', values: ['ledger']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'audiences': ['x', 'ledger']}}}"),
	NO("[{when: [{key: 'request.auth.audiences', values: ['ledger']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'audiences': ['x']}}}"),
	NO("[{when: [{key: 'request.auth.audiences', values: ['ledger']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'request.auth.presenter', values: ['cli']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'presenter': 'cli'}}}"),
	NO("[{when: [{key: 'request.auth.presenter', values: ['cli']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'presenter': 'web'}}}"),
	NO("[{when: [{key: 'request.auth.presenter', notValues: ['cli']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'presenter': 'cli'}}}"),
	M("[{when: [{key: 'request.auth.principal', values: ['https://idp.example.com/*']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u1'}}}"),
	NO("[{when: [{key: 'request.auth.principal', values: ['https://idp.example.com/*']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://evil.example/u1'}}}"),

	/* when: request.headers[X], the name case-insensitive */
	M("[{when: [{key: 'request.headers[X-Tenant]', values: ['t1']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 't1'}}}"),
	M("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'X-TENANT': 't1'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'T1'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant2': 't1'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'request.headers[x-tenant]', values: ['*']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'anything'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', notValues: ['bad']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'bad'}}}"),
	M("[{when: [{key: 'request.headers[x-tenant]', notValues: ['bad']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'good'}}}"),
	M("[{when: [{key: 'request.headers[x-tenant]', notValues: ['bad']}]}]", "{" GET("/") "}"),

	/* when: source.ip, source.principal, source.namespace */
	M("[{when: [{key: 'source.ip', values: ['10.0.0.0/8']}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	NO("[{when: [{key: 'source.ip', values: ['10.0.0.0/8']}]}]", "{'source': {'ip': '192.0.2.1'}, " GET("/") "}"),
	NO("[{when: [{key: 'source.ip', notValues: ['10.0.0.0/8', '2001:db8::/32']}]}]",
	   "{'source': {'ip': '2001:db8::5'}, " GET("/") "}"),
	M("[{when: [{key: 'source.ip', notValues: ['10.0.0.0/8']}]}]", "{'source': {'ip': '192.0.2.1'}, " GET("/") "}"),
	M("[{when: [{key: 'source.principal', values: [" P_API "]}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.principal', values: [" P_API "]}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.principal', notValues: ['*/sa/api']}]}]", "{" FROM("shop/sa/api") ", " GET("/") "}"),
	M("[{when: [{key: 'source.namespace', values: ['shop']}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.namespace', values: ['shop']}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.namespace', notValues: ['pay']}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),

	/* when: destination.port, connection.sni */
	M("[{when: [{key: 'destination.port', values: ['8443']}]}]", "{" GET("/") "}"),
	NO("[{when: [{key: 'destination.port', values: ['8443']}]}]", "{'destination': {'port': 9000}, " GET("/") "}"),
	NO("[{when: [{key: 'destination.port', notValues: ['8443']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'destination.port', notValues: ['8443']}]}]", "{'destination': {'port': 9000}, " GET("/") "}"),
	M("[{when: [{key: 'connection.sni', values: ['ledger*']}]}]",
	  "{'connection': {'sni': 'ledger.pay.svc'}, " GET("/") "}"),
	NO("[{when: [{key: 'connection.sni', values: ['ledger*']}]}]",
	   "{'connection': {'sni': 'api.pay.svc'}, " GET("/") "}"),
	NO("[{when: [{key: 'connection.sni', values: ['ledger*']}]}]", "{" GET("/") "}"),
	NO("[{when: [{key: 'connection.sni', notValues: ['ledger.pay.svc']}]}]",
	   "{'connection': {'sni': 'ledger.pay.svc'}, " GET("/") "}"),

	/* fields of a source ANDed */
	M("[{from: [{source: {principals: [" P_API "], ipBlocks: ['10.0.0.0/8']}}]}]",
	  "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/api', 'ip': '10.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "], ipBlocks: ['10.0.0.0/8']}}]}]",
	   "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/api', 'ip': '11.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "], ipBlocks: ['10.0.0.0/8']}}]}]",
	   "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/web', 'ip': '10.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay'], notPrincipals: [" P_API "]}}]}]",
	   "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {namespaces: ['pay'], notPrincipals: [" P_API "]}}]}]",
	  "{" FROM("pay/sa/web") ", " GET("/") "}"),
	/* fields of an operation ANDed */
	M("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]", "{" REQ("POST", "/entries") "}"),
	NO("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]", "{" REQ("GET", "/entries") "}"),
	NO("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]", "{" REQ("POST", "/other") "}"),
	NO("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]",
	   "{'destination': {'port': 80}, " REQ("POST", "/entries") "}"),
	/* sources ORed, operations ORed */
	M("[{from: [{source: {principals: [" P_API "]}}, {source: {namespaces: ['shop']}}]}]",
	  "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	M("[{from: [{source: {principals: [" P_API "]}}, {source: {namespaces: ['shop']}}]}]",
	  "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}, {source: {namespaces: ['shop']}}]}]",
	   "{" FROM("pay/sa/web") ", " GET("/") "}"),
	M("[{to: [{operation: {methods: ['GET']}}, {operation: {paths: ['/x']}}]}]", "{" REQ("POST", "/x") "}"),
	M("[{to: [{operation: {methods: ['GET']}}, {operation: {paths: ['/x']}}]}]", "{" REQ("GET", "/y") "}"),
	NO("[{to: [{operation: {methods: ['GET']}}, {operation: {paths: ['/x']}}]}]", "{" REQ("POST", "/y") "}"),
	/* from, to and when ANDed */
	M("[{from: [{source: {principals: [" P_API "]}}], to: [{operation: {methods: ['GET']}}]}]",
	  "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}], to: [{operation: {methods: ['GET']}}]}]",
	   "{" FROM("pay/sa/api") ", " REQ("POST", "/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}], to: [{operation: {methods: ['GET']}}]}]",
	   "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}], when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	   "{" FROM("pay/sa/api") ", " GET("/") "}"),
	/* conditions ANDed */
	M("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}, {key: 'request.headers[x-a]', values: ['1']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-a': '1'}, 'auth': {'claims': {'role': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}, {key: 'request.headers[x-a]', values: ['1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-a': '2'}, 'auth': {'claims': {'role': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}, {key: 'request.headers[x-a]', values: ['1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-a': '1'}, 'auth': {'claims': {'role': 'admin'}}}}"),
	/* values and notValues in one condition */
	M("[{when: [{key: 'request.headers[x-env]', values: ['prod*'], notValues: ['prod-eu']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-env': 'prod-us'}}}"),
	NO("[{when: [{key: 'request.headers[x-env]', values: ['prod*'], notValues: ['prod-eu']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-env': 'prod-eu'}}}"),
	/* rules ORed: the first rule that matches decides */
	MR("[{to: [{operation: {methods: ['GET']}}]}, {to: [{operation: {methods: ['POST']}}]}]", "{" REQ("POST", "/") "}", 1),
	MR("[{to: [{operation: {methods: ['GET']}}]}, {to: [{operation: {methods: ['POST']}}]}]", "{" REQ("GET", "/") "}", 0),
	NO("[{to: [{operation: {methods: ['GET']}}]}, {to: [{operation: {methods: ['POST']}}]}]", "{" REQ("PUT", "/") "}"),
	MR("[{to: [{operation: {methods: ['POST']}}]}, {}]", "{" REQ("POST", "/") "}", 0),
	MR("[{to: [{operation: {methods: ['POST']}}]}, {}]", "{" REQ("GET", "/") "}", 1),
	/* an empty rule matches every request */
	M("[{}]", "{" GET("/") "}"),
	M("[{}]", "{}"),
};

static char *policy_text(const char *action, const char *rules, int with_allow_all)
{
	char *t = NULL;

	if (asprintf(&t, "%s"
			 "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
			 "metadata: {name: p, scope: acme/payments/pay}\n"
			 "spec:\n  selector: {services: [ledger]}\n  action: %s\n  rules: %s\n%s",
		     ORG_YAML, action, rules,
		     with_allow_all ? POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n") : "") < 0)
		abort();
	return t;
}

/* runs a case table with the rules as ALLOW (deny=0) or as DENY (deny=1) */
static void run_cases(const struct mcase *cases, size_t n, int deny)
{
	for (size_t i = 0; i < n; i++) {
		const struct mcase *c = &cases[i];
		char *text = policy_text(deny ? "DENY" : "ALLOW", c->rules, deny);
		zt_policy_snapshot *s = compile_opts(c->line, text, NULL);
		int ok;

		if (!deny && c->match)
			ok = check_at(c->line, s, c->req, ZT_POLICY_ALLOW, "acme/payments/pay/p", c->rule);
		else if (!deny)
			ok = check_at(c->line, s, c->req, ZT_POLICY_DENY, NULL, -1);
		else if (c->match)
			ok = check_at(c->line, s, c->req, ZT_POLICY_DENY, "acme/payments/pay/p", c->rule);
		else
			ok = check_at(c->line, s, c->req, ZT_POLICY_ALLOW, "acme/all", 0);
		zt_policy_snapshot_unref(s);
		free(text);
		if (!ok)
			fail_msg("line %d: as %s, the rules %s", c->line, deny ? "DENY" : "ALLOW",
				 c->match ? "must match" : "must not match");
	}
}

static void test_fields_allow(void **state)
{
	(void)state;
	run_cases(field_cases, sizeof field_cases / sizeof field_cases[0], 0);
}

static void test_fields_deny(void **state)
{
	(void)state;
	run_cases(field_cases, sizeof field_cases / sizeof field_cases[0], 1);
}

/*
 * A DENY on a host suffix must deny whatever the length of the Host
 * header: a long host must not slip past it.
 */
static const struct mcase long_host_cases[] = {
	M("[{to: [{operation: {hosts: ['*.evil.example']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': '"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "evil.example'}}"),
	M("[{to: [{operation: {hosts: ['*.evil.example']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'a.evil.example'}}"),
};

/*
 * Address families: as in Istio (Envoy compares a CIDR range only with
 * addresses of its own family), an IPv6 block never holds an IPv4 address
 * and an IPv4 block never holds an IPv6 one. Otherwise a DENY on
 * notIpBlocks ['::/0'] ("deny what is not IPv6") lets IPv4 callers through.
 */
static const struct mcase ip_family_cases[] = {
	NO("[{from: [{source: {ipBlocks: ['0.0.0.0/0']}}]}]", "{'source': {'ip': '2001:db8::1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['2001:db8::/32']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['::/0']}}]}]", "{'source': {'ip': '2001:db8::1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['::/0']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	M("[{from: [{source: {notIpBlocks: ['::/0']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	NO("[{when: [{key: 'source.ip', values: ['::/0']}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	/* an IPv4-mapped source (as dual-stack sockets report it) is its IPv4 address */
	M("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '::ffff:10.1.2.3'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['::/0']}}]}]", "{'source': {'ip': '::ffff:10.1.2.3'}, " GET("/") "}"),
};

static void test_ip_families(void **state)
{
	(void)state;
	/* as DENY first: there a wrong answer lets a caller through */
	run_cases(ip_family_cases, sizeof ip_family_cases / sizeof ip_family_cases[0], 1);
	run_cases(ip_family_cases, sizeof ip_family_cases / sizeof ip_family_cases[0], 0);
}

static void test_long_host_deny(void **state)
{
	(void)state;
	run_cases(long_host_cases, sizeof long_host_cases / sizeof long_host_cases[0], 1);
}

/* ---- 2. the hierarchy ---------------------------------------------------- */

static void test_org_deny_wins(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
		POL("tenant-all", "acme/payments", "  action: ALLOW\n  rules: [{}]\n")
		POL("ws-admin", "acme/payments/pay",
		    "  action: ALLOW\n  rules: [{to: [{operation: {paths: ['/admin', '/admin/*']}}]}]\n")
		POL("ws-ledger", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n  rules: [{}]\n"));

	(void)state;
	DENIED(s, "{" GET("/admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/admin/users") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/x/../admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" TO("pay2/sa/api") ", " GET("/admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" TO("shop/sa/cart") ", " GET("/admin") "}", "acme/deny-admin", 0);
	/* ALLOWs are walked outermost scope first */
	ALLOWED(s, "{" GET("/public") "}", "acme/payments/tenant-all", 0);
	ALLOWED(s, "{" TO("pay/sa/api") ", " GET("/public") "}", "acme/payments/tenant-all", 0);
	DEFAULT_DENY(s, "{" TO("shop/sa/cart") ", " GET("/public") "}");
	zt_policy_snapshot_unref(s);
}

static void test_workspace_and_tenant_scopes(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("pay-get", "acme/payments/pay", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL("payments-post", "acme/payments", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['POST']}}]}]\n")
		POL("retail-put", "acme/retail", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['PUT']}}]}]\n"));

	(void)state;
	/* the workspace ALLOW: pay's services, not its sibling pay2, not shop */
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " GET("/") "}", "acme/payments/pay/pay-get", 0);
	ALLOWED(s, "{" TO("pay/sa/web") ", " GET("/") "}", "acme/payments/pay/pay-get", 0);
	DEFAULT_DENY(s, "{" TO("pay2/sa/ledger") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay2/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("shop/sa/api") ", " GET("/") "}");
	/* the tenant ALLOW: every workspace of payments, not retail's */
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " REQ("POST", "/") "}", "acme/payments/payments-post", 0);
	ALLOWED(s, "{" TO("pay2/sa/api") ", " REQ("POST", "/") "}", "acme/payments/payments-post", 0);
	DEFAULT_DENY(s, "{" TO("shop/sa/cart") ", " REQ("POST", "/") "}");
	ALLOWED(s, "{" TO("shop/sa/cart") ", " REQ("PUT", "/") "}", "acme/retail/retail-put", 0);
	DEFAULT_DENY(s, "{" TO("pay/sa/ledger") ", " REQ("PUT", "/") "}");
	zt_policy_snapshot_unref(s);
}

static void test_selectors(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("ledger-only", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL("api-everywhere", "acme/payments",
		    "  selector: {services: [api]}\n  action: ALLOW\n  rules: [{to: [{operation: {methods: ['POST']}}]}]\n")
		POL("no-delete-on-cart", "acme",
		    "  selector: {services: [cart, web]}\n  action: DENY\n  rules: [{to: [{operation: {methods: ['DELETE']}}]}]\n")
		POL("all-delete", "acme", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['DELETE']}}]}]\n"));

	(void)state;
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " GET("/") "}", "acme/payments/pay/ledger-only", 0);
	DEFAULT_DENY(s, "{" TO("pay/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay/sa/web") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay2/sa/ledger") ", " GET("/") "}");
	/* a tenant-level selector: that service in every workspace of the tenant */
	ALLOWED(s, "{" TO("pay/sa/api") ", " REQ("POST", "/") "}", "acme/payments/api-everywhere", 0);
	ALLOWED(s, "{" TO("pay2/sa/api") ", " REQ("POST", "/") "}", "acme/payments/api-everywhere", 0);
	DEFAULT_DENY(s, "{" TO("shop/sa/api") ", " REQ("POST", "/") "}");
	DEFAULT_DENY(s, "{" TO("pay/sa/ledger") ", " REQ("POST", "/") "}");
	/* an organization-level selector */
	DENIED(s, "{" TO("shop/sa/cart") ", " REQ("DELETE", "/") "}", "acme/no-delete-on-cart", 0);
	DENIED(s, "{" TO("pay/sa/web") ", " REQ("DELETE", "/") "}", "acme/no-delete-on-cart", 0);
	ALLOWED(s, "{" TO("shop/sa/api") ", " REQ("DELETE", "/") "}", "acme/all-delete", 0);
	zt_policy_snapshot_unref(s);
}

static void test_unknown_destination_and_default(void **state)
{
	zt_policy_snapshot *s = COMPILE(ORG_YAML POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	zt_policy_snapshot *none = COMPILE(
		ORG_YAML POL("deny-x", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/x']}}]}]\n"));
	zt_policy_decision d;

	(void)state;
	assert_int_equal(zt_policy_snapshot_nservices(s), 7); /* 3 + 2 + 2 */
	assert_int_equal(zt_policy_snapshot_npolicies(s), 1 + (g_filler ? NFILLER : 0));
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " GET("/") "}", "acme/all", 0);
	/* not declared: a service, a workspace, a trust domain */
	decide_text(__LINE__, s, "{" TO("pay/sa/nope") ", " GET("/") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_non_null(strstr(d.reason, "unknown destination"));
	DEFAULT_DENY(s, "{" TO("nows/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{'destination': {'service': 'spiffe://other.org/ns/pay/sa/ledger'}, " GET("/") "}");
	DEFAULT_DENY(s, "{'destination': {'service': 'spiffe://example.org/ns/pay/sa/ledger/x'}, " GET("/") "}");
	DEFAULT_DENY(s, "{'destination': {'service': 'ledger'}, " GET("/") "}");
	/* no ALLOW policy at all: deny by default */
	decide_text(__LINE__, none, "{" GET("/") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.by.rule, -1);
	assert_non_null(strstr(d.reason, "deny by default"));
	assert_int_equal(d.naudit, 0);
	assert_int_equal(d.ndry_run, 0);
	DENIED(none, "{" GET("/x") "}", "acme/deny-x", 0);
	zt_policy_snapshot_unref(s);
	zt_policy_snapshot_unref(none);
}

/* ---- 3. DENY first, AUDIT, dry-run --------------------------------------- */

static void test_deny_before_allow(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("org-allow", "acme", "  action: ALLOW\n  rules: [{}]\n")
		POL("ws-deny", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules:\n    - to: [{operation: {methods: ['DELETE']}}]\n"
		    "    - from: [{source: {namespaces: ['shop']}}]\n"));

	(void)state;
	/* a DENY in the innermost scope beats an ALLOW at the top */
	DENIED(s, "{" REQ("DELETE", "/") "}", "acme/payments/pay/ws-deny", 0);
	DENIED(s, "{" FROM("shop/sa/cart") ", " GET("/") "}", "acme/payments/pay/ws-deny", 1);
	ALLOWED(s, "{" FROM("pay/sa/api") ", " GET("/") "}", "acme/org-allow", 0);
	ALLOWED(s, "{" TO("pay/sa/api") ", " REQ("DELETE", "/") "}", "acme/org-allow", 0);
	zt_policy_snapshot_unref(s);
}

static void test_audit(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("allow-get", "acme/payments/pay", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL("audit-admin", "acme",
		    "  action: AUDIT\n  rules:\n    - to: [{operation: {methods: ['PUT']}}]\n"
		    "    - to: [{operation: {paths: ['/admin*']}}]\n")
		POL("audit-shop", "acme/payments/pay",
		    "  action: AUDIT\n  rules: [{from: [{source: {namespaces: ['shop']}}]}]\n"));
	zt_policy_decision d;

	(void)state;
	/* an allowed request, audited */
	decide_text(__LINE__, s, "{" GET("/admin/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_string_equal(d.by.policy, "acme/payments/pay/allow-get");
	assert_int_equal(d.naudit, 1);
	assert_string_equal(d.audit[0].policy, "acme/audit-admin");
	assert_int_equal(d.audit[0].rule, 1);
	assert_int_equal(d.ndry_run, 0);
	/* a denied request, audited: still denied, by nobody */
	decide_text(__LINE__, s, "{" REQ("POST", "/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.naudit, 1);
	assert_string_equal(d.audit[0].policy, "acme/audit-admin");
	/* two audits, in scope order */
	decide_text(__LINE__, s, "{" FROM("shop/sa/cart") ", " REQ("PUT", "/") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_int_equal(d.naudit, 2);
	assert_string_equal(d.audit[0].policy, "acme/audit-admin");
	assert_int_equal(d.audit[0].rule, 0);
	assert_string_equal(d.audit[1].policy, "acme/payments/pay/audit-shop");
	/* no audit matches */
	decide_text(__LINE__, s, "{" GET("/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_int_equal(d.naudit, 0);
	/* an AUDIT alone allows nothing */
	decide_text(__LINE__, s, "{" TO("pay2/sa/api") ", " GET("/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_int_equal(d.naudit, 1);
	zt_policy_snapshot_unref(s);
}

static void test_dry_run(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("allow-get", "acme/payments/pay", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL_DRY("try-deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
		POL_DRY("try-allow-post", "acme/payments",
			"  action: ALLOW\n  rules:\n    - to: [{operation: {methods: ['PUT']}}]\n"
			"    - to: [{operation: {methods: ['POST']}}]\n")
		"---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
		"metadata: {name: enforced, scope: acme, annotations: {zt.dev/dry-run: 'false'}}\n"
		"spec:\n  action: DENY\n  rules: [{to: [{operation: {paths: ['/enforced']}}]}]\n");
	zt_policy_decision d;

	(void)state;
	/* a dry-run DENY matching an allowed request: reported, not enforced */
	decide_text(__LINE__, s, "{" GET("/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_string_equal(d.by.policy, "acme/payments/pay/allow-get");
	assert_int_equal(d.ndry_run, 1);
	assert_string_equal(d.dry_run[0].policy, "acme/try-deny-admin");
	assert_int_equal(d.dry_run[0].rule, 0);
	assert_int_equal(d.dry_run_effect[0], ZT_POLICY_DENY);
	assert_int_equal(d.naudit, 0);
	/* a dry-run ALLOW matching a denied request: still denied */
	decide_text(__LINE__, s, "{" REQ("POST", "/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.ndry_run, 1);
	assert_string_equal(d.dry_run[0].policy, "acme/payments/try-allow-post");
	assert_int_equal(d.dry_run[0].rule, 1);
	assert_int_equal(d.dry_run_effect[0], ZT_POLICY_ALLOW);
	/* both */
	decide_text(__LINE__, s, "{" REQ("PUT", "/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.ndry_run, 2);
	assert_string_equal(d.dry_run[0].policy, "acme/try-deny-admin");
	assert_int_equal(d.dry_run_effect[0], ZT_POLICY_DENY);
	assert_string_equal(d.dry_run[1].policy, "acme/payments/try-allow-post");
	assert_int_equal(d.dry_run[1].rule, 0);
	assert_int_equal(d.dry_run_effect[1], ZT_POLICY_ALLOW);
	/* none */
	decide_text(__LINE__, s, "{" GET("/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_int_equal(d.ndry_run, 0);
	/* dry-run "false" is enforced */
	DENIED(s, "{" GET("/enforced") "}", "acme/enforced", 0);
	zt_policy_snapshot_unref(s);
}

/* ---- 4. connections without HTTP ----------------------------------------- */

static void test_tcp(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("deny-admin", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules: [{from: [{source: {namespaces: ['shop']}}], to: [{operation: {paths: ['/admin*'], methods: ['POST']}}]}]\n")
		POL("deny-jwt", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules: [{from: [{source: {principals: ['example.org/ns/pay2/*'], requestPrincipals: ['*']}}]}]\n")
		POL("deny-hdr", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules: [{from: [{source: {principals: ['example.org/ns/pay/sa/web']}}], when: [{key: 'request.headers[x-a]', values: ['1']}]}]\n")
		POL("allow-http", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n"
		    "  rules:\n    - to: [{operation: {methods: ['GET']}}]\n"
		    "    - to: [{operation: {paths: ['/x']}}]\n"
		    "    - from: [{source: {requestPrincipals: ['*']}}]\n"
		    "    - when: [{key: 'request.auth.claims[role]', values: ['teller']}]\n")
		POL("allow-port", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n"
		    "  rules: [{from: [{source: {principals: ['example.org/ns/pay/sa/api']}}], to: [{operation: {ports: [5432]}}]}]\n"));

	(void)state;
	/* the same ALLOW rules admit HTTP requests... */
	ALLOWED(s, "{" FROM("pay/sa/api") ", " GET("/") "}", "acme/payments/pay/allow-http", 0);
	ALLOWED(s, "{" FROM("pay/sa/api") ", " REQ("POST", "/x") "}", "acme/payments/pay/allow-http", 1);
	/* ...but on a connection HTTP-only fields never match an ALLOW */
	DEFAULT_DENY(s, "{" FROM("pay/sa/api") "}");
	DEFAULT_DENY(s, "{" FROM("pay/sa/api") ", 'destination': {'port': 8443}}");
	/* an ALLOW without HTTP-only fields still admits connections */
	ALLOWED(s, "{" FROM("pay/sa/api") ", 'destination': {'port': 5432}}", "acme/payments/pay/allow-port", 0);
	DEFAULT_DENY(s, "{" FROM("pay/sa/ledger") ", 'destination': {'port': 5432}}");
	/* a DENY with paths and methods applies to a connection (they are ignored) */
	DENIED(s, "{" FROM("shop/sa/cart") ", 'destination': {'port': 5432}}", "acme/payments/pay/deny-admin", 0);
	/* while over HTTP they count */
	ALLOWED(s, "{" FROM("shop/sa/cart") ", " GET("/admin") "}", "acme/payments/pay/allow-http", 0);
	DENIED(s, "{" FROM("shop/sa/cart") ", " REQ("POST", "/admin/x") "}", "acme/payments/pay/deny-admin", 0);
	/* a DENY with requestPrincipals applies to a connection */
	DENIED(s, "{" FROM("pay2/sa/api") ", 'destination': {'port': 5432}}", "acme/payments/pay/deny-jwt", 0);
	ALLOWED(s, "{" FROM("pay2/sa/api") ", " GET("/") "}", "acme/payments/pay/allow-http", 0);
	DENIED(s, "{" FROM("pay2/sa/api") ", 'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'i/s'}}}",
	       "acme/payments/pay/deny-jwt", 0);
	/* a DENY with a header condition applies to a connection */
	DENIED(s, "{" FROM("pay/sa/web") ", 'destination': {'port': 5432}}", "acme/payments/pay/deny-hdr", 0);
	ALLOWED(s, "{" FROM("pay/sa/web") ", " GET("/") "}", "acme/payments/pay/allow-http", 0);
	zt_policy_snapshot_unref(s);
}

/* ---- 5. repeated headers ------------------------------------------------- */

static void test_repeated_headers(void **state)
{
	zt_policy_snapshot *allow = COMPILE(
		ORG_YAML POL("teller", "acme",
			     "  action: ALLOW\n  rules: [{when: [{key: 'request.headers[x-role]', values: ['teller']}]}]\n"));
	zt_policy_snapshot *deny = COMPILE(
		ORG_YAML
		POL("no-admin", "acme",
		    "  action: DENY\n  rules: [{when: [{key: 'request.headers[x-role]', values: ['admin']}]}]\n")
		POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	zt_policy_snapshot *notv = COMPILE(
		ORG_YAML POL("not-admin", "acme",
			     "  action: ALLOW\n  rules: [{when: [{key: 'request.headers[x-role]', notValues: ['admin']}]}]\n"));

	(void)state;
	/* ALLOW: every copy must match */
	DEFAULT_DENY(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}");
	DEFAULT_DENY(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['admin', 'teller']}}}");
	ALLOWED(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'teller']}}}", "acme/teller", 0);
	ALLOWED(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': 'teller'}}}", "acme/teller", 0);
	/* two spellings of one name are one header */
	DEFAULT_DENY(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': 'teller', 'X-Role': 'admin'}}}");
	/* DENY: any copy is enough */
	DENIED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}", "acme/no-admin", 0);
	DENIED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['admin', 'teller']}}}", "acme/no-admin", 0);
	DENIED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'X-ROLE': 'teller', 'x-role': 'admin'}}}", "acme/no-admin", 0);
	ALLOWED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'ops']}}}", "acme/all", 0);
	/* ALLOW with notValues: no copy may be excluded */
	DEFAULT_DENY(notv, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}");
	ALLOWED(notv, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'ops']}}}", "acme/not-admin", 0);
	/* DENY with notValues: one copy outside the list is enough, and so is no copy */
	{
		zt_policy_snapshot *dn = COMPILE(
			ORG_YAML
			POL("only-tellers", "acme",
			    "  action: DENY\n  rules: [{when: [{key: 'request.headers[x-role]', notValues: ['teller']}]}]\n")
			POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));

		DENIED(dn, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}", "acme/only-tellers", 0);
		DENIED(dn, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-other': 'teller'}}}", "acme/only-tellers", 0);
		ALLOWED(dn, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'teller']}}}", "acme/all", 0);
		zt_policy_snapshot_unref(dn);
	}
	zt_policy_snapshot_unref(allow);
	zt_policy_snapshot_unref(deny);
	zt_policy_snapshot_unref(notv);
}

/* ---- snapshots ----------------------------------------------------------- */

static void test_snapshot_refs(void **state)
{
	zt_policy_src *src = load(ORG_YAML POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	zt_policy_snapshot *a, *b;
	zt_err e;

	(void)state;
	a = zt_policy_compile(src, &e);
	b = zt_policy_compile(src, &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	zt_policy_src_free(src); /* the snapshots keep what they need */
	zt_policy_snapshot_ref(a);
	zt_policy_snapshot_unref(a);
	ALLOWED(a, "{" GET("/") "}", "acme/all", 0);
	zt_policy_snapshot_unref(a);
	ALLOWED(b, "{" GET("/") "}", "acme/all", 0);
	zt_policy_snapshot_unref(b);
	zt_policy_snapshot_unref(NULL);
}

/* a test again with g_filler set, under its own name */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_allow),
		cmocka_unit_test(test_fields_deny),
		cmocka_unit_test(test_long_host_deny),
		cmocka_unit_test(test_ip_families),
		cmocka_unit_test(test_org_deny_wins),
		cmocka_unit_test(test_workspace_and_tenant_scopes),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_unknown_destination_and_default),
		cmocka_unit_test(test_deny_before_allow),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_repeated_headers),
		cmocka_unit_test(test_snapshot_refs),
		/* the same decisions with many policies per service */
		BIG(test_fields_allow),
		BIG(test_fields_deny),
		BIG(test_long_host_deny),
		BIG(test_org_deny_wins),
		BIG(test_workspace_and_tenant_scopes),
		BIG(test_selectors),
		BIG(test_unknown_destination_and_default),
		BIG(test_deny_before_allow),
		BIG(test_audit),
		BIG(test_dry_run),
		BIG(test_tcp),
		BIG(test_repeated_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
