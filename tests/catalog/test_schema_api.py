"""GET /api/v1/schema: the OpenAPI 3 description of the public API, without a key."""

import yaml


def test_the_schema_lists_the_ingestion_routes(api, db):
    # When the schema is fetched without a key
    response = api(None).get("/api/v1/schema")
    # Then it is an OpenAPI 3 document with every ingestion operation
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    operations = {
        (path, method): operation["operationId"]
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert operations[("/api/v1/events", "post")] == "events_send"
    assert operations[("/api/v1/products", "put")] == "products_upsert"
    assert operations[("/api/v1/products/{sku}", "delete")] == "products_deactivate"
    assert operations[("/api/v1/shoppers/{shopper_id}", "delete")] == "shoppers_erase"
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "pk_... or sk_...",
    }


def test_the_event_fields_are_documented(api, db):
    schema = yaml.safe_load(api(None).get("/api/v1/schema").content)
    event = schema["components"]["schemas"]["EventInRequest"]
    assert set(event["properties"]) == {
        "event_id",
        "type",
        "shopper",
        "sku",
        "ts",
        "session",
        "request_id",
        "quantity",
        "price",
    }
    assert set(event["required"]) == {"event_id", "type", "shopper", "sku", "ts"}
