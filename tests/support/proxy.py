"""nginx (the Debian package) in front of several ovmeet processes, round robin."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.support.processes import free_port, stop_process, wait_until


def nginx_command() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: make system-deps installs it")
    return found


class Nginx:
    """`nginx -g 'daemon off;'` with its files under `workdir`, proxying to `upstreams` (ports).

    Each answer names the instance that served it in `X-Upstream`. A `site` (a server block,
    with `{port}` where it listens) replaces that proxy.
    """

    def __init__(self, workdir: Path, upstreams: list[int], site: str | None = None) -> None:
        self.workdir = workdir
        self.upstreams = upstreams
        self.site = site
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        # As root, nginx's workers would run as nobody, who cannot use our private temp dir.
        user = "user root;\n" if os.geteuid() == 0 else ""
        site = self.site.replace("{port}", str(self.port)) if self.site else self._round_robin()
        return (
            user
            + f"""worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.workdir}/tmp/body;
    proxy_temp_path {self.workdir}/tmp/proxy;
{site}
}}
"""
        )

    def _round_robin(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in self.upstreams)
        return f"""    upstream ovmeet {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://ovmeet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_connect_timeout 2s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}"""

    def start(self) -> Nginx:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        log = (self.workdir / "nginx.out").open("wb")
        self.process = subprocess.Popen(
            [nginx_command(), "-p", str(self.workdir), "-c", str(conf), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, 20, f"nginx ({self.workdir})", self.process)
        return self

    def _answers(self) -> bool:
        return httpx.get(f"{self.base_url}/meet/health", timeout=2).status_code == 200

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
