"""A small HTTP client for the platforms' REST APIs: bounded retries, Retry-After honoured."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from allegiance.config import get_settings
from allegiance.errors import DomainError


class PlatformUnavailable(DomainError):
    status = 502
    code = "platform_unavailable"
    title = "The shop platform did not answer"


class PlatformClient:
    def __init__(
        self,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings = get_settings()
        self.client = httpx.Client(
            headers={"Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=settings.integration_http_timeout_seconds,
            follow_redirects=False,
        )
        self.max_retries = settings.integration_max_retries
        self.retry_cap = settings.integration_retry_after_max_seconds
        self.sleep = sleep
        self.waited_seconds = 0.0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET with retries: 429 waits for Retry-After (capped), 5xx and network errors back
        off exponentially; other 4xx fail at once (wrong credentials stay wrong)."""
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.get(url, params=params)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._wait(min(2.0**attempt, self.retry_cap), attempt)
                continue
            if response.status_code == 429:
                last = "429 Too Many Requests"
                self._wait(self._retry_after(response), attempt)
                continue
            if response.status_code >= 500:
                last = f"{response.status_code} from the platform"
                self._wait(min(2.0**attempt, self.retry_cap), attempt)
                continue
            if response.status_code >= 400:
                raise PlatformUnavailable(
                    f"the platform answered {response.status_code}: {response.text[:200]}"
                )
            return response
        raise PlatformUnavailable(f"gave up after {self.max_retries + 1} attempts: {last}")

    def _retry_after(self, response: httpx.Response) -> float:
        try:
            seconds = float(response.headers.get("retry-after", "1"))
        except ValueError:
            seconds = 1.0
        return min(max(seconds, 0.0), self.retry_cap)

    def _wait(self, seconds: float, attempt: int) -> None:
        if attempt < self.max_retries and seconds > 0:
            self.waited_seconds += seconds
            self.sleep(seconds)
