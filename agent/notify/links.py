"""Where a message points its reader: the alert's page on this daemon, the stack's page in
Contentstack, and how to acknowledge. Built once from the settings (``wiring``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from agent.notify.message import Alert


@dataclass(frozen=True)
class Links:
    #: ``[agent] external_url``: the daemon's pages as people reach them; None: no page link.
    external_url: str | None = None
    #: the region's Contentstack web app, e.g. ``https://app.contentstack.com``.
    contentstack_app: str | None = None

    def alert_page(self, fingerprint: str) -> str | None:
        if not self.external_url:
            return None
        return f"{self.external_url.rstrip('/')}/alerts/{quote(fingerprint, safe='')}"

    def stack_page(self, alert: Alert) -> str | None:
        """The stack's dashboard in Contentstack (its analytics are one click away);
        None for alerts not about one stack (automations, the source)."""
        api_key = alert.labels.get("stack")
        if not self.contentstack_app or not api_key:
            return None
        return f"{self.contentstack_app.rstrip('/')}/#!/stack/{quote(api_key, safe='')}/dashboard"

    @staticmethod
    def ack_command(fingerprint: str) -> str:
        return f"stackwatch ack {fingerprint}"
