"""IngestItems and Recommend end to end through gRPC, on a small catalogue whose answer is known.

Five jazz customers all bought j1 and j2, two of them j3 too; ten rock customers bought r1 and r2,
five of them r3. Rock items are the most bought overall, but Alice, a jazz customer who owns j1,
should be offered j2 (bought by every jazz customer, always with j1), then j3, before any rock item.
"""

from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest

from matcha.common.v1 import common_pb2
from matcha.runtime.client import error_details
from matcha.segmentation.recommend import evidence_from_history, recommend
from matcha.segmentation.v1 import segmentation_pb2 as pb

from .conftest import POLICY, ingest_cdnow, timestamp

START = datetime(2025, 1, 1, tzinfo=UTC)
MINILM = common_pb2.ModelRef(id="all-MiniLM-L6-v2", version="1")
VECTORS = {
    "j1": [1.0, 0.0, 0.0],
    "j2": [0.9, 0.1, 0.0],
    "j3": [0.8, 0.2, 0.0],
    "r1": [0.0, 1.0, 0.0],
    "r2": [0.0, 0.9, 0.1],
    "r3": [0.0, 0.8, 0.2],
    # A new record nobody bought yet, close to j1.
    "n1": [1.0, 0.2, 0.0],
}
NAMES = {"j1": "Kind of Blue", "j2": "A Love Supreme", "j3": "Mingus Ah Um", "n1": "Blue Train"}


def purchases() -> dict[str, list[str]]:
    baskets = {f"a{n}": ["j1", "j2"] + (["j3"] if n <= 2 else []) for n in range(1, 6)}
    baskets |= {f"b{n}": ["r1", "r2"] + (["r3"] if n <= 5 else []) for n in range(1, 11)}
    baskets |= {"alice": ["j1"], "bob": ["r1"]}
    # Zed bought j1 with r3, but did not consent to campaigns: his basket must not count.
    baskets |= {"zed": ["j1", "r3"]}
    return baskets


async def refused(call, code=grpc.StatusCode.INVALID_ARGUMENT):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def ingest_shop(stub, listening_stub) -> None:
    def customer(customer_id: str) -> pb.Customer:
        # Bob has no `taste`: the rules cannot place him, so he has no segment.
        taste = {} if customer_id == "bob" else {"taste": 1.0 if customer_id[0] in "az" else 0.0}
        return pb.Customer(id=customer_id, features=taste, policy=POLICY)

    def transactions(customers) -> list[pb.Transaction]:
        return [
            pb.Transaction(
                id=f"{customer}-{item}",
                customer_id=customer,
                item_id=item,
                amount=10.0,
                time=timestamp(START + timedelta(days=number)),
            )
            for customer in customers
            for number, item in enumerate(purchases()[customer])
        ]

    consenting = [customer for customer in purchases() if customer != "zed"]
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=[customer(c) for c in consenting]))
    await stub.IngestTransactions(pb.IngestTransactionsRequest(transactions=transactions(consenting)))
    listening = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["listening"])
    zed = pb.Customer(id="zed", features={"taste": 1.0}, policy=listening)
    await listening_stub.IngestCustomers(pb.IngestCustomersRequest(customers=[zed]))
    await listening_stub.IngestTransactions(pb.IngestTransactionsRequest(transactions=transactions(["zed"])))
    reply = await stub.IngestItems(
        pb.IngestItemsRequest(
            items=[
                pb.Item(id=item, name=NAMES.get(item, ""), category="jazz" if item[0] in "jn" else "rock")
                for item in VECTORS
            ]
        )
    )
    assert (reply.inserted, reply.updated) == (len(VECTORS), 0)
    rules = pb.RulesConfig(rules=[pb.SegmentRule(id="jazz", name="Jazz", condition="taste >= 0.5")])
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="taste", rules=rules))


@pytest.fixture
async def shop(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_shop(stub, stub_for(tenant, purpose="listening"))
    return stub


def by_kind(recommendation: pb.Recommendation) -> dict[int, pb.RecommendationReason]:
    return {reason.kind: reason for reason in recommendation.reasons}


async def test_same_segment_and_co_occurrence_come_before_global_favourites(shop):
    reply = await shop.Recommend(pb.RecommendRequest(customer_id="alice"))
    assert (reply.segmentation, reply.version, reply.segment_id) == ("taste", 1, "jazz")
    ranked = [item.item_id for item in reply.recommendations]
    assert ranked[:2] == ["j2", "j3"]
    assert "j1" not in ranked  # owned
    # n1 has no buyer and, before vectors, nothing relates it to Alice: it scores 0 and is left out.
    assert set(ranked) == {"j2", "j3", "r1", "r2", "r3"}
    scores = [item.score for item in reply.recommendations]
    assert scores == sorted(scores, reverse=True)

    j2, j3 = reply.recommendations[0], reply.recommendations[1]
    assert j2.reasons[0].kind == pb.REASON_KIND_CO_OCCURRENCE
    co = by_kind(j2)[pb.REASON_KIND_CO_OCCURRENCE]
    assert co.related_item_id == "j1" and co.explanation == "bought by 5 customers who bought Kind of Blue"
    assert by_kind(j2)[pb.REASON_KIND_SEGMENT_POPULARITY].explanation == "bought by 5 of 5 customers in Jazz"
    assert by_kind(j3)[pb.REASON_KIND_CO_OCCURRENCE].explanation == "bought by 2 customers who bought Kind of Blue"
    for item in reply.recommendations:
        weights = [reason.weight for reason in item.reasons]
        assert weights == sorted(weights, reverse=True) and all(weight > 0 for weight in weights)
        assert all(reason.explanation for reason in item.reasons)
        assert item.score == pytest.approx(sum(weights))

    # Zed's j1 + r3 basket is not counted: r3 never co-occurs with j1 for a campaign.
    r3 = next(item for item in reply.recommendations if item.item_id == "r3")
    assert pb.REASON_KIND_CO_OCCURRENCE not in by_kind(r3)
    assert by_kind(r3)[pb.REASON_KIND_GLOBAL_POPULARITY].explanation == "bought by 5 of 16 customers"


async def test_content_similarity_needs_vectors_and_reaches_items_nobody_bought(shop):
    before = await shop.Recommend(pb.RecommendRequest(customer_id="alice"))
    assert all(
        reason.kind != pb.REASON_KIND_CONTENT_SIMILARITY for item in before.recommendations for reason in item.reasons
    )
    assert "n1" not in [item.item_id for item in before.recommendations]

    items = [
        pb.Item(id=item, name=NAMES.get(item, ""), vector=vector, vector_model=MINILM)
        for item, vector in VECTORS.items()
    ]
    reply = await shop.IngestItems(pb.IngestItemsRequest(items=items))
    assert (reply.inserted, reply.updated) == (0, len(VECTORS))

    after = await shop.Recommend(pb.RecommendRequest(customer_id="alice"))
    ranked = [item.item_id for item in after.recommendations]
    assert ranked[:2] == ["j2", "j3"] and "n1" in ranked
    new = after.recommendations[ranked.index("n1")]
    assert [reason.kind for reason in new.reasons] == [pb.REASON_KIND_CONTENT_SIMILARITY]
    assert new.reasons[0].related_item_id == "j1"
    assert new.reasons[0].explanation == "similar to Kind of Blue (cosine 0.98)"
    # j2 is also j1's nearest neighbour in content: that adds to its reasons, after co-occurrence.
    assert [reason.kind for reason in after.recommendations[0].reasons][:1] == [pb.REASON_KIND_CO_OCCURRENCE]
    assert pb.REASON_KIND_CONTENT_SIMILARITY in by_kind(after.recommendations[0])


async def test_owned_excluded_and_candidate_lists(shop):
    owned = await shop.Recommend(pb.RecommendRequest(customer_id="alice", include_owned=True, limit=20))
    assert "j1" in [item.item_id for item in owned.recommendations]

    limited = await shop.Recommend(pb.RecommendRequest(customer_id="alice", limit=1))
    assert [item.item_id for item in limited.recommendations] == ["j2"]

    excluded = await shop.Recommend(pb.RecommendRequest(customer_id="alice", exclude_item_ids=["j2", "unknown"]))
    assert [item.item_id for item in excluded.recommendations] == ["j3", "r1", "r2", "r3"]

    candidates = await shop.Recommend(
        pb.RecommendRequest(customer_id="alice", candidate_item_ids=["r3", "j3", "j1", "unknown"])
    )
    assert [item.item_id for item in candidates.recommendations] == ["j3", "r3"]


async def test_new_customer_gets_what_the_segment_buys(shop):
    # Carol has bought nothing yet; her taste places her among the jazz customers at once.
    await shop.IngestCustomers(
        pb.IngestCustomersRequest(customers=[pb.Customer(id="carol", features={"taste": 1.0}, policy=POLICY)])
    )
    reply = await shop.Recommend(pb.RecommendRequest(customer_id="carol"))
    assert reply.segment_id == "jazz"
    ranked = [item.item_id for item in reply.recommendations]
    # j1 (6 buyers, all jazz) comes before r2 (10 buyers, none jazz): the segment outweighs the base.
    assert ranked.index("j1") < ranked.index("r2")
    j1 = reply.recommendations[ranked.index("j1")]
    assert by_kind(j1)[pb.REASON_KIND_SEGMENT_POPULARITY].explanation == "bought by 6 of 6 customers in Jazz"
    assert by_kind(j1)[pb.REASON_KIND_GLOBAL_POPULARITY].explanation == "bought by 6 of 17 customers"
    kinds = {reason.kind for item in reply.recommendations for reason in item.reasons}
    assert kinds <= {pb.REASON_KIND_SEGMENT_POPULARITY, pb.REASON_KIND_GLOBAL_POPULARITY}


async def test_customer_without_segment_gets_global_popularity(shop):
    reply = await shop.Recommend(pb.RecommendRequest(customer_id="bob", segmentation="taste"))
    assert reply.segment_id == "" and reply.segmentation == "taste"
    ranked = [item.item_id for item in reply.recommendations]
    # Bob owns r1; r2 was bought with it by all ten rock customers.
    assert ranked[0] == "r2" and "r1" not in ranked
    for item in reply.recommendations:
        assert pb.REASON_KIND_SEGMENT_POPULARITY not in by_kind(item)
    assert pb.REASON_KIND_GLOBAL_POPULARITY in by_kind(reply.recommendations[0])


async def test_erased_customers_no_longer_count(shop, stub_for, tenant):
    admin = stub_for(tenant, roles=["admin"])
    await admin.EraseSubject(pb.EraseSubjectRequest(subject_id="a1"))
    reply = await shop.Recommend(pb.RecommendRequest(customer_id="alice"))
    j2, j3 = reply.recommendations[0], reply.recommendations[1]
    assert (j2.item_id, j3.item_id) == ("j2", "j3")
    assert by_kind(j2)[pb.REASON_KIND_SEGMENT_POPULARITY].explanation == "bought by 4 of 4 customers in Jazz"
    assert by_kind(j3)[pb.REASON_KIND_CO_OCCURRENCE].explanation == "bought by 1 customers who bought Kind of Blue"


async def test_service_ranks_like_the_core_on_arrays(shop):
    """The evidence the store reads in SQL is the evidence the core builds from the same purchases."""
    items = await shop.IngestItems(
        pb.IngestItemsRequest(items=[pb.Item(id=i, vector=v, vector_model=MINILM) for i, v in VECTORS.items()])
    )
    assert items.updated == len(VECTORS)
    item_ids = sorted(VECTORS)
    customers = sorted(customer for customer in purchases() if customer != "zed")  # zed did not consent
    rows = [
        (customers.index(customer), item_ids.index(item), float(day))
        for customer in customers
        for day, item in enumerate(purchases()[customer])
    ]
    segments = np.array([-1 if c == "bob" else 0 if c[0] == "a" else 1 for c in customers])
    vectors = np.array([VECTORS[item] for item in item_ids])
    for customer in ("alice", "bob", "a1", "b7"):
        evidence = evidence_from_history(
            item_ids, *map(np.array, zip(*rows, strict=True)), segments, customers.index(customer), vectors
        )
        expected = recommend(evidence, ~evidence.owned, 10)
        reply = await shop.Recommend(pb.RecommendRequest(customer_id=customer, segmentation="taste"))
        assert [item.item_id for item in reply.recommendations] == [item_ids[e.index] for e in expected]
        assert [item.score for item in reply.recommendations] == pytest.approx([e.score for e in expected])
        assert [[r.weight for r in item.reasons] for item in reply.recommendations] == [
            pytest.approx([r.weight for r in e.reasons]) for e in expected
        ]


async def test_not_found_and_preconditions(shop, stub_for, tenant):
    error = await refused(shop.Recommend(pb.RecommendRequest(customer_id="nobody")), grpc.StatusCode.NOT_FOUND)
    assert error_details(error).reason == "CUSTOMER_NOT_FOUND"
    error = await refused(
        shop.Recommend(pb.RecommendRequest(customer_id="alice", segmentation="nope")), grpc.StatusCode.NOT_FOUND
    )
    assert error_details(error).reason == "SEGMENTATION_NOT_FOUND"
    # Zed did not consent to campaigns.
    error = await refused(shop.Recommend(pb.RecommendRequest(customer_id="zed")), grpc.StatusCode.PERMISSION_DENIED)

    other = stub_for(f"{tenant}-other")
    await ingest_cdnow(other, 20)
    error = await refused(other.Recommend(pb.RecommendRequest(customer_id="00001")), grpc.StatusCode.NOT_FOUND)
    assert error_details(error).reason == "SEGMENTATION_NOT_FOUND"
    await other.BuildSegmentation(pb.BuildSegmentationRequest(name="cells", rules=pb.RulesConfig()))
    # CDNOW transactions name no item.
    error = await refused(
        other.Recommend(pb.RecommendRequest(customer_id="00001")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert error_details(error).reason == "NO_ITEM_HISTORY"
    # Another tenant's customer is unknown here.
    await refused(other.Recommend(pb.RecommendRequest(customer_id="alice")), grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({}, "customer_id"),
        ({"customer_id": "alice", "limit": 101}, "limit"),
        ({"customer_id": "alice", "limit": -1}, "limit"),
        ({"customer_id": "alice", "segmentation": "Not A Name"}, "segmentation"),
        ({"customer_id": "alice", "exclude_item_ids": ["j1", ""]}, "exclude_item_ids[1]"),
        ({"customer_id": "alice", "candidate_item_ids": ["x" * 129]}, "candidate_item_ids[0]"),
        ({"customer_id": "alice", "candidate_item_ids": ["x"] * 10_001}, "candidate_item_ids"),
    ],
)
async def test_bad_recommend_requests(shop, request_fields, field):
    error = await refused(shop.Recommend(pb.RecommendRequest(**request_fields)))
    assert list(error_details(error).field_violations) == [field]


def item(item_id, vector=(1.0, 0.0), model=MINILM, **fields) -> pb.Item:
    return pb.Item(id=item_id, vector=list(vector), vector_model=model, **fields)


@pytest.mark.parametrize(
    ("items", "fields"),
    [
        ([], ["items"]),
        ([pb.Item(id=f"i{n}") for n in range(10_001)], ["items"]),
        ([item("a"), item("a")], ["items[1].id"]),
        ([item("")], ["items[0].id"]),
        ([item("a", (float("nan"), 1.0))], ["items[0].vector"]),
        ([item("a", (float("inf"), 1.0))], ["items[0].vector"]),
        ([item("a", (0.0, 0.0))], ["items[0].vector"]),
        ([item("a"), item("b", (1.0, 0.0, 0.0))], ["items[1].vector"]),
        ([item("a"), item("b", model=common_pb2.ModelRef(id="other"))], ["items[1].vector"]),
        ([pb.Item(id="a", vector_model=MINILM)], ["items[0].vector_model"]),
        ([item("a", name="n" * 501, category="c" * 201)], ["items[0].name", "items[0].category"]),
    ],
)
async def test_bad_items_write_nothing(stub_for, tenant, items, fields):
    stub = stub_for(tenant)
    error = await refused(stub.IngestItems(pb.IngestItemsRequest(items=items)))
    assert list(error_details(error).field_violations) == fields
    reply = await stub.IngestItems(pb.IngestItemsRequest(items=[item("a"), item("b")]))
    assert (reply.inserted, reply.updated) == (2, 0)


async def test_one_dimension_and_model_per_tenant(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.IngestItems(pb.IngestItemsRequest(items=[item("a"), item("b"), pb.Item(id="c", name="no vector")]))
    error = await refused(stub.IngestItems(pb.IngestItemsRequest(items=[item("d", (1.0, 0.0, 0.0))])))
    assert list(error_details(error).field_violations) == ["items[0].vector"]
    error = await refused(
        stub.IngestItems(pb.IngestItemsRequest(items=[item("a", model=common_pb2.ModelRef(id="m", version="2"))]))
    )
    assert "dimension 2, model m@2" in error_details(error).field_violations["items[0].vector"]
    # Replacing every stored vector at once moves the tenant to another model.
    other_model = common_pb2.ModelRef(id="other", version="1")
    reply = await stub.IngestItems(
        pb.IngestItemsRequest(items=[item("a", (1.0, 2.0, 3.0), other_model), item("b", (3.0, 2.0, 1.0), other_model)])
    )
    assert (reply.inserted, reply.updated) == (0, 2)
    reply = await stub.IngestItems(pb.IngestItemsRequest(items=[item("e", (0.0, 0.0, 1.0), other_model)]))
    assert (reply.inserted, reply.updated) == (1, 0)


async def test_recommendations_follow_new_purchases_consent_and_erasure(shop, stub_for, tenant):
    """The store keeps the tenant's buyers between calls; every change of what counts shows in the next one."""

    async def explanations(item_id: str) -> dict[int, str]:
        reply = await shop.Recommend(pb.RecommendRequest(customer_id="alice"))
        (item,) = [item for item in reply.recommendations if item.item_id == item_id]
        return {kind: reason.explanation for kind, reason in by_kind(item).items()}

    co, segment = pb.REASON_KIND_CO_OCCURRENCE, pb.REASON_KIND_SEGMENT_POPULARITY
    assert (await explanations("j3"))[co] == "bought by 2 customers who bought Kind of Blue"
    assert co not in await explanations("r3")

    bought = pb.Transaction(id="a3-j3", customer_id="a3", item_id="j3", amount=10.0, time=timestamp(START))
    await shop.IngestTransactions(pb.IngestTransactionsRequest(transactions=[bought]))
    assert (await explanations("j3"))[co] == "bought by 3 customers who bought Kind of Blue"

    # Zed now consents to campaigns: his j1 and r3 count.
    consenting = common_pb2.RecordPolicy(data_class=POLICY.data_class, consented_purposes=["campaign", "listening"])
    await shop.IngestCustomers(
        pb.IngestCustomersRequest(customers=[pb.Customer(id="zed", features={"taste": 1.0}, policy=consenting)])
    )
    assert (await explanations("r3"))[co] == "bought by 1 customers who bought Kind of Blue"
    # Live re-assignment placed him in Jazz too.
    assert (await explanations("j2"))[segment] == "bought by 5 of 6 customers in Jazz"

    await stub_for(tenant, roles=["admin"]).EraseSubject(pb.EraseSubjectRequest(subject_id="a1"))
    after_erasure = await explanations("j2")
    assert after_erasure[co] == "bought by 4 customers who bought Kind of Blue"
    assert after_erasure[segment] == "bought by 4 of 5 customers in Jazz"
