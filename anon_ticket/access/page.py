"""The sign-in page (docs/PROTOCOL.md §13): one HTML form, no script, the buyer's page CSP.

A browser cannot add an `Authorization` header and Tor Browser speaks no Privacy Pass, so a person
pastes the service token (or a Privacy Pass token) here once and gets the session cookie. The page
is built from a fixed template; the only values put in it (`next`, a message of ours) are
HTML-escaped. The form posts to `/login`, where the operator mounts the gateway's page.
"""

from __future__ import annotations

import html

LOGIN_PATH = "/login"
# The §10 policy, with the one change a form needs: it may post to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)
HTML_TYPE = "text/html; charset=utf-8"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Sign in</title>
</head>
<body>
<main>
<h1>Sign in</h1>
{message}<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<p><label for="token">Service token (64 hex digits, from your redeem)</label><br>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
 size="66" maxlength="200"></p>
<p><label for="private_token">or a Privacy Pass token (base64url)</label><br>
<textarea id="private_token" name="private_token" rows="4" cols="66" spellcheck="false"></textarea></p>
<p><button type="submit">Sign in</button></p>
</form>
<p>Signing in sets one cookie for this site, for a limited time. A Privacy Pass token is spent
when you sign in with it.</p>
</main>
</body>
</html>
"""


def render(next_path: str, message: str | None = None) -> bytes:
    """The page; `message` (ours, never the client's words) says why the last attempt failed."""
    shown = f'<p role="alert" id="message"><strong>{html.escape(message)}</strong></p>\n' if message else ""
    return _TEMPLATE.format(message=shown, action=LOGIN_PATH, next=html.escape(next_path, quote=True)).encode(
        "utf-8"
    )
