/*
 * The buyer's derivations (docs/PROTOCOL.md §2), with no page and no network: the PID, its payment id,
 * the integrated address, the service token, amounts in XMR. Kept apart from the page so that the test
 * suite runs this very file in node against the Python implementation.
 *
 * Needs the vendored js-sha3 loaded first (globals `sha3_256` and `keccak256`): SHA3-256 for our ids,
 * Keccak-256 (the pre-standard padding Monero uses) for address checksums. Base58 is Monero's own, block
 * by block, written here: it is small and the two Python implementations test it.
 */
(function (root) {
  "use strict";

  var PAYMENT_ID_DOMAIN = "anon-ticket/payment-id/v1";
  var PAYMENT_ID_SCHEME = "sha3-256/anon-ticket/payment-id/v1";
  var ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  var FULL_BLOCK_BYTES = 8;
  var FULL_BLOCK_CHARS = 11;
  var ENCODED_BLOCK_CHARS = [0, 2, 3, 5, 6, 7, 9, 10, 11];
  var ATOMIC_PER_XMR = 1000000000000;
  // Network bytes: standard -> integrated (mainnet, testnet, stagenet).
  var INTEGRATED_BYTE = { 18: 19, 53: 54, 24: 25 };
  var KEY_BYTES = 32;
  var CHECKSUM_BYTES = 4;
  var STANDARD_ADDRESS_BYTES = 1 + 2 * KEY_BYTES + CHECKSUM_BYTES;
  var HEX_64 = /^[0-9a-fA-F]{64}$/;

  function hash(name) {
    var fn = root[name];
    if (typeof fn !== "function") {
      throw new Error(name + " is missing: the vendored js-sha3 must be loaded first");
    }
    return fn;
  }

  function hexToBytes(hex) {
    if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      throw new Error("not hex");
    }
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) {
      out[i] = parseInt(hex.substr(2 * i, 2), 16);
    }
    return out;
  }

  function bytesToHex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  function concat(parts) {
    var length = 0;
    parts.forEach(function (part) { length += part.length; });
    var out = new Uint8Array(length);
    var at = 0;
    parts.forEach(function (part) { out.set(part, at); at += part.length; });
    return out;
  }

  function ascii(text) {
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) { out[i] = text.charCodeAt(i); }
    return out;
  }

  /** The PID as text: exactly 64 hex digits, surrounding whitespace (a file's newline) ignored; lowercase, or null. */
  function parsePid(text) {
    if (typeof text !== "string" || text.length > 4096) { return null; }
    var trimmed = text.trim();
    return HEX_64.test(trimmed) ? trimmed.toLowerCase() : null;
  }

  /** 32 random bytes from the browser's CSPRNG: the buyer's secret. */
  function newPid(random) {
    var bytes = new Uint8Array(32);
    (random || root.crypto).getRandomValues(bytes);
    return bytesToHex(bytes);
  }

  /** What `client new --out FILE` writes: the PID and a newline. */
  function pidFileText(pid) {
    return pid + "\n";
  }

  /** SHA3-256("anon-ticket/payment-id/v1" + pid)[:8], as 16 lowercase hex digits. */
  function paymentId(pid) {
    var digest = hash("sha3_256").array(concat([ascii(PAYMENT_ID_DOMAIN), hexToBytes(pid)]));
    return bytesToHex(digest.slice(0, 8));
  }

  /** SHA3-256(pid | "|" | claim txid) over raw bytes, as 64 lowercase hex digits. */
  function serviceToken(pid, txid) {
    return hash("sha3_256")(concat([hexToBytes(pid), new Uint8Array([0x7c]), hexToBytes(txid)]));
  }

  function encodeBlock(block) {
    var value = BigInt(0);
    for (var i = 0; i < block.length; i++) {
      value = value * BigInt(256) + BigInt(block[i]);
    }
    var chars = [];
    var base = BigInt(ALPHABET.length);
    for (var n = 0; n < ENCODED_BLOCK_CHARS[block.length]; n++) {
      chars.push(ALPHABET[Number(value % base)]);
      value = value / base;
    }
    return chars.reverse().join("");
  }

  function decodeBlock(chunk) {
    var nbytes = ENCODED_BLOCK_CHARS.indexOf(chunk.length);
    if (nbytes < 1) { throw new Error("a block of " + chunk.length + " characters is impossible"); }
    var value = BigInt(0);
    var base = BigInt(ALPHABET.length);
    for (var i = 0; i < chunk.length; i++) {
      var digit = ALPHABET.indexOf(chunk[i]);
      if (digit < 0) { throw new Error("not a base58 character"); }
      value = value * base + BigInt(digit);
    }
    if (value >> BigInt(8 * nbytes)) { throw new Error("a block overflows " + nbytes + " bytes"); }
    var out = new Uint8Array(nbytes);
    for (var j = nbytes - 1; j >= 0; j--) {
      out[j] = Number(value & BigInt(255));
      value = value >> BigInt(8);
    }
    return out;
  }

  /** Monero base58: 8-byte blocks, each encoded on its own to a fixed number of characters. */
  function base58Encode(bytes) {
    var out = "";
    for (var start = 0; start < bytes.length; start += FULL_BLOCK_BYTES) {
      out += encodeBlock(bytes.slice(start, start + FULL_BLOCK_BYTES));
    }
    return out;
  }

  function base58Decode(text) {
    var parts = [];
    for (var start = 0; start < text.length; start += FULL_BLOCK_CHARS) {
      parts.push(decodeBlock(text.slice(start, start + FULL_BLOCK_CHARS)));
    }
    return concat(parts);
  }

  function checksum(payload) {
    return new Uint8Array(hash("keccak256").array(payload).slice(0, CHECKSUM_BYTES));
  }

  /**
   * The integrated address of `primary` (a standard address, checked in full: a typo here would send
   * money where the server never looks) with the 8-byte payment id: what the wallet's
   * make_integrated_address answers, built offline.
   */
  function integratedAddress(primary, paymentIdHex) {
    if (typeof primary !== "string" || !primary) { throw new Error("no primary address"); }
    var raw = base58Decode(primary);
    if (raw.length !== STANDARD_ADDRESS_BYTES) { throw new Error("not a primary address (length)"); }
    var payload = raw.slice(0, raw.length - CHECKSUM_BYTES);
    var expected = checksum(payload);
    for (var i = 0; i < CHECKSUM_BYTES; i++) {
      if (expected[i] !== raw[payload.length + i]) { throw new Error("address checksum mismatch"); }
    }
    var integrated = INTEGRATED_BYTE[payload[0]];
    if (integrated === undefined) { throw new Error("not a primary address (network byte)"); }
    var id = hexToBytes(paymentIdHex);
    if (id.length !== 8) { throw new Error("a payment id has 8 bytes"); }
    var body = concat([new Uint8Array([integrated]), payload.slice(1), id]);
    return base58Encode(concat([body, checksum(body)]));
  }

  /** Atomic units (an integer) as an XMR decimal with no trailing zeros: 10000000000 -> "0.01". */
  function xmr(atomic) {
    if (!Number.isSafeInteger(atomic) || atomic < 0) { throw new Error("not an amount"); }
    var whole = Math.floor(atomic / ATOMIC_PER_XMR);
    var fraction = String(atomic % ATOMIC_PER_XMR);
    while (fraction.length < 12) { fraction = "0" + fraction; }
    fraction = fraction.replace(/0+$/, "");
    return fraction ? whole + "." + fraction : String(whole);
  }

  /** The URI wallets read from the QR code. */
  function moneroUri(address, atomic) {
    return "monero:" + address + "?tx_amount=" + xmr(atomic);
  }

  root.AnonTicket = {
    PAYMENT_ID_SCHEME: PAYMENT_ID_SCHEME,
    parsePid: parsePid,
    newPid: newPid,
    pidFileText: pidFileText,
    paymentId: paymentId,
    serviceToken: serviceToken,
    base58Encode: base58Encode,
    base58Decode: base58Decode,
    integratedAddress: integratedAddress,
    xmr: xmr,
    moneroUri: moneroUri,
    hexToBytes: hexToBytes,
    bytesToHex: bytesToHex
  };
})(typeof self !== "undefined" ? self : globalThis);
