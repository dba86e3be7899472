"""Where a notification goes and what is sent there: a ``Destination`` (one Apprise URL
of a channel, with the template kind its service reads best) and a ``Part`` (one
rendered send). ``template`` makes parts for destinations, ``channels`` sends them.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.notify.config import TemplateKind

_MARKDOWN = {
    "slack", "discord", "mmost", "mmosts", "msteams", "workflow", "workflows", "tgram",
    "matrix", "matrixs", "rocket", "rockets", "zulip", "gchat", "guilded", "ntfy", "ntfys",
    "gotify", "gotifys", "revolt", "wxteams", "webex", "lark", "feishu", "dingtalk",
    "mastodon", "toot", "bluesky", "signal", "signals", "whatsapp", "ryver",
}  # fmt: skip
_HTML = {
    "mailto", "mailtos", "ses", "sendgrid", "mailgun", "sparkpost", "resend", "brevo",
    "smtp2go", "postmark", "mailersend", "o365", "azure", "outlook",
}  # fmt: skip
_SHORT = {
    "twilio", "sns", "vonage", "nexmo", "clicksend", "plivo", "msg91", "bulksms", "sinch",
    "d7sms", "kavenegar", "messagebird", "burstsms", "seven", "smseagle", "smseagles",
    "httpsms", "pushover", "pover", "console", "pagerduty", "pdevents", "opsgenie",
}  # fmt: skip
#: destinations that keep one incident per alert: they receive one event per alert
#: (keyed by fingerprint) so acknowledge and resolve land on the right incident.
INCIDENT_SCHEMES = frozenset({"pagerduty", "pdevents", "opsgenie"})
#: plain webhooks, which take extra HTTP headers as ``+Name=value`` URL parameters: they
#: get the outbox row's idempotency key, the same on every retry, restart included.
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
#: the header that carries it.
IDEMPOTENCY_HEADER = "Idempotency-Key"


def template_kind(scheme: str) -> TemplateKind:
    if scheme in _MARKDOWN:
        return "markdown"
    if scheme in _HTML:
        return "html"
    if scheme in _SHORT:
        return "short"
    return "text"


@dataclass(frozen=True)
class Destination:
    """One Apprise URL of a channel. ``id`` is stable and safe to store and log."""

    id: str
    url: str  # secret
    scheme: str
    kind: TemplateKind
    display: str  # redacted, for humans

    @property
    def incident(self) -> bool:
        return self.scheme in INCIDENT_SCHEMES

    @property
    def webhook(self) -> bool:
        return self.scheme in WEBHOOK_SCHEMES


@dataclass(frozen=True)
class Part:
    """One Apprise send: a whole message, or one alert of it for incident destinations."""

    id: str  # destination id, plus ":fingerprint" for per-alert events
    title: str
    body: str
    body_format: str
    notify_type: str
    params: dict[str, str]
