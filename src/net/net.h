/*
 * net: the event loop and timers the proxy and the daemons run on.
 *
 * One loop per thread: epoll (level-triggered) for file descriptors, a
 * binary heap for timers, an eventfd so other threads (or a signal
 * handler) can wake the loop. Nothing in here blocks; a handler that
 * would block must return and wait for its next event instead.
 *
 * The TLS connections, listeners and HTTP layer of the proxy build on this
 * (issue 4 onwards).
 */
#ifndef ZT_NET_H
#define ZT_NET_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "crypto/crypto.h"

typedef struct zt_loop zt_loop;

#define ZT_EV_READ 1u
#define ZT_EV_WRITE 2u
#define ZT_EV_ERROR 4u /* hang-up or error: reported with READ and WRITE set too */

/* Called when fd is ready; `events` is what happened (ZT_EV_*). */
typedef void (*zt_io_fn)(zt_loop *l, int fd, unsigned events, void *arg);
typedef void (*zt_timer_fn)(zt_loop *l, void *arg);

/*
 * A timer, embedded in the structure it belongs to (a connection, say), so
 * arming one allocates nothing. Its fields are the loop's: use the calls.
 */
typedef struct zt_timer {
	uint64_t when_ms; /* deadline on the loop's clock */
	uint64_t seq;     /* ties broken by arming order */
	size_t slot;      /* index in the heap + 1; 0 when not armed */
	zt_timer_fn fn;
	void *arg;
} zt_timer;

/*
 * A loop for file descriptors below max_fds (0: the process's RLIMIT_NOFILE).
 * Caller frees with zt_loop_free.
 */
zt_loop *zt_loop_new(size_t max_fds, zt_err *e);
/* Frees the loop; it does not close the descriptors still registered. */
void zt_loop_free(zt_loop *l);

/* Watches fd for `events` (ZT_EV_READ | ZT_EV_WRITE). fd must be free. */
int zt_loop_add(zt_loop *l, int fd, unsigned events, zt_io_fn fn, void *arg,
		zt_err *e) ZT_MUST_CHECK;
/* Changes what fd is watched for (0: nothing, but stays registered). */
int zt_loop_mod(zt_loop *l, int fd, unsigned events, zt_err *e) ZT_MUST_CHECK;
/*
 * Hands fd to another handler, watched for the same events, without a
 * system call. An event already fetched for fd in this iteration goes to
 * the new handler, which must take a readiness it finds false in stride.
 */
int zt_loop_rebind(zt_loop *l, int fd, zt_io_fn fn, void *arg, zt_err *e) ZT_MUST_CHECK;
/*
 * Stops watching fd (before closing it). Safe from inside any handler: an
 * event already fetched for fd in this iteration is dropped.
 */
void zt_loop_del(zt_loop *l, int fd);

void zt_timer_init(zt_timer *t, zt_timer_fn fn, void *arg);
/* Arms (or re-arms) t to fire once, delay_ms from the loop's now. */
int zt_timer_set(zt_loop *l, zt_timer *t, uint64_t delay_ms) ZT_MUST_CHECK;
/* Disarms t; harmless when it is not armed. */
void zt_timer_cancel(zt_loop *l, zt_timer *t);
int zt_timer_armed(const zt_timer *t);

/* The loop's monotonic clock in milliseconds, read once per iteration. */
uint64_t zt_loop_now_ms(const zt_loop *l);

/*
 * Waits for events at most timeout_ms (-1: until an event or the next
 * timer), runs the handlers of ready descriptors, then the due timers.
 * Returns the number of handlers and timers run, or a negative error.
 */
int zt_loop_run_once(zt_loop *l, int timeout_ms, zt_err *e);
/* Runs until zt_loop_stop. Returns 0, or a negative error. */
int zt_loop_run(zt_loop *l, zt_err *e);
/* Makes zt_loop_run return after the current iteration (from a handler). */
void zt_loop_stop(zt_loop *l);

/*
 * Wakes the loop from another thread or a signal handler
 * (async-signal-safe); the wake handler then runs on the loop's thread.
 * Wakes are coalesced: several before the loop runs give one call.
 */
void zt_loop_set_wake(zt_loop *l, zt_timer_fn fn, void *arg);
void zt_loop_wake(zt_loop *l);

/* ---- addresses ------------------------------------------------------------ */

#include <sys/socket.h>

/*
 * Parses "IPv4:PORT" or "[IPv6]:PORT" (names are not resolved); port 0
 * ("any", for listeners that pick one) only with any_port set.
 */
int zt_addr_parse(const char *s, int any_port, struct sockaddr_storage *ss, socklen_t *len,
		  zt_err *e) ZT_MUST_CHECK;

/* ---- TLS ----------------------------------------------------------------- */

#include <openssl/ssl.h>

/* What a verified peer is, and until when that holds. */
typedef struct zt_peer_info {
	char id[2049];     /* its SPIFFE ID */
	char serial[64];   /* its certificate's serial number (hex), "" if not filled */
	int64_t not_after; /* the earliest expiry in its verified chain (seconds) */
} zt_peer_info;

/*
 * Judges the peer's certificate chain (leaf first) during the handshake.
 * Fills *out and returns 0, or a negative code with *e saying why. The
 * proxy plugs in the identity module's SVID rules; host names are never
 * used.
 */
typedef int (*zt_peer_verify_fn)(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e);

typedef struct zt_tls_opts {
	int server;            /* accept (1) or connect (0) */
	int allow_tls12;       /* TLS 1.3 only unless set */
	int resume;            /* TLS 1.3 session resumption (below) */
	X509 *cert;            /* our SVID (clients may go without: NULL cert and key) */
	STACK_OF(X509) *chain; /* its intermediates */
	EVP_PKEY *key;
	zt_peer_verify_fn verify;
	void *verify_arg;
	int peer_optional;     /* servers: a client may come without a certificate
				* (the API: people bring tokens); one it presents is
				* judged by `verify` all the same */
} zt_tls_opts;

/*
 * An SSL_CTX for mutual TLS with SPIFFE peers: the peer must present a
 * certificate, which `verify` judges (OpenSSL's own path checks replaced).
 *
 * Without `resume`, there is no session resumption and no ticket, so every
 * connection is judged afresh. With it (TLS 1.3 only), a resumed handshake
 * skips the certificates and signatures (about a third of a handshake's
 * CPU) but not the judgement: the verdict of the full handshake travels
 * with the session (inside the encrypted ticket on a server, in the
 * session on a client) and is taken again only while the verified chain
 * has not expired; tickets live at most ZT_TLS_TICKET_SECONDS and only
 * under this context, whose ticket keys are its own, so a new SVID or
 * bundle (a new context) ends every earlier session. Clients keep one
 * session per peer key (zt_tls_client_resume). Caller frees with
 * SSL_CTX_free.
 */
SSL_CTX *zt_tls_ctx_new(const zt_tls_opts *o, zt_err *e);

#define ZT_TLS_TICKET_SECONDS 3600

/*
 * Client side of resumption: names the peer this connection goes to (an
 * address, say) and offers the session kept for it, when there is one
 * whose verdict still holds. Sessions the peer issues on this connection
 * are kept under the same key. Call before the handshake; harmless on a
 * context without `resume`.
 */
void zt_tls_client_resume(SSL *ssl, const char *peer_key);

/*
 * A server context for clients without SVIDs (the edge): no client
 * certificate asked for, TLS 1.2 or 1.3, forward-secret AEAD suites, ALPN
 * http/1.1, session resumption on (there is no peer identity to re-check).
 * cert is the server's certificate (any key type), chain what follows it.
 * Caller frees with SSL_CTX_free.
 */
SSL_CTX *zt_tls_edge_ctx_new(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key, zt_err *e);

/*
 * A client context for servers outside the mesh (an identity provider's
 * JWKS and discovery documents): the Web PKI's rules, the server's chain
 * checked against the PEM anchors in ca_file (NULL: the system's store),
 * TLS 1.2 or 1.3. The name or address connected to must be in the
 * certificate: zt_httpc sets it on every connection (RFC 6125).
 */
SSL_CTX *zt_tls_webpki_ctx_new(const char *ca_file, zt_err *e);

/*
 * The outcome of the verification of a connection's peer, recorded by the
 * context's verify step: the peer's ID (owned by the SSL: copy it), or the
 * reason it was refused (a per-thread copy, good after the SSL is freed,
 * until the next call).
 */
const char *zt_tls_peer_id(const SSL *ssl);
/* The verified peer certificate's serial (hex) as the verifier recorded it; "" after a resumption. */
const char *zt_tls_peer_serial(const SSL *ssl);
const char *zt_tls_peer_error(const SSL *ssl);

/* Result of a non-blocking TLS step, for the loop. */
enum zt_tls_io { ZT_TLS_DONE, ZT_TLS_WANT_READ, ZT_TLS_WANT_WRITE, ZT_TLS_CLOSED, ZT_TLS_ERROR };

/* Maps the result of an SSL_* call (ret) to what the loop should do. */
enum zt_tls_io zt_tls_result(SSL *ssl, int ret);

/* The newest OpenSSL error as text, for logs (static buffer per thread). */
const char *zt_tls_error_text(void);

#endif /* ZT_NET_H */
