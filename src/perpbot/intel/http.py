"""One JSON GET over httpx, its failures sorted into retryable and final ones.

:class:`JsonHttp` owns an ``httpx.AsyncClient`` (created on first use, closed by
:meth:`JsonHttp.aclose`) for one base URL with fixed headers. :meth:`JsonHttp.get_json`
raises :class:`~perpbot.intel.source.TransientError` for what a retry may fix (connection
failures, timeouts, HTTP 429 and 5xx) and a :class:`~perpbot.intel.source.SourceError`
subclass for the rest (401/403 -> ``unauthorized``, other 4xx or a body that is not JSON ->
``rejected``). Messages name the status and path only: never the headers (API keys travel in
headers) nor the query.
"""

from __future__ import annotations

from typing import Any

import httpx

from perpbot.intel.source import SourceRejected, SourceUnauthorized, TransientError

__all__ = ["JsonHttp", "USER_AGENT"]

USER_AGENT = "perpbot-intel/0.1"


class JsonHttp:
    """GET JSON (or bytes) from ``base_url`` with ``headers`` and a per-request ``timeout`` (s)."""

    def __init__(self, source: str, base_url: str, *, headers: dict[str, str] | None = None,
                 timeout: float = 5.0, client: httpx.AsyncClient | None = None) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        self.timeout = float(timeout)
        self._client = client
        self._own = client is None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                             timeout=httpx.Timeout(self.timeout), follow_redirects=True)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._own:
            await self._client.aclose()
        self._client = None

    async def get(self, path: str, params: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        """The response of ``GET base_url + path``; raises as the module docstring says."""
        try:
            resp = await self.client.get(path, params=params, headers=headers)
        except httpx.TimeoutException:
            raise TransientError(f"no answer from {self.base_url} within {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach {self.base_url} ({type(exc).__name__})") from None
        code = resp.status_code
        if code in (401, 403):
            raise SourceUnauthorized(self.source, f"HTTP {code} on {path}: the API key is missing or refused")
        if code == 429 or code >= 500:
            raise TransientError(f"HTTP {code} on {path}")
        if code >= 400:
            raise SourceRejected(self.source, f"HTTP {code} on {path}")
        return resp

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        resp = await self.get(path, params)
        try:
            return resp.json()
        except ValueError:
            raise SourceRejected(self.source, f"the answer of {path} is not JSON") from None
