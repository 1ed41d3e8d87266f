// The reference Privacy Pass implementation, @cloudflare/privacypass-ts (pinned in web/package-lock.json),
// driven from the Python tests (tests/support/privacypass_node.py): one JSON command per line on stdin,
// one JSON answer per line on stdout. Bytes travel as hex.
//
//   node privacypass_node.mjs <node_modules folder>
//
//   {"op": "request", "challenge": hex, "token_key": hex}      -> {"id": n, "token_request": hex}
//   {"op": "finalize", "id": n, "token_response": hex}         -> {"token": hex}
//   {"op": "verify", "token": hex, "token_key": hex}           -> {"valid": bool}
//   {"op": "parse_www_authenticate", "header": str}            -> {"challenge": hex, "token_key": hex}
//   {"op": "authorization", "token": hex}                      -> {"header": str}
//   {"op": "parse_authorization", "header": str}               -> {"token": hex}
//   {"op": "spki_to_enc", "token_key": hex}                    -> {"spki": hex}  (util.convertRSASSAPSSToEnc)
//   {"op": "issuer"}                                           -> {"issuer": n, "token_key": hex}  (a new key)
//   {"op": "issue", "issuer": n, "token_request": hex}         -> {"token_response": hex}
//   {"op": "version"}                                          -> {"version": str}  (the installed package's)
//
// Any exception becomes {"error": message}; the process keeps serving.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
if (!modules) {
  process.stderr.write('usage: node privacypass_node.mjs <node_modules folder>\n');
  process.exit(2);
}
const packageDir = join(modules, '@cloudflare', 'privacypass-ts');
const pp = await import(pathToFileURL(join(packageDir, 'lib', 'src', 'index.js')).href);
const { publicVerif, TokenChallenge, Token, WWWAuthenticateHeader, AuthorizationHeader, util } = pp;
const { Client, Issuer, Origin, BlindRSAMode, BLIND_RSA, TokenRequest, getPublicKeyBytes } = publicVerif;

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const unhex = (text) => new Uint8Array(Buffer.from(text, 'hex'));

async function verifyingKey(tokenKey) {
  const spki = util.convertRSASSAPSSToEnc(unhex(tokenKey));
  return crypto.subtle.importKey('spki', spki, { name: 'RSA-PSS', hash: 'SHA-384' }, true, ['verify']);
}

const clients = new Map();
const issuers = new Map();
let nextId = 0;

const operations = {
  async request({ challenge, token_key }) {
    const client = new Client(BlindRSAMode.PSS);
    const request = await client.createTokenRequest(TokenChallenge.deserialize(unhex(challenge)), unhex(token_key));
    const id = nextId++;
    clients.set(id, client);
    return { id, token_request: hex(request.serialize()) };
  },
  async finalize({ id, token_response }) {
    const client = clients.get(id);
    clients.delete(id);
    const token = await client.finalize(client.deserializeTokenResponse(unhex(token_response)));
    return { token: hex(token.serialize()) };
  },
  async verify({ token, token_key }) {
    const origin = new Origin(BlindRSAMode.PSS);
    const valid = await origin.verify(Token.deserialize(BLIND_RSA, unhex(token)), await verifyingKey(token_key));
    return { valid };
  },
  async parse_www_authenticate({ header }) {
    const parsed = WWWAuthenticateHeader.parse(header);
    if (parsed.length !== 1) throw new Error(`${parsed.length} PrivateToken challenges`);
    return { challenge: hex(parsed[0].challenge.serialize()), token_key: hex(parsed[0].tokenKey) };
  },
  async authorization({ token }) {
    return { header: new AuthorizationHeader(Token.deserialize(BLIND_RSA, unhex(token))).toString() };
  },
  async parse_authorization({ header }) {
    const parsed = AuthorizationHeader.parse(BLIND_RSA, header);
    if (parsed.length !== 1) throw new Error(`${parsed.length} PrivateToken credentials`);
    return { token: hex(parsed[0].token.serialize()) };
  },
  async issuer() {
    const keys = await Issuer.generateKey(BlindRSAMode.PSS, { modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) });
    const id = nextId++;
    issuers.set(id, new Issuer(BlindRSAMode.PSS, 'issuer.example', keys.privateKey, keys.publicKey));
    return { issuer: id, token_key: hex(await getPublicKeyBytes(keys.publicKey)) };
  },
  async issue({ issuer, token_request }) {
    const response = await issuers.get(issuer).issue(TokenRequest.deserialize(BLIND_RSA, unhex(token_request)));
    return { token_response: hex(response.serialize()) };
  },
  async version() {
    return { version: JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')).version };
  },
  async spki_to_enc({ token_key }) {
    return { spki: hex(util.convertRSASSAPSSToEnc(unhex(token_key))) };
  },
};

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let answer;
  try {
    const command = JSON.parse(line);
    const operation = operations[command.op];
    if (!operation) throw new Error(`unknown op ${command.op}`);
    answer = await operation(command);
  } catch (error) {
    answer = { error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
