"""Real nginx and Caddy on loopback, configured with the snippets the docs give (conf/).

The snippets are rendered by replacing their example values (the gateway at 127.0.0.1:8082, the site
at 127.0.0.1:8000, the root /srv/www) with this test's, nothing else, so what is tested is what an
operator copies. nginx's worker runs as www-data (the master is root here): the web root and nginx's
temporary folders live in a world-readable folder outside pytest's 0700 temporary tree.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support.daemon import free_ports
from tests.support.services import need, require
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
NGINX_SNIPPET = REPO / "conf" / "nginx-access.conf"
CADDY_SNIPPET = REPO / "conf" / "Caddyfile.access"
APT = "scripts/test installs it with apt-get as root"
SECRET = b"the protected file\n"
PUBLIC = b"a public page\n"


def render(snippet: Path, gateway: str, site_port: int, root: Path) -> str:
    text = snippet.read_text(encoding="utf-8")
    for example, ours in (("127.0.0.1:8082", gateway), ("127.0.0.1:8000", f"127.0.0.1:{site_port}")):
        assert example in text, f"{snippet.name} no longer shows {example}"
        text = text.replace(example, ours)
    assert "/srv/www" in text
    return text.replace("/srv/www", str(root))


def web_root() -> Path:
    """A folder www-data can read, with /private/a.txt, the same file as /a.txt, and /index.html."""
    folder = Path(tempfile.mkdtemp(prefix="anon_ticket_proxy_", dir="/tmp"))
    os.chmod(folder, 0o755)
    (folder / "www" / "private").mkdir(parents=True)
    (folder / "www" / "private" / "a.txt").write_bytes(SECRET)
    (folder / "www" / "index.html").write_bytes(PUBLIC)
    (folder / "www" / "a.txt").write_bytes(SECRET)  # the same file, unprotected: the benchmark's baseline
    for path in (folder / "www", folder / "www" / "private"):
        os.chmod(path, 0o755)
    for path in (
        folder / "www" / "private" / "a.txt",
        folder / "www" / "index.html",
        folder / "www" / "a.txt",
    ):
        os.chmod(path, 0o644)
    return folder


class Proxy:
    """A proxy process in front of the gateway at `gateway` (host:port); `url` is the site."""

    name = "proxy"

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.folder = web_root()
        self.port = free_ports(1)[0]
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.folder / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def __enter__(self) -> Proxy:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env=self.environment(), cwd=self.folder
            )
        wait_for(f"{self.name} to listen", self._listening, 20.0, 0.05)
        return self

    def _listening(self) -> bool | None:
        import socket  # noqa: PLC0415

        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return None
        return True

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


class Nginx(Proxy):
    name = "nginx"

    def command(self) -> list[str]:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        require("nginx", os.path.exists(binary), APT)
        site = render(NGINX_SNIPPET, self.gateway, self.port, self.folder / "www")
        (self.folder / "site.conf").write_text(site, encoding="utf-8")
        temp = {name: self.folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        main = "\n".join(
            [
                "daemon off;",
                "worker_processes 2;",
                f"pid {self.folder / 'nginx.pid'};",
                f"error_log {self.folder / 'error.log'} warn;",
                "events { worker_connections 1024; }",
                "http {",
                "    access_log off;",
                "    include /etc/nginx/mime.types;",
                f"    client_body_temp_path {temp['body']};",
                f"    proxy_temp_path {temp['proxy']};",
                f"    fastcgi_temp_path {temp['fastcgi']};",
                f"    uwsgi_temp_path {temp['uwsgi']};",
                f"    scgi_temp_path {temp['scgi']};",
                f"    include {self.folder / 'site.conf'};",
                "}",
                "",
            ]
        )
        (self.folder / "nginx.conf").write_text(main, encoding="utf-8")
        return [binary, "-c", str(self.folder / "nginx.conf"), "-p", str(self.folder)]


class Caddy(Proxy):
    name = "caddy"

    def command(self) -> list[str]:
        binary = need("caddy", APT)
        site = render(CADDY_SNIPPET, self.gateway, self.port, self.folder / "www")
        # The global options a test needs: no admin endpoint, no certificates for a loopback site.
        caddyfile = "{\n\tadmin off\n\tauto_https off\n}\n\n" + site
        (self.folder / "Caddyfile").write_text(caddyfile, encoding="utf-8")
        return [binary, "run", "--config", str(self.folder / "Caddyfile"), "--adapter", "caddyfile"]

    def environment(self) -> dict[str, str]:
        home = str(self.folder / "home")
        return {**os.environ, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}


PROXIES: dict[str, type[Proxy]] = {"nginx": Nginx, "caddy": Caddy}
