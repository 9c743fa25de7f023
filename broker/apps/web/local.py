"""The web app as ``ketenbus up`` runs it: on 127.0.0.1, as the local deployment's
capacity-dashboard party, with demo users whose passwords are generated at run time into the
state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.apps.deployment import Deployment
from broker.apps.monitoring import figures, runinfo
from broker.apps.monitoring.collector import Collector
from broker.apps.monitoring.sample import SampleTraffic
from broker.apps.web.app import create_app
from broker.apps.web.auth import DEMO_CREDENTIALS_FILE, SessionStore, demo_users
from broker.apps.web.backend import WebBackend
from broker.apps.web.oidc import OIDC_FILE
from broker.apps.web.oidc import load as load_oidc
from broker.apps.web.server import WebServer
from broker.component import metrics
from broker.config import Settings


@dataclass
class LocalWeb:
    backend: WebBackend
    server: WebServer
    url: str
    credentials: dict[str, str]
    credentials_file: Path

    @classmethod
    async def start(
        cls, settings: Settings, deployment: Deployment, state_dir: Path, port: int
    ) -> LocalWeb:
        """Start the figures, the compliance service and the HTTP server (port 0: free)."""
        users, creds = demo_users(state_dir)
        backend = WebBackend.from_deployment(settings, deployment)
        oidc = load_oidc(state_dir / OIDC_FILE, backend.knows_party)  # when configured
        await backend.start()
        server = WebServer(create_app(backend, users, SessionStore(), oidc=oidc))
        try:
            url = await server.start(port)
        except BaseException:
            await backend.stop()
            raise
        return cls(backend, server, url, creds, state_dir / DEMO_CREDENTIALS_FILE)

    async def stop(self) -> None:
        await self.server.stop()
        await self.backend.stop()


class LocalViews:
    """What ``ketenbus up`` adds for people who watch: the web app, the metrics endpoint, the
    run file ``ketenbus monitor`` finds it by, and (demo) synthetic capacity, escalation and
    claim traffic."""

    def __init__(self, settings: Settings, deployment: Deployment, state_dir: Path,
                 out: Any) -> None:
        self.settings, self.deployment, self.state_dir, self.out = (
            settings, deployment, state_dir, out)
        self.web: LocalWeb | None = None
        self.collector: Collector | None = None
        self.traffic: SampleTraffic | None = None

    async def start(self, bootstrap: str, http_url: str | None, web_port: int | None,
                    metrics_port: int | None) -> None:
        info: dict[str, Any] = {"bootstrap": bootstrap, "zvh_http_url": http_url}
        if web_port is not None:
            self.web = await LocalWeb.start(self.settings, self.deployment, self.state_dir,
                                            web_port)
            info["web_url"] = self.web.url
            creds = " or ".join(f"[bold]{u}[/] / [bold]{p}[/]"
                                for u, p in self.web.credentials.items())
            self.out.note(f"web app: [bold]{self.web.url}[/] — sign in as {creds} "
                          f"(generated for this machine, kept in {self.web.credentials_file})")
        if metrics_port is not None:
            if self.web is not None:
                figures.FIGURES.source = self.web.backend.collector
            else:
                self.collector = Collector(self.settings)
                await self.collector.start()
                figures.FIGURES.source = self.collector
            info["metrics_url"] = metrics.serve(metrics_port)
            self.out.note(f"Prometheus metrics: [bold]{info['metrics_url']}[/]")
        runinfo.write(self.state_dir, info)
        self.out.note(f"watch it: [bold]ketenbus monitor[/] (finds this run in "
                      f"{runinfo.path(self.state_dir)})")

    async def sample(self, *, follow: bool) -> None:
        self.traffic = SampleTraffic(self.settings, self.deployment)
        await self.traffic.start()
        await self.traffic.demo()
        self.out.note("sample traffic: capacity reports, an escalation and claims sent")
        if follow:
            self.traffic.follow(15.0)

    async def stop(self) -> None:
        runinfo.remove(self.state_dir)
        if self.traffic is not None:
            await self.traffic.stop()
        figures.FIGURES.source = None
        metrics.shutdown()
        if self.web is not None:
            await self.web.stop()
        if self.collector is not None:
            await self.collector.stop()
