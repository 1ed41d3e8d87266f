#!/usr/bin/env python3
"""Vendor the buyer's page third-party JavaScript from the npm registry, exactly as the lockfile pins it.

    python scripts/vendor_js.py            # (re)write anon_ticket/api/static/vendor/
    python scripts/vendor_js.py --check    # exit 1 if the vendored files differ from what the lockfile gives

`web/package.json` and `web/package-lock.json` pin the versions and the integrity (SHA-512) of each
npm tarball. This script copies both into a temporary folder and runs `npm ci --omit=dev
--ignore-scripts` there: npm refuses any tarball whose hash differs from the lockfile and runs no
package script. Then it copies the files the page loads, and each package's licence, into the vendor
folder. `--check` does the same into a second temporary folder and compares byte for byte, so a
vendored file edited by hand, or a lockfile bumped without re-vendoring, fails the test suite.

Why vendored and not fetched at build time: the daemon serves these bytes to Tor Browser and must
run from a wheel with no network and no node. Only the npm registry is contacted, through npm itself.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
VENDOR = REPO / "anon_ticket" / "api" / "static" / "vendor"

# package -> [(file inside the package, vendored name)]
FILES: dict[str, list[tuple[str, str]]] = {
    "js-sha3": [("build/sha3.min.js", "sha3.min.js"), ("LICENSE.txt", "js-sha3.LICENSE.txt")],
    "qrcode-generator": [("dist/qrcode.js", "qrcode.js")],
}
# qrcode-generator ships no licence file: its licence is the header of dist/qrcode.js (MIT), which is
# also written out on its own so that every vendored package has a licence file beside it.
HEADER_LICENCES: dict[str, tuple[str, str]] = {
    "qrcode-generator": ("dist/qrcode.js", "qrcode-generator.LICENSE.txt"),
}


class VendorError(Exception):
    """npm failed, or a package lacks a file we vendor."""


def install(workdir: Path) -> Path:
    """`npm ci` of the pinned runtime packages into `workdir`; its node_modules."""
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError("npm is not installed (Debian package `npm`)")
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(WEB / name, workdir / name)
    result = subprocess.run(
        [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise VendorError(f"npm ci failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return workdir / "node_modules"


def header_comment(source: Path) -> str:
    """The leading `//` comment block of a file (its licence notice)."""
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.startswith("//"):
            break
        lines.append(line[2:].removeprefix(" "))
    if not lines:
        raise VendorError(f"{source} has no licence header")
    return "\n".join(lines).strip("-\n") + "\n"


def vendor_into(dest: Path) -> list[str]:
    """Write every vendored file into `dest`; their names."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="vendor-js-") as tmp:
        modules = install(Path(tmp))
        for package, files in FILES.items():
            for inside, name in files:
                source = modules / package / inside
                if not source.is_file():
                    raise VendorError(f"{package} has no {inside}")
                shutil.copyfile(source, dest / name)
                written.append(name)
        for package, (inside, name) in HEADER_LICENCES.items():
            (dest / name).write_text(header_comment(modules / package / inside), encoding="utf-8")
            written.append(name)
    return sorted(written)


def check() -> list[str]:
    """What differs between the committed vendor folder and a fresh vendoring (empty: identical)."""
    with tempfile.TemporaryDirectory(prefix="vendor-check-") as tmp:
        fresh = Path(tmp)
        expected = vendor_into(fresh)
        present = sorted(p.name for p in VENDOR.iterdir()) if VENDOR.is_dir() else []
        problems = [f"missing: {name}" for name in expected if name not in present]
        problems += [f"not from the lockfile: {name}" for name in present if name not in expected]
        problems += [
            f"differs from the npm tarball: {name}"
            for name in expected
            if name in present and not filecmp.cmp(fresh / name, VENDOR / name, shallow=False)
        ]
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check()
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("run: python scripts/vendor_js.py", file=sys.stderr)
                return 1
            print("vendored JavaScript matches web/package-lock.json")
            return 0
        if VENDOR.is_dir():
            shutil.rmtree(VENDOR)
        for name in vendor_into(VENDOR):
            print(f"vendored {VENDOR.relative_to(REPO) / name}")
        return 0
    except VendorError as exc:
        print(f"vendor_js: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
