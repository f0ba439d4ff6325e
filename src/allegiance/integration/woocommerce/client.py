"""WooCommerce REST v3: orders created after a time, page by page (``X-WP-TotalPages``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from allegiance.config import get_settings
from allegiance.errors import invalid
from allegiance.integration.http import PlatformClient, PlatformUnavailable
from allegiance.integration.models import Integration

PER_PAGE = 100


def orders_since(
    integration: Integration, since: datetime, *, client: PlatformClient | None = None
) -> Iterator[dict[str, Any]]:
    """Every order created after ``since`` (its refunds are in each order's ``refunds``)."""
    key = integration.credentials.get("api_key")
    secret = integration.credentials.get("api_secret")
    if not integration.api_url:
        raise invalid(["body", "api_url"], "set api_url (the shop's address) to reconcile")
    if not key or not secret:
        raise invalid(["body", "api_key"], "set api_key and api_secret to reconcile")
    settings = get_settings()
    own = client is None
    http = client or PlatformClient(auth=(key, secret))
    url = f"{integration.api_url}/wp-json/wc/v3/orders"
    try:
        page, pages = 1, 1
        while page <= min(pages, settings.integration_max_pages):
            response = http.get(
                url,
                params={
                    "after": since.strftime("%Y-%m-%dT%H:%M:%S"),
                    "page": page,
                    "per_page": PER_PAGE,
                    "dates_are_gmt": "true",
                    "orderby": "id",
                    "order": "asc",
                },
            )
            try:
                body = json.loads(response.content, parse_float=Decimal)
            except ValueError as exc:
                raise PlatformUnavailable("the orders page is not JSON") from exc
            if not isinstance(body, list):
                raise PlatformUnavailable("the orders page is not a list")
            yield from body
            try:
                pages = int(response.headers.get("x-wp-totalpages", "1"))
            except ValueError:
                pages = 1
            page += 1
    finally:
        if own:
            http.close()
