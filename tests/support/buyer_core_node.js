// Runs the buyer's page derivations (anon_ticket/api/static/buyer-core.js, with the vendored js-sha3)
// in node, in a sandbox that looks like a browser window, for tests/test_buyer_page_js.py.
// stdin: {"calls": [[function name, ...arguments], ...]}; stdout: [{"ok": value} | {"error": text}, ...]
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const crypto = require("crypto");

const staticDir = path.join(__dirname, "..", "..", "anon_ticket", "api", "static");
const sandbox = { crypto: crypto.webcrypto, Uint8Array, BigInt, Number, String, Math, Error, Array };
sandbox.window = sandbox;
sandbox.self = sandbox;
vm.createContext(sandbox);
for (const file of ["vendor/sha3.min.js", "buyer-core.js"]) {
  vm.runInContext(fs.readFileSync(path.join(staticDir, file), "utf8"), sandbox, { filename: file });
}
const core = sandbox.AnonTicket;

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const results = input.calls.map(([name, ...args]) => {
  try {
    let value = core[name](...args.map((a) => (a && a.bytes !== undefined ? Uint8Array.from(a.bytes) : a)));
    if (value instanceof sandbox.Uint8Array || value instanceof Uint8Array) value = { bytes: Array.from(value) };
    return { ok: value };
  } catch (e) {
    return { error: String(e.message) };
  }
});
process.stdout.write(JSON.stringify(results));
