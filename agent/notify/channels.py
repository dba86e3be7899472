"""Channels: named sets of Apprise destinations, and sending one rendered message to one.

Every URL is a secret (it carries tokens and passwords): URLs are registered with
``agent.redact`` when loaded, shown only in Apprise's privacy form, and errors carry
the destination's id (a hash) or its redacted form, never the URL.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from agent.config import ConfigError
from agent.notify.config import ChannelConfig
from agent.notify.destination import Destination, Part, template_kind
from agent.redact import redact, register_secret

if TYPE_CHECKING:
    import apprise


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None


class Channel:
    def __init__(self, config: ChannelConfig, asset: apprise.AppriseAsset) -> None:
        self.name = config.name
        self.timeout = config.timeout.total_seconds()
        self._asset = asset
        urls = [url.get_secret_value() for url in config.urls]
        urls += _urls_from_config_files(config.config_files, asset)
        self.destinations: list[Destination] = []
        for url in urls:
            register_secret(url)
            for piece in _secret_pieces(url):
                register_secret(piece)
            scheme = _scheme(url)
            kind = config.template or template_kind(scheme)
            self.destinations.append(
                Destination(
                    id=hashlib.sha256(url.encode()).hexdigest()[:12],
                    url=url,
                    scheme=scheme,
                    kind=kind,
                    display=_display(url, asset),
                )
            )
        # A bad URL is a config problem, reported by name and position, never by value.
        import apprise

        for index, destination in enumerate(self.destinations):
            probe = apprise.Apprise(asset=asset)
            if not probe.add(destination.url):
                raise ValueError(
                    f"channel {self.name!r}: URL #{index + 1} ({destination.scheme}://…) "
                    "is not a valid Apprise URL"
                )

    def send(self, destination: Destination, part: Part) -> SendResult:
        """Send one rendered part to one destination."""
        import apprise

        url = with_params(destination.url, part.params)
        client = apprise.Apprise(asset=self._asset)
        if not client.add(url):
            return SendResult(False, f"{destination.display}: invalid URL")
        try:
            result = client.notify(
                body=part.body,
                title=part.title,
                notify_type=part.notify_type,
                body_format=part.body_format,
                timeout=self.timeout,
            )
        except Exception as error:  # a plugin bug must not kill the deliverer
            return SendResult(False, redact(f"{destination.display}: {type(error).__name__}"))
        if result:
            return SendResult(True)
        problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        detail = problems[-1] if problems else "delivery failed"
        return SendResult(False, redact(f"{destination.display}: {detail}"))


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _urls_from_config_files(paths: list[Path], asset: apprise.AppriseAsset) -> list[str]:
    import apprise

    urls: list[str] = []
    for path in paths:
        config = apprise.AppriseConfig(asset=asset)
        if not config.add(str(path)):
            raise ValueError(f"cannot load Apprise config file {str(path)!r}")
        services = config.services()
        if not services:
            raise ValueError(f"Apprise config file {str(path)!r} defines no URLs")
        # Rebuild each service from its full URL so every send gets a fresh plugin
        # instance (reused instances throttle with real sleeps between calls).
        urls.extend(service.url(privacy=False) for service in services)
    return urls


def _display(url: str, asset: apprise.AppriseAsset) -> str:
    import apprise

    client = apprise.Apprise(asset=asset)
    if client.add(url) and len(client) == 1:
        # Apprise's privacy form masks credentials; the query string is mostly noise.
        shown = redact(client[0].url(privacy=True)).split("?", 1)[0]
        return shown + "***" if shown.endswith("://") else shown
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://***"


_TOKENISH = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-+/=]{12,}$|^[A-Za-z0-9_\-+/=]{24,}$")


def _secret_pieces(url: str) -> list[str]:
    """Parts of a URL that look like tokens (a plugin may log one on its own, e.g. a
    webhook path): user and password, token-like host, path segments and query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    pieces = [parts.username or "", parts.password or "", parts.hostname or ""]
    pieces += parts.path.split("/")
    pieces += [value for _, value in parse_qsl(parts.query)]
    found = [unquote(piece) for piece in pieces if piece and _TOKENISH.match(unquote(piece))]
    if parts.password:
        found.append(unquote(parts.password))  # passwords count whatever they look like
    return found


def with_params(url: str, params: dict[str, str]) -> str:
    """Set query parameters on an Apprise URL, replacing any of the same name."""
    if not params:
        return url
    base, _, fragment = url.partition("#")
    path, _, query = base.partition("?")
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] not in params]
    kept += [f"{key}={quote(str(value), safe='')}" for key, value in params.items()]
    joined = f"{path}?{'&'.join(kept)}"
    return f"{joined}#{fragment}" if fragment else joined


class ChannelRegistry:
    """The configured channels. Apprise (about a second to import) and every channel's
    URLs load on first use, or with ``load()``: a daemon serves before they are loaded.
    A URL Apprise refuses is a ConfigError, raised by whichever comes first."""

    def __init__(
        self,
        configs: list[ChannelConfig],
        storage_path: Path | None = None,
        *,
        pagerduty_events_url: str | None = None,
        lazy: bool = False,
    ) -> None:
        self._configs = configs
        self._storage_path = storage_path
        self._pagerduty_events_url = pagerduty_events_url
        self._lock = threading.Lock()
        self._channels: dict[str, Channel] | None = None
        if not lazy:
            self.load()

    def load(self) -> None:
        """Import Apprise (registering Stackwatch's schemes) and build every channel."""
        with self._lock:
            if self._channels is not None:
                return
            import apprise

            from agent.notify import plugins  # registers Stackwatch's schemes

            plugins.set_pagerduty_events_url(self._pagerduty_events_url)
            # Persistent storage lets stateful plugins (Opsgenie keeps the request ids it
            # needs to close an alert) work across sends and restarts.
            if self._storage_path is not None:
                self._storage_path.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.asset = apprise.AppriseAsset(
                    storage_path=str(self._storage_path), storage_mode="flush"
                )
            else:
                self.asset = apprise.AppriseAsset()
            schemes = None
            if not any(config.config_files for config in self._configs):
                schemes = {_scheme(u.get_secret_value()) for c in self._configs for u in c.urls}
            plugins.building(schemes)
            try:
                channels = {config.name: Channel(config, self.asset) for config in self._configs}
            except ValueError as error:
                raise ConfigError([str(error)]) from None
            plugins.built(d.scheme for c in channels.values() for d in c.destinations)
            self._channels = channels

    @property
    def loaded(self) -> bool:
        return self._channels is not None

    def get(self, name: str) -> Channel | None:
        self.load()
        assert self._channels is not None
        return self._channels.get(name)

    def names(self) -> list[str]:
        return [config.name for config in self._configs]
