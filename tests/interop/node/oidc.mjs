// oidc.mjs: runs panva's oidc-provider on loopback as an OpenID Provider that
// issues JWT access tokens, for zt's OIDC/JWKS interop tests.
//
//   node oidc.mjs PORT [--alg ES256|RS256|PS256|EdDSA] [--ttl SECONDS]
//                      [--extra-claims 'JSON']
//
// PORT 0 picks a free port; the issuer is then the port actually bound. The issuer
// is exactly http://127.0.0.1:PORT, so discovery is at
// http://127.0.0.1:PORT/.well-known/openid-configuration and the JWKS at /jwks.
//
// One client: client_id "zt-test", client_secret "zt-test-secret" (client_secret_basic
// or client_secret_post), grant type client_credentials only. A client_credentials
// request to /token with resource=URL (any absolute http(s) URL, e.g.
// https://api.zt.test) returns a JWT access token (RFC 9068, typ "at+jwt") whose aud
// is that URL, signed with --alg (default ES256), valid --ttl seconds (default 300).
// Scopes "api:read api:write" may be requested. --extra-claims are added to every
// access token. Without resource=, the token is opaque (oidc-provider's default).
//
// The signing keys (one ES256, one RS256, one Ed25519: RS256 is oidc-provider's
// default for ID tokens) are generated at start and live for this process only.
//
// Prints one line {"issuer": "http://127.0.0.1:PORT", "ready": true} on stdout once
// listening; everything oidc-provider logs goes to stderr. Stops on SIGTERM/SIGINT.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

// oidc-provider prints its notices with console.info: keep stdout for the ready line
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

function fail(msg) {
  process.stderr.write(`oidc.mjs: ${msg}\n`);
  process.exit(1);
}

const USAGE = 'usage: node oidc.mjs PORT [--alg ES256|RS256|PS256|EdDSA] [--ttl SECONDS] [--extra-claims JSON]';

function parseArgs(argv) {
  const opt = { alg: 'ES256', ttl: '300', 'extra-claims': '{}' };
  const pos = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (['--alg', '--ttl', '--extra-claims'].includes(a)) {
      if (i + 1 >= argv.length) fail(`${a} needs a value\n${USAGE}`);
      opt[a.slice(2)] = argv[i + 1];
      i += 1;
    } else if (a.startsWith('--')) {
      fail(`unknown option ${a}\n${USAGE}`);
    } else {
      pos.push(a);
    }
  }
  if (pos.length !== 1 || !/^[0-9]+$/.test(pos[0])) fail(USAGE);
  if (!['ES256', 'RS256', 'PS256', 'EdDSA'].includes(opt.alg)) fail(`--alg ${opt.alg} not offered\n${USAGE}`);
  let extra;
  try {
    extra = JSON.parse(opt['extra-claims']);
  } catch (e) {
    fail(`--extra-claims is not JSON: ${e.message}`);
  }
  return { port: Number(pos[0]), alg: opt.alg, ttl: Number(opt.ttl), extraClaims: extra };
}

async function signingKey(alg, crv) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...(crv ? { crv } : {}) });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

function isResourceURL(value) {
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.hash;
  } catch {
    return false;
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));

  // listen first, so that PORT 0 works: the issuer needs the bound port
  let handler = (req, res) => { res.statusCode = 503; res.end(); };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const keys = [await signingKey('ES256')];
  keys.push(await signingKey('RS256'));
  keys.push(await signingKey('EdDSA', 'Ed25519'));
  if (args.alg === 'PS256') keys.push({ ...keys[1], kid: `${keys[1].kid}-ps`, alg: 'PS256' });

  const configuration = {
    clients: [{
      client_id: 'zt-test',
      client_secret: 'zt-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api:read api:write',
    }],
    scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
    jwks: { keys },
    // signs the (unused) cookies; oidc-provider warns and falls back without keys
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    enabledJWA: {
      // oidc-provider offers only a few algs by default; EdDSA/PS256 are opt-in
      idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf ?? undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (!isResourceURL(resourceIndicator)) throw new errors.InvalidTarget();
          return {
            scope: 'api:read api:write',
            audience: resourceIndicator,
            accessTokenTTL: args.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: args.alg } },
          };
        },
      },
    },
    extraTokenClaims: () => args.extraClaims,
    ttl: {
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? args.ttl,
    },
    renderError: (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err));
  handler = provider.callback();

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`${JSON.stringify({ issuer, ready: true })}\n`);
}

main().catch((e) => fail(e.stack ?? String(e)));
