"""Matching POLYV URLs in aioresponses mocks (shared by the client and executor tests)."""

from __future__ import annotations

import re

BASE = "https://api.polyv.net"


def url_re(path: str) -> re.Pattern[str]:
    """Any request to ``path`` on the real API base, whatever its query string."""
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")
