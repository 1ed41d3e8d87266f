// Decodes a QR code from RGBA pixels with jsQR (web/package.json devDependency), for
// tests/test_buyer_page_browser.py: what a wallet's camera would read off the buyer's page.
// argv[2]: path of jsQR.js; stdin: {"width", "height", "rgba": base64}; stdout: JSON text or null.
"use strict";
const fs = require("fs");
const jsQR = require(process.argv[2]);
const input = JSON.parse(fs.readFileSync(0, "utf8"));
const pixels = new Uint8ClampedArray(Buffer.from(input.rgba, "base64"));
const found = jsQR(pixels, input.width, input.height);
process.stdout.write(JSON.stringify(found ? found.data : null));
