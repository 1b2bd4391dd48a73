"""A minimal client of ``elim serve`` (standard library only): one kept-alive connection.

>>> from elim.serve.client import Client
>>> with Client("http://127.0.0.1:8000") as client:          # doctest: +SKIP
...     status, rows = client.predict(open("face.jpg", "rb").read())
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit


class Client:
    """Requests to one server over one HTTP/1.1 connection (reopened when the server closed it).

    Parameters
    ----------
    base_url
        ``http://HOST:PORT``.
    timeout_s
        Socket timeout of each request.
    """

    def __init__(self, base_url: str, timeout_s: float = 120.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://HOST:PORT, got {base_url!r}")
        self.host, self.port, self.timeout_s = parts.hostname, parts.port or 80, timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if attempt:
                    raise
                continue
            if response.getheader("connection", "").lower() == "close":
                self.close()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")

    def predict(
        self, data: bytes, content_type: str = "application/octet-stream", **params: Any
    ) -> tuple[int, Any]:
        """``POST /v1/predict`` with the raw bytes of one image or video: (status, parsed
        JSON: the rows, or ``{"error": ...}``). ``params``: ``every``, ``smooth``, ``features``,
        ``name``."""
        query = f"?{urlencode(params)}" if params else ""
        status, _, body = self.request(
            "POST", f"/v1/predict{query}", data, {"Content-Type": content_type}
        )
        return status, json.loads(body) if body else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):  # -> Client (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
