"""A server-side client of the recsite API, using only Python's standard library.

Copy this file into your shop's backend. It calls recsite with your *secret* key
(sk_...), which must stay on your server: never put it in a page or an app.

    client = RecsiteClient("https://recs.example.com", os.environ["RECSITE_SECRET_KEY"])
    client.upsert_products([{"sku": "SKU-1", "title": "Blue mug", "price": "12.50",
                             "url": "https://shop.example/p/SKU-1"}])
    client.send_events([client.event("purchase", shopper="customer-42", sku="SKU-1", price="12.50")])
    recs = client.recommendations("product", shopper="customer-42", items=["SKU-1"], explain=True)
    for item in recs["items"]:
        print(item["sku"], item["title"], item["score"], item["reasons"])

Run it as a script to try it against a server:

    python recsite_client.py --api http://127.0.0.1:8000 --key sk_... [--placement home]

Every API error arrives as RecsiteError with the API's code, message and details
(see the error shape in the API reference). A 429 (throttled) is retried after the
Retry-After the server sends, a few times; events are idempotent by event_id, so a
batch whose answer was lost can be sent again as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

MAX_EVENTS_PER_REQUEST = 100
MAX_PRODUCTS_PER_REQUEST = 500


class RecsiteError(Exception):
    """An error answer of the API: HTTP status and the body's error code, message, details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}


class RecsiteClient:
    def __init__(self, base_url: str, secret_key: str, *, timeout: float = 10.0, max_retries: int = 3) -> None:
        if not secret_key.startswith("sk_"):
            raise ValueError("RecsiteClient needs a secret key (sk_...); publishable keys are for browsers")
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self.timeout = timeout
        self.max_retries = max_retries

    # --- the API -------------------------------------------------------------------

    def upsert_products(self, products: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Create or update products by SKU (fields left out keep their value).

        Sends batches of at most 500; returns the summed counts and every rejection
        (``index`` counts from the start of ``products``)."""
        total: dict[str, Any] = {"created": 0, "updated": 0, "unchanged": 0, "rejected": []}
        for start in range(0, len(products), MAX_PRODUCTS_PER_REQUEST):
            batch = list(products[start : start + MAX_PRODUCTS_PER_REQUEST])
            answer = self._request("PUT", "/api/v1/products", body={"products": batch})
            for name in ("created", "updated", "unchanged"):
                total[name] += answer[name]
            total["rejected"] += [{**r, "index": r["index"] + start} for r in answer["rejected"]]
        return total

    def send_events(self, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Send events in batches of at most 100; returns the summed counts and rejections."""
        total: dict[str, Any] = {"accepted": 0, "duplicates": 0, "rejected": [], "warnings": []}
        for start in range(0, len(events), MAX_EVENTS_PER_REQUEST):
            batch = list(events[start : start + MAX_EVENTS_PER_REQUEST])
            answer = self._request("POST", "/api/v1/events", body={"events": batch})
            total["accepted"] += answer["accepted"]
            total["duplicates"] += answer["duplicates"]
            for name in ("rejected", "warnings"):
                total[name] += [{**r, "index": r["index"] + start} for r in answer.get(name, [])]
        return total

    def recommendations(
        self,
        placement: str,
        *,
        shopper: str | None = None,
        items: Iterable[str] = (),
        limit: int | None = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        """``{"request_id", "placement", "variant", "items": [...]}`` for one placement.

        With ``explain=True`` each item's ``reasons`` say which sources proposed it and
        which rules moved it. Keep the ``request_id``: send it with the clicks on the list."""
        query: list[tuple[str, str]] = [("placement", placement)]
        if shopper:
            query.append(("shopper", shopper))
        query += [("item", sku) for sku in items]
        if limit is not None:
            query.append(("limit", str(limit)))
        if explain:
            query.append(("explain", "1"))
        return self._request("GET", "/api/v1/recommendations?" + urllib.parse.urlencode(query))

    def deactivate_product(self, sku: str) -> dict[str, Any]:
        return self._request("DELETE", "/api/v1/products/" + urllib.parse.quote(sku, safe=""))

    def erase_shopper(self, shopper: str) -> dict[str, Any]:
        return self._request("DELETE", "/api/v1/shoppers/" + urllib.parse.quote(shopper, safe=""))

    @staticmethod
    def event(
        type: str,
        *,
        shopper: str,
        sku: str,
        event_id: str | None = None,
        ts: datetime | None = None,
        **optional: Any,
    ) -> dict[str, Any]:
        """One event with a fresh event_id and the current time, plus any optional field
        (session, request_id, quantity, price). Keep the event_id if you may send it again."""
        event = {
            "event_id": event_id or str(uuid.uuid4()),
            "type": type,
            "shopper": shopper,
            "sku": sku,
            "ts": (ts or datetime.now(timezone.utc)).isoformat(),
        }
        event.update({name: value for name, value in optional.items() if value is not None})
        return event

    # --- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.secret_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                retry_after = error.headers.get("Retry-After")
                if error.code == 429 and attempt < self.max_retries and retry_after and retry_after.isdigit():
                    time.sleep(min(int(retry_after), 60))
                    continue
                raise _api_error(error) from None
        raise AssertionError("unreachable: the last attempt returns or raises")


def _api_error(error: urllib.error.HTTPError) -> RecsiteError:
    raw = error.read()
    try:
        problem = json.loads(raw)["error"]
        return RecsiteError(error.code, problem["code"], problem["message"], problem.get("details"))
    except (ValueError, KeyError, TypeError):
        return RecsiteError(error.code, "http_error", raw[:200].decode(errors="replace") or str(error.reason))


def main(argv: Sequence[str] | None = None) -> int:
    """Try the API: upsert two products, send a purchase, ask for recommendations."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="recsite's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="your secret key, sk_...")
    parser.add_argument("--placement", default="home")
    args = parser.parse_args(argv)

    client = RecsiteClient(args.api, args.key)
    products = [
        {"sku": "EXAMPLE-1", "title": "Example mug", "price": "12.50", "category": "Examples",
         "url": "https://shop.example/p/EXAMPLE-1"},
        {"sku": "EXAMPLE-2", "title": "Example teapot", "price": "39.00", "category": "Examples",
         "url": "https://shop.example/p/EXAMPLE-2"},
    ]
    print("products:", client.upsert_products(products))
    print("events:", client.send_events([client.event("purchase", shopper="example-shopper", sku="EXAMPLE-1",
                                                      price="12.50", quantity=1)]))
    try:
        recs = client.recommendations(args.placement, shopper="example-shopper", items=["EXAMPLE-1"], explain=True)
    except RecsiteError as error:
        print("recommendations:", error, file=sys.stderr)
        return 1
    print(f"recommendations for {recs['placement']} (request {recs['request_id']}, variant {recs['variant']}):")
    for item in recs["items"]:
        print(f"  {item['sku']:<12} {item['title'][:40]:<40} score {item['score']:.3f}  {item['reasons']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
