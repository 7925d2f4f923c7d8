// mint.mjs: mints a JWT with panva's jose, for zt's JWT/JWKS tests.
//
//   node mint.mjs ALG 'CLAIMS-JSON' [--kid KID] [--header 'JSON'] [--key-file PATH]
//                 [--secret SECRET]
//
// ALG: ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA (Ed25519)
//      HS256 HS384 HS512, or none (an unsecured JWT, "header.payload.").
// CLAIMS-JSON is the payload, used verbatim: mint adds no iat/exp/nbf of its own.
// --kid: the key's kid (default: the key file's kid, else the RFC 7638 thumbprint).
// --header: extra protected header members, merged over {alg, kid, typ: "JWT"};
//      a member set to null is left out ({"kid": null} mints a token without kid).
//      With "crit" or "b64" in it the token is signed with CompactSign (with
//      "b64": false, FlattenedSign, and the payload stays unencoded: RFC 7797); with an
//      "alg" other than ALG the token claims that alg while it is signed with ALG's
//      algorithm and key (node:crypto), to test verifiers that trust the header.
// --key-file PATH: the private JWK to sign with. If PATH does not exist, a fresh key
//      for ALG is generated and written there (0600), so several calls share a key.
// --secret SECRET: the HMAC secret (UTF-8) for HS*; without it (and no key file)
//      a random 32-byte secret is generated.
//
// Prints {"token", "header", "alg", "kid", "jwks": {"keys": [public JWK]},
// "private_jwk"} on stdout. For HS* the "public" JWK in jwks is the oct key itself
// (kty "oct", with k). For none, jwks is {"keys": []} and private_jwk null.
// Errors go to stderr, exit 1.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import * as jose from 'jose';

const USAGE = 'usage: node mint.mjs ALG CLAIMS-JSON [--kid KID] [--header JSON] [--key-file PATH] [--secret SECRET]';

function fail(msg) {
  process.stderr.write(`mint.mjs: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const pos = [];
  const opt = {};
  const known = new Set(['--kid', '--header', '--key-file', '--secret']);
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (known.has(a)) {
      if (i + 1 >= argv.length) fail(`${a} needs a value\n${USAGE}`);
      opt[a.slice(2)] = argv[i + 1];
      i += 1;
    } else if (a.startsWith('--')) {
      fail(`unknown option ${a}\n${USAGE}`);
    } else {
      pos.push(a);
    }
  }
  if (pos.length !== 2) fail(USAGE);
  return { alg: pos[0], claims: pos[1], ...opt };
}

function parseJSON(what, text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(`${what} is not JSON: ${e.message}`);
  }
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

const PUBLIC_MEMBERS = {
  EC: ['kty', 'crv', 'x', 'y'],
  RSA: ['kty', 'n', 'e'],
  OKP: ['kty', 'crv', 'x'],
};

function publicJWK(jwk) {
  if (jwk.kty === 'oct') return { ...jwk };
  const members = PUBLIC_MEMBERS[jwk.kty];
  if (!members) fail(`unsupported key type ${jwk.kty}`);
  const out = {};
  for (const m of members) out[m] = jwk[m];
  return out;
}

async function newKey(alg, secret) {
  if (alg.startsWith('HS')) {
    const k = secret !== undefined ? Buffer.from(secret, 'utf8') : crypto.randomBytes(32);
    return { kty: 'oct', k: b64u(k) };
  }
  const opts = { extractable: true };
  if (alg === 'EdDSA') opts.crv = 'Ed25519';
  const { privateKey } = await jose.generateKeyPair(alg, opts);
  return jose.exportJWK(privateKey);
}

// Signs `input` with ALG's algorithm by node:crypto (for tokens whose header lies).
function rawSign(alg, jwk, input) {
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('HS')) {
    return crypto.createHmac(hash, Buffer.from(jwk.k, 'base64url')).update(input).digest();
  }
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  if (alg === 'EdDSA' || alg === 'Ed25519') return crypto.sign(null, input, key);
  if (alg.startsWith('ES')) return crypto.sign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
  if (alg.startsWith('RS')) return crypto.sign(hash, input, key);
  if (alg.startsWith('PS')) {
    return crypto.sign(hash, input, {
      key,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: Number(alg.slice(2)) / 8,
    });
  }
  return fail(`cannot sign ${alg} with node:crypto`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { alg } = args;
  const claims = parseJSON('CLAIMS', args.claims);
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    fail('CLAIMS must be a JSON object');
  }
  const extra = args.header !== undefined ? parseJSON('--header', args.header) : {};
  if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) {
    fail('--header must be a JSON object');
  }

  if (alg === 'none') {
    const header = { alg: 'none', typ: 'JWT', ...extra };
    for (const [k, v] of Object.entries(header)) if (v === null) delete header[k];
    // what jose.UnsecuredJWT makes, with the header as asked
    const token = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}.`;
    process.stdout.write(`${JSON.stringify({
      token, header, alg, kid: header.kid ?? null, jwks: { keys: [] }, private_jwk: null,
    })}\n`);
    return;
  }

  let jwk;
  if (args['key-file'] && fs.existsSync(args['key-file'])) {
    jwk = parseJSON(`key file ${args['key-file']}`, fs.readFileSync(args['key-file'], 'utf8'));
    if (args.secret !== undefined) fail('--secret and an existing --key-file exclude each other');
  } else {
    if (args.secret !== undefined && !alg.startsWith('HS')) fail('--secret is for HS256/HS384/HS512');
    jwk = await newKey(alg, args.secret);
  }
  if (jwk.kty !== 'oct' && !jwk.d) fail('the key file holds no private key (no "d")');
  const kid = args.kid ?? jwk.kid ?? await jose.calculateJwkThumbprint(publicJWK(jwk));
  jwk = { ...jwk, kid, alg: jwk.alg ?? alg, use: 'sig' };
  if (args['key-file'] && !fs.existsSync(args['key-file'])) {
    fs.writeFileSync(args['key-file'], `${JSON.stringify(jwk)}\n`, { mode: 0o600 });
  }

  const header = { alg, kid, typ: 'JWT', ...extra };
  for (const [k, v] of Object.entries(header)) if (v === null) delete header[k];

  let token;
  if (header.alg !== alg) {
    // a header that lies about the algorithm: jose would refuse, sign by hand
    const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
    token = `${input}.${b64u(rawSign(alg, jwk, Buffer.from(input)))}`;
  } else {
    const key = await jose.importJWK({ ...jwk, alg }, alg);
    if ('crit' in header || 'b64' in header) {
      const crit = {};
      for (const name of header.crit ?? []) crit[name] = true;
      const payload = new TextEncoder().encode(JSON.stringify(claims));
      if (header.b64 === false) {
        // RFC 7797: compact form with the payload unencoded (jose signs it flattened)
        const jws = await new jose.FlattenedSign(payload).setProtectedHeader(header).sign(key, { crit });
        token = `${jws.protected}.${JSON.stringify(claims)}.${jws.signature}`;
      } else {
        token = await new jose.CompactSign(payload).setProtectedHeader(header).sign(key, { crit });
      }
    } else {
      token = await new jose.SignJWT(claims).setProtectedHeader(header).sign(key);
    }
  }

  const pub = { ...publicJWK(jwk), kid, alg, use: 'sig' };
  process.stdout.write(`${JSON.stringify({
    token, header, alg, kid, jwks: { keys: [pub] }, private_jwk: jwk,
  })}\n`);
}

main().catch((e) => fail(`${e.code ?? e.name}: ${e.message}`));
