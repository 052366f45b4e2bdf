"""`serve`: the HTTP API and the web UI over a workspace, on one address (`visor serve`)."""

from __future__ import annotations

from collections.abc import Callable

from visor.config import Settings, get_settings
from visor.errors import VisorError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    allow_remote: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> None:
    """Serve until stopped (Ctrl-C). Binding anything but loopback needs `allow_remote`;
    a second server for one home is refused (it would be a second writer of the store). The
    server is announced in the home once the store is open, and withdrawn as it stops."""
    import uvicorn

    from visor.api.app import create_app
    from visor.client import announce_server, find_server

    settings = settings or get_settings()
    host, port = host or settings.host, port or settings.port
    loopback = host in LOOPBACK
    if not loopback and not allow_remote:
        raise VisorError(
            f"--host {host} would serve other machines: add --allow-remote if you mean it"
        )
    if not loopback:
        warn(
            f"serving {host}: anyone who can reach it sees the datasets; changes still need "
            "the token in VISOR_HOME/server.json (the UI gets it with its page)"
        )
    running = find_server(settings.home)
    if running is not None:
        raise VisorError(f"a Visor server for {settings.home} already runs at {running.url}")
    app = create_app(settings, any_host=not loopback)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    say(f"Visor on http://{host}:{port}  (API docs: /docs; Ctrl-C stops)")
    app.state.announce = lambda: announce_server(settings.home, url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
