"""Shopify Admin REST: orders updated since a time, page by page (cursor in the Link header)."""

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


def base_url(integration: Integration) -> str:
    if integration.api_url:
        return integration.api_url
    if integration.shop_domain:
        return f"https://{integration.shop_domain}"
    raise invalid(["body", "shop_domain"], "set shop_domain (or api_url) to reconcile")


def orders_since(
    integration: Integration, since: datetime, *, client: PlatformClient | None = None
) -> Iterator[dict[str, Any]]:
    """Every order (any status) updated at or after ``since``, with its refunds."""
    token = integration.credentials.get("access_token")
    if not token:
        raise invalid(["body", "access_token"], "set access_token to reconcile")
    settings = get_settings()
    own = client is None
    http = client or PlatformClient(headers={"X-Shopify-Access-Token": token})
    url: str | None = (
        f"{base_url(integration)}/admin/api/{settings.shopify_api_version}/orders.json"
    )
    params: dict[str, Any] | None = {
        "status": "any",
        "updated_at_min": since.isoformat(),
        "limit": 250,
    }
    try:
        for _ in range(settings.integration_max_pages):
            if url is None:
                return
            response = http.get(url, params=params)
            body = _json(response.content)
            orders = body.get("orders") if isinstance(body, dict) else None
            if not isinstance(orders, list):
                raise PlatformUnavailable("the orders page has no 'orders' list")
            yield from orders
            # the next page's URL carries page_info (and limit); other filters must not repeat
            url = response.links.get("next", {}).get("url")
            params = None
    finally:
        if own:
            http.close()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_float=Decimal)  # exact ids and money
    except ValueError as exc:
        raise PlatformUnavailable("the platform answered with something that is not JSON") from exc
