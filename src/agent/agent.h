/*
 * agent: zt agent, one per node (issue 8).
 *
 * It proves the node to the server once with a join token (node
 * attestation) and from then on talks to the server only over mutual TLS
 * with its own SVID (spiffe://TD/zt/agent/NODE), renewed at half life. It
 * keeps the registration entries of its node in sync, holds an SVID for
 * each (keys made here, renewed at half life, kept while the server is
 * away), and serves them on the Workload API: a Unix socket where every
 * caller is identified by the kernel (SO_PEERCRED) and its process
 * (executable, digest, cgroup) and gets exactly the SVIDs whose entries
 * it matches. docs/workload-api.md is the protocol; docs/agent.md the
 * configuration.
 *
 * Depends on core, crypto, identity, net, client.
 */
#ifndef ZT_AGENT_H
#define ZT_AGENT_H

#include "core/core.h"

/* Runs the agent of the AgentConfig in path until SIGTERM or SIGINT. */
int zt_agent_run(const char *config_path, zt_err *e) ZT_MUST_CHECK;

#endif
