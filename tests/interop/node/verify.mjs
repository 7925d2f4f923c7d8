// verify.mjs: verifies a JWT with panva's jose (jwtVerify), for zt's JWT/JWKS tests.
//
//   node verify.mjs TOKEN (--jwks-uri URL | --jwks-file PATH | --secret SECRET)
//                   --issuer ISS [--audience AUD]... [--alg ALG]... [--typ TYP]
//                   [--clock-tolerance SECONDS] [--current-date EPOCH-SECONDS]
//                   [--ca-file PEM]
//
// --jwks-uri: a remote JWKS (jose createRemoteJWKSet, fetched with node's fetch).
// --jwks-file: a local JWKS document (jose createLocalJWKSet).
// --secret: an HMAC secret (UTF-8), for HS* tokens (a JWKS cannot hold them in jose).
// --audience, --alg: may repeat; --alg limits the accepted algorithms.
// --ca-file: a PEM bundle to trust for an https --jwks-uri (e.g. a zt server's CA).
//      Node reads extra CAs only at startup (NODE_EXTRA_CA_CERTS), so unless that
//      variable already names this file, verify.mjs runs itself again with it set.
//      Callers may as well set NODE_EXTRA_CA_CERTS themselves.
//
// On success prints the payload as JSON on stdout and exits 0. On failure prints
// the jose error code (e.g. ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED,
// ERR_JWKS_NO_MATCHING_KEY, ERR_JWT_CLAIM_VALIDATION_FAILED) alone on the first line
// of stderr, a message on the second, and exits 1; a JWKS fetch that failed below
// HTTP prints "TypeError:" and the cause's code (e.g. TypeError:ECONNREFUSED,
// TypeError:UNABLE_TO_VERIFY_LEAF_SIGNATURE for an untrusted CA). Usage errors exit 2.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as jose from 'jose';

const USAGE = 'usage: node verify.mjs TOKEN (--jwks-uri URL | --jwks-file PATH | --secret S) '
  + '--issuer ISS [--audience AUD]... [--alg ALG]... [--typ TYP] [--clock-tolerance S] '
  + '[--current-date EPOCH] [--ca-file PEM]';

function usage(msg) {
  process.stderr.write(`verify.mjs: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const single = new Set(['--jwks-uri', '--jwks-file', '--secret', '--issuer', '--typ',
    '--clock-tolerance', '--current-date', '--ca-file']);
  const multi = new Set(['--audience', '--alg']);
  const opt = { audience: [], alg: [] };
  const pos = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (single.has(a) || multi.has(a)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const name = a.slice(2);
      if (multi.has(a)) opt[name].push(argv[i + 1]);
      else opt[name] = argv[i + 1];
      i += 1;
    } else if (a === '--no-issuer') {
      opt.noIssuer = true; // a JWT-SVID names none (SPIFFE JWT-SVID 3)
    } else if (a.startsWith('--')) {
      usage(`unknown option ${a}`);
    } else {
      pos.push(a);
    }
  }
  if (pos.length !== 1) usage('one TOKEN expected');
  const sources = ['jwks-uri', 'jwks-file', 'secret'].filter((k) => opt[k] !== undefined);
  if (sources.length !== 1) usage('exactly one of --jwks-uri, --jwks-file, --secret');
  if ((opt.issuer === undefined) === !opt.noIssuer) usage('--issuer ISS or --no-issuer');
  return { token: pos[0], ...opt };
}

function failed(e) {
  // jose's errors have a code; a failed fetch of the JWKS is a TypeError whose cause
  // has one (ECONNREFUSED, UNABLE_TO_VERIFY_LEAF_SIGNATURE...): "TypeError:CODE"
  const code = e?.code ?? (e?.cause?.code ? `${e.name}:${e.cause.code}` : (e?.name ?? 'ERROR'));
  let message = e?.message ?? String(e);
  if (e?.cause instanceof Error) message += ` (cause: ${e.cause.code ?? ''} ${e.cause.message ?? e.cause})`;
  process.stderr.write(`${code}\n${message.replace(/\n/g, ' ')}\n`);
  process.exit(1);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));

  if (args['ca-file'] !== undefined) {
    const ca = path.resolve(args['ca-file']);
    if (!fs.existsSync(ca)) usage(`--ca-file ${ca} does not exist`);
    if (process.env.NODE_EXTRA_CA_CERTS !== ca) {
      const r = spawnSync(process.execPath, process.argv.slice(1), {
        stdio: 'inherit',
        env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
      });
      process.exit(r.status ?? 1);
    }
  }

  let key;
  if (args['jwks-uri'] !== undefined) {
    key = jose.createRemoteJWKSet(new URL(args['jwks-uri']), { timeoutDuration: 10000 });
  } else if (args['jwks-file'] !== undefined) {
    key = jose.createLocalJWKSet(JSON.parse(fs.readFileSync(args['jwks-file'], 'utf8')));
  } else {
    key = new TextEncoder().encode(args.secret);
  }

  const options = args.noIssuer ? {} : { issuer: args.issuer };
  if (args.audience.length) options.audience = args.audience;
  if (args.alg.length) options.algorithms = args.alg;
  if (args.typ !== undefined) options.typ = args.typ;
  if (args['clock-tolerance'] !== undefined) options.clockTolerance = Number(args['clock-tolerance']);
  if (args['current-date'] !== undefined) options.currentDate = new Date(Number(args['current-date']) * 1000);

  let result;
  try {
    result = await jose.jwtVerify(args.token, key, options);
  } catch (e) {
    failed(e);
  }
  process.stdout.write(`${JSON.stringify(result.payload)}\n`);
}

main().catch(failed);
