"""The on-call's web pages, served by the daemon at ``/``: alerts, one alert with its
chart, silences, maintenance windows, the audit trail and source health. Server-rendered
(Jinja2 templates and one stylesheet shipped in the package); reading needs no
JavaScript; every change needs the API token and a form of ours (``guard``)."""

from agent.web.app import Backend, Request, Response, WebUI

__all__ = ["Backend", "Request", "Response", "WebUI"]
