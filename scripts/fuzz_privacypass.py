#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris, libFuzzer) of the Privacy Pass decoders a stranger can reach.

    python scripts/fuzz_privacypass.py                 # 60 s
    python scripts/fuzz_privacypass.py --seconds 600
    python scripts/fuzz_privacypass.py --smoke         # a few thousand inputs

Each input goes to one of: TokenChallenge.decode, TokenRequest.decode, Token.decode, b64url_decode,
parse_authorization, public_key_from_spki. The rule is the one the wire module promises: a value or
`PrivateTokenMalformed`, nothing else; and what decodes encodes back to the same bytes (base64url:
to the same bytes once padding is set aside). Any other exception is a crash: libFuzzer prints the
input and the script exits non-zero. The corpus starts from valid values (a real token key, the RFC
9578 vectors' challenges), so the fuzzer begins next to the interesting edges.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from anon_ticket.errors import PrivateTokenMalformed
    from anon_ticket.privacypass.spki import public_key_from_spki
    from anon_ticket.privacypass.wire import (
        Token,
        TokenChallenge,
        TokenRequest,
        b64url_decode,
        b64url_encode,
        parse_authorization,
    )

VECTORS = REPO / "tests" / "privacypass" / "data" / "rfc9578_type2_vectors.json"
TARGETS = 6


def one_input(data: bytes) -> None:
    """One fuzz case: the first byte picks the decoder, the rest is its input."""
    if not data:
        return
    target, body = data[0] % TARGETS, data[1:]
    text = body.decode("latin-1")
    try:
        if target == 0:
            assert TokenChallenge.decode(body).encode() == body
        elif target == 1:
            assert TokenRequest.decode(body).encode() == body
        elif target == 2:
            assert Token.decode(body).encode() == body
        elif target == 3:
            assert b64url_encode(b64url_decode(text)).rstrip("=") == text.rstrip("=")
        elif target == 4:
            parse_authorization(text)
        else:
            public_key_from_spki(body)
    except PrivateTokenMalformed:
        pass


def seeds(folder: Path) -> None:
    """Valid inputs for each target, as the corpus' first entries."""
    vectors = json.loads(VECTORS.read_text())["vectors"]
    vector = vectors[0]
    token = bytes.fromhex(vector["token"])
    entries = [bytes((0,)) + bytes.fromhex(v["token_challenge"]) for v in vectors]
    entries += [
        bytes((1,)) + bytes.fromhex(vector["token_request"]),
        bytes((2,)) + token,
        bytes((3,)) + b64url_encode(token).encode(),
        bytes((4,)) + f'PrivateToken token="{b64url_encode(token)}"'.encode(),
        bytes((5,)) + bytes.fromhex(vector["pkS"]),
    ]
    for index, entry in enumerate(entries):
        (folder / f"seed-{index}").write_bytes(entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument("--smoke", action="store_true", help="a few thousand inputs only")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: a temporary one)")
    args = parser.parse_args(argv)
    import tempfile  # noqa: PLC0415 (only the command needs it)

    with tempfile.TemporaryDirectory(prefix="fuzz-privacypass-") as tmp:
        corpus = args.corpus or Path(tmp)
        corpus.mkdir(parents=True, exist_ok=True)
        seeds(corpus)
        limits = ["-runs=3000"] if args.smoke else [f"-max_total_time={args.seconds}"]
        atheris.Setup([sys.argv[0], *limits, "-max_len=2048", str(corpus)], one_input)
        atheris.Fuzz()  # exits the process: 0 when no input crashed
    return 0


if __name__ == "__main__":
    sys.exit(main())
