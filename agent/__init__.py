"""Stackwatch: an alerting daemon for Contentstack."""

import sys

# httpx's __init__ imports its command-line tool (``httpx._main``) to offer ``httpx.main``:
# that loads click, and pygments and rich where they are installed, about 1-2 MB of
# modules that stay in every Stackwatch process and are never used. Marking the module
# missing makes httpx take its own fallback (a ``main`` that says the CLI is not
# installed) and changes nothing else. Set before anything can import httpx.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
