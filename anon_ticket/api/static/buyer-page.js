/*
 * The buyer's page (docs/PROTOCOL.md §10): make or resume a PID, make the buyer save it, derive the
 * address to pay from /api/v1/info, then redeem until the token comes.
 *
 * The PID leaves this tab only in the body of POST /api/v1/redeem. It is kept in sessionStorage (per
 * tab, gone when the tab closes) so that a reload loses nothing; the file the buyer saves is the
 * durable copy. Every answer of the server is explained in words; the machine word goes into
 * data-field="status" for tests and assistive tools.
 */
(function () {
  "use strict";

  var A = window.AnonTicket;
  var KEY_PID = "anon_ticket.pid";
  var KEY_SAVED = "anon_ticket.saved";
  var DEFAULT_POLL_SECS = 15;
  var MINUTES_PER_BLOCK = 2;
  var MAX_PID_FILE_BYTES = 4096;

  var pollTimer = null;
  var infoTimer = null;
  var generation = 0; // bumped by "start over": answers of an older PID are ignored

  function $(id) { return document.getElementById(id); }

  /** Seconds between redeem polls: 15, or `?poll=N` for N >= 1 (tests use it; nothing below 1 s). */
  function pollSecs() {
    var value = Number(new URLSearchParams(window.location.search).get("poll"));
    return Number.isFinite(value) && value >= 1 ? value : DEFAULT_POLL_SECS;
  }

  var store = {
    get: function (key) {
      try { return window.sessionStorage.getItem(key); } catch (e) { return null; }
    },
    set: function (key, value) {
      try { window.sessionStorage.setItem(key, value); } catch (e) { /* private mode: the file is the copy */ }
    },
    clear: function () {
      try { window.sessionStorage.removeItem(KEY_PID); window.sessionStorage.removeItem(KEY_SAVED); } catch (e) { /* ignore */ }
    }
  };

  function setText(id, text) { $(id).textContent = text; }

  function show(id, visible) { $(id).hidden = !visible; }

  function focusStep(id) {
    var heading = $(id).querySelector("h2");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }

  function stopTimers() {
    if (pollTimer !== null) { window.clearTimeout(pollTimer); pollTimer = null; }
    if (infoTimer !== null) { window.clearTimeout(infoTimer); infoTimer = null; }
  }

  // -- step 1: a new PID, or one the buyer already has ------------------------------------------

  function showStart() {
    stopTimers();
    ["step-save", "step-pay", "step-token", "step-forget"].forEach(function (id) { show(id, false); });
    show("step-start", true);
  }

  function newPid() {
    var pid = A.newPid(window.crypto);
    store.set(KEY_PID, pid);
    showSave(pid);
  }

  function resumeError(text) {
    setText("resume-error", text);
    show("resume-error", text !== "");
  }

  function resume(event) {
    event.preventDefault();
    var typed = $("resume-text").value;
    var files = $("resume-file").files;
    if (typed.trim() === "" && files && files.length > 0) {
      var file = files[0];
      if (file.size > MAX_PID_FILE_BYTES) {
        resumeError("That file is far too big to be a PID file.");
        return;
      }
      file.text().then(useResumed, function () { resumeError("That file could not be read."); });
      return;
    }
    useResumed(typed);
  }

  function useResumed(text) {
    var pid = A.parsePid(text);
    if (pid === null) {
      // Never echo what was given: it may be a PID with one typo.
      resumeError("That is not a PID. A PID is exactly 64 characters, each 0–9 or a–f.");
      return;
    }
    resumeError("");
    $("resume-text").value = "";
    store.set(KEY_PID, pid);
    store.set(KEY_SAVED, "1");
    showPay(pid);
  }

  // -- step 2: save the PID before anything else ------------------------------------------------

  function showSave(pid) {
    show("step-start", false);
    show("step-save", true);
    setText("pid", pid);
    var saved = store.get(KEY_SAVED) === "1";
    $("to-pay").disabled = !saved;
    show("save-done", saved);
    setText("save-name", fileName(pid));
    focusStep("step-save");
  }

  function fileName(pid) {
    return "anon-ticket-" + A.paymentId(pid).slice(0, 8) + ".pid";
  }

  function savePid() {
    var pid = store.get(KEY_PID);
    if (pid === null) { showStart(); return; }
    // The same one-line file `client new --out FILE` writes.
    var url = URL.createObjectURL(new Blob([A.pidFileText(pid)], { type: "text/plain" }));
    var link = document.createElement("a");
    link.href = url;
    link.download = fileName(pid);
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    store.set(KEY_SAVED, "1");
    show("save-done", true);
    $("to-pay").disabled = false;
    $("to-pay").focus();
  }

  // -- step 3: the address and amount, derived here from /api/v1/info ---------------------------

  function showPay(pid) {
    stopTimers();
    show("step-start", false);
    show("step-save", false);
    show("step-pay", true);
    show("step-token", true);
    show("step-forget", true);
    setText("pid", pid);
    loadInfo(pid, generation);
    focusStep("step-pay");
  }

  function infoProblem(text, retrySecs, pid, gen) {
    setText("info-error", text);
    show("info-error", true);
    infoTimer = window.setTimeout(function () { loadInfo(pid, gen); }, retrySecs * 1000);
  }

  function loadInfo(pid, gen) {
    infoTimer = null;
    fetch("/api/v1/info", { cache: "no-store", credentials: "omit" })
      .then(function (response) {
        return response.json().then(function (body) { return { response: response, body: body }; });
      })
      .then(function (got) {
        if (gen !== generation) { return; }
        if (!got.response.ok) {
          infoProblem(
            "The shop is not ready yet (its wallet is not reachable). Trying again in a moment.",
            retryAfter(got.response, 15), pid, gen
          );
          return;
        }
        showPayment(pid, got.body, gen);
      })
      .catch(function () {
        if (gen !== generation) { return; }
        infoProblem("Cannot reach the shop (Tor can be slow). Trying again in a moment.", 15, pid, gen);
      });
  }

  function showPayment(pid, info, gen) {
    if (info.payment_id_scheme !== A.PAYMENT_ID_SCHEME) {
      setText("info-error", "This shop uses a payment scheme this page does not know: do not pay here.");
      show("info-error", true);
      return;
    }
    var paymentId = A.paymentId(pid);
    var address;
    var amount;
    try {
      address = A.integratedAddress(info.primary_address, paymentId);
      amount = A.xmr(info.min_payment_amount);
    } catch (e) {
      setText("info-error", "The shop's address or price is not valid (" + e.message + "): do not pay here.");
      show("info-error", true);
      return;
    }
    show("info-error", false);
    setText("payment-id", paymentId);
    setText("address", address);
    setText("amount", amount);
    var confirmations = info.required_confirmations;
    setText("confirmations", String(confirmations));
    setText("minutes", String(confirmations * MINUTES_PER_BLOCK));
    drawQr(A.moneroUri(address, info.min_payment_amount));
    show("pay-details", true);
    poll(pid, gen);
  }

  function drawQr(uri) {
    var qr = window.qrcode(0, "M");
    qr.addData(uri);
    qr.make();
    var modules = qr.getModuleCount();
    var quiet = 4;
    var scale = Math.max(2, Math.floor(264 / (modules + 2 * quiet)));
    var canvas = $("qr");
    canvas.width = canvas.height = (modules + 2 * quiet) * scale;
    canvas.setAttribute("data-uri", uri);
    canvas.setAttribute("aria-label", "QR code of " + uri);
    var context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = "#000000";
    for (var row = 0; row < modules; row++) {
      for (var col = 0; col < modules; col++) {
        if (qr.isDark(row, col)) {
          context.fillRect((col + quiet) * scale, (row + quiet) * scale, scale, scale);
        }
      }
    }
  }

  // -- step 4: redeem until the token comes ------------------------------------------------------

  function retryAfter(response, fallback) {
    var value = Number(response.headers.get("Retry-After"));
    return Number.isFinite(value) && value > 0 ? value : fallback;
  }

  function status(word, text) {
    setText("status", word);
    setText("status-text", text);
  }

  function poll(pid, gen) {
    pollTimer = null;
    fetch("/api/v1/redeem", {
      method: "POST",
      cache: "no-store",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pid: pid })
    })
      .then(function (response) {
        return response.json().then(function (body) { return { response: response, body: body }; });
      })
      .then(function (got) {
        if (gen !== generation) { return; }
        var again = answered(got.response, got.body);
        if (again !== null) { schedule(pid, gen, again); }
      })
      .catch(function () {
        if (gen !== generation) { return; }
        status("network_error", "Cannot reach the shop right now (Tor can be slow). Nothing is lost: " +
          "trying again in " + pollSecs() + " s.");
        schedule(pid, gen, pollSecs());
      });
  }

  function schedule(pid, gen, secs) {
    pollTimer = window.setTimeout(function () { poll(pid, gen); }, secs * 1000);
  }

  /** Show what the server said; seconds until the next poll, or null to stop. */
  function answered(response, body) {
    var every = pollSecs();
    var code = response.status;
    var word = body.status || body.error || String(code);
    if (code === 200 && body.token) {
      status(word, "Paid and confirmed (" + A.xmr(body.amount) + " XMR). Here is your token.");
      setText("token", body.token);
      show("token-box", true);
      show("step-pay", false); // paid: the address and QR code are no longer needed
      setText("status-title", "Your token");
      $("copy-token").focus();
      return null;
    }
    if (code === 202) {
      status(word, "Payment seen: " + A.xmr(body.amount) + " XMR, " + body.confirmations + " of " +
        body.required_confirmations + " confirmations. Your token comes when all " +
        body.required_confirmations + " are there (about " + MINUTES_PER_BLOCK +
        " minutes each). This page checks every " + every + " s; you can leave it open.");
      return every;
    }
    if (code === 404 && body.error === "payment_not_found") {
      status(word, "No payment seen yet for this PID. After you send it, it shows up here within a " +
        "minute or two. This page checks every " + every + " s.");
      return every;
    }
    if (code === 402) {
      var missing = body.min_payment_amount - body.amount;
      status(word, "Your payment arrived and is confirmed, but it is less than the price: " +
        A.xmr(body.amount) + " XMR received, " + A.xmr(body.min_payment_amount) + " XMR needed. " +
        "Send the rest (" + A.xmr(missing > 0 ? missing : 0) + " XMR) to the same address; payments add up.");
      return every;
    }
    if (code === 410 && body.reason === "payment_reorged") {
      status(word, "Your payment was undone by a reorganisation of the Monero chain and is not " +
        "visible any more. If it is mined again, your token comes back; this page keeps checking.");
      return every;
    }
    if (code === 410) {
      status(word, "The operator has revoked the token of this PID. Paying again will not bring it " +
        "back; contact the operator if you think this is a mistake.");
      return null;
    }
    if (code === 429) {
      var wait = Math.max(every, retryAfter(response, every));
      status(word, "Too many requests right now: the shop is protecting itself. Nothing is lost: " +
        "trying again in " + wait + " s.");
      return wait;
    }
    if (code === 503) {
      var later = Math.max(every, retryAfter(response, every));
      status(word, "The shop is busy or one of its parts is briefly unavailable. Nothing is lost: " +
        "trying again in " + later + " s.");
      return later;
    }
    status(word, "The shop answered: " + (body.message || code) + ".");
    return null;
  }

  // -- copy, start over ----------------------------------------------------------------------------

  function copy(id, button) {
    var text = $(id).textContent;
    var label = button.textContent;
    function done(ok) {
      button.textContent = ok ? "Copied" : "Select and copy it by hand";
      window.setTimeout(function () { button.textContent = label; }, 2000);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallbackCopy(id)); });
    } else {
      done(fallbackCopy(id));
    }
  }

  function fallbackCopy(id) {
    var range = document.createRange();
    range.selectNodeContents($(id));
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }

  function startOver() {
    if (!window.confirm("Forget this PID on this page? Only do this if you saved it or got your token.")) {
      return;
    }
    generation += 1;
    store.clear();
    ["pid", "payment-id", "address", "amount", "status", "status-text", "token"].forEach(function (id) {
      setText(id, "");
    });
    show("token-box", false);
    show("pay-details", false);
    setText("status-title", "Your payment");
    showStart();
    focusStep("step-start");
  }

  function init() {
    $("new-pid").addEventListener("click", newPid);
    $("show-resume").addEventListener("click", function () {
      var open = $("resume").hidden;
      show("resume", open);
      $("show-resume").setAttribute("aria-expanded", String(open));
      if (open) { $("resume-text").focus(); }
    });
    $("resume").addEventListener("submit", resume);
    $("save-pid").addEventListener("click", savePid);
    $("to-pay").addEventListener("click", function () {
      var pid = store.get(KEY_PID);
      if (pid !== null) { showPay(pid); } else { showStart(); }
    });
    $("copy-address").addEventListener("click", function () { copy("address", $("copy-address")); });
    $("copy-token").addEventListener("click", function () { copy("token", $("copy-token")); });
    $("forget").addEventListener("click", startOver);

    var pid = A.parsePid(store.get(KEY_PID) || "");
    if (pid === null) {
      showStart();
    } else if (store.get(KEY_SAVED) === "1") {
      showPay(pid);
    } else {
      showSave(pid);
    }
  }

  init();
})();
