"""HTTP/JSON through the real gateway to the real embedding service (real model, real PostgreSQL)."""

import httpx
import pytest

REVIEWS = {
    "r1": "The battery lasts all day and charging is fast.",
    "r2": "Delivery was late and the box arrived crushed.",
    "r3": "Customer support answered my question within minutes.",
}


async def _collection_with_reviews(http: httpx.AsyncClient, name: str = "reviews") -> dict:
    created = await http.post("/v1/collections", json={"name": name, "description": "product reviews"})
    assert created.status_code == 200, created.text
    documents = [
        {"id": key, "text": text, "metadata": {"stars": stars}, "policy": {"dataClass": "DATA_CLASS_INTERNAL"}}
        for (key, text), stars in zip(REVIEWS.items(), [5, 1, 5], strict=True)
    ]
    upserted = await http.post(f"/v1/collections/{name}/documents:upsert", json={"documents": documents})
    assert upserted.status_code == 200, upserted.text
    return upserted.json()


async def test_embed_speaks_proto3_json(http):
    reply = await http.post("/v1/embeddings:embed", json={"texts": ["hello world"]})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["dimension"] == 384
    assert body["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(body["embeddings"][0]["values"]) == 384
    norm = sum(value * value for value in body["embeddings"][0]["values"]) ** 0.5
    assert norm == pytest.approx(1.0, abs=1e-3)


async def test_path_variables_body_and_camel_case_round_trip(http):
    outcome = await _collection_with_reviews(http)
    # Fields at their default value are printed too.
    assert outcome["inserted"] == 3 and outcome["updated"] == 0 and outcome["unchanged"] == 0

    found = await http.post("/v1/collections/reviews/documents:search", json={"text": "shipping was slow", "topK": 2})
    assert found.status_code == 200, found.text
    results = found.json()["results"]
    assert results[0]["id"] == "r2" and len(results) == 2
    assert results[0]["metadata"] == {"stars": 1}
    assert results[0]["policy"]["dataClass"] == "DATA_CLASS_INTERNAL"  # enums by name

    # The original field name is accepted as well as the camelCase one.
    by_proto_name = await http.post(
        "/v1/collections/reviews/documents:search", json={"text": "shipping was slow", "top_k": 1, "min_score": 0.1}
    )
    assert [result["id"] for result in by_proto_name.json()["results"]] == ["r2"]


async def test_get_and_delete_with_path_variables_and_int64_as_string(http, http_as, tenant):
    await _collection_with_reviews(http)
    collection = await http.get("/v1/collections/reviews")
    assert collection.status_code == 200, collection.text
    assert collection.json()["collection"]["documentCount"] == "3"  # int64 as a string
    assert collection.json()["collection"]["createTime"].endswith("Z")  # Timestamp as RFC 3339

    listed = await http.get("/v1/collections")
    assert [item["name"] for item in listed.json()["collections"]] == ["reviews"]

    # Dropping a whole collection takes the tenant admin's role.
    assert (await http.delete("/v1/collections/reviews")).status_code == 403
    deleted = await http_as(tenant, roles=("admin",)).delete("/v1/collections/reviews")
    assert deleted.status_code == 200 and deleted.json() == {"deletedDocuments": "3"}
    assert (await http.get("/v1/collections/reviews")).status_code == 404


async def test_post_without_body_binds_the_path(http_as, tenant):
    http = http_as(tenant, roles=("admin",), data_class="PERSONAL")
    await http.post("/v1/collections", json={"name": "people"})
    upserted = await http.post(
        "/v1/collections/people/documents:upsert",
        json={
            "documents": [
                {
                    "id": "a",
                    "text": "Alice likes tea",
                    "policy": {"dataClass": "DATA_CLASS_PERSONAL", "subjectId": "s1"},
                }
            ]
        },
    )
    assert upserted.status_code == 200, upserted.text
    erased = await http.post("/v1/subjects/s1:erase")
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"erasedDocuments": "1", "collections": ["people"]}


async def test_tenants_stay_apart_over_http(http_as, tenant):
    await _collection_with_reviews(http_as(tenant))
    other = http_as(f"{tenant}-other")
    assert (await other.get("/v1/collections")).json() == {"collections": []}
    missing = await other.get("/v1/collections/reviews")
    assert missing.status_code == 404
    assert missing.json()["code"] == 5
