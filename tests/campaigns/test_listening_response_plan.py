"""The shipped plan `listening-response` end to end, on real services: posts about a coffee roaster in a
collection of the embedding service (the local encoder), DetectSignals reading it as the caller through the
embedding service, generation with the real local model (a small token cap), review, conductor.

Over eight weekly windows customers praise the coffee, visit the roastery and ask brewing questions; in the
last four weeks late and damaged deliveries grow into a strong negative signal and double card charges into a
weak one. The run drafts a response brief and an FAQ entry per negative signal, submits each for review citing
the topic's representative posts, and publishes the approved FAQ entries only.
"""

import asyncio
import importlib.resources
import json
import time
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format

from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.plans import install_plans
from matcha.review.v1 import review_pb2, review_pb2_grpc
from tests.campaigns.conftest import until_state
from tests.support import struct

BRAND = "Grain Sauvage"
VOICE = "grain-sauvage"
MARKETER = ("analyst", "author", "operator", "publisher")
WEEKS = 8
# The analysed period ends just after the latest post, an hour before this.
END = datetime(2026, 11, 30, tzinfo=UTC)
FINISHED = (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_CANCELLED)
CHANNELS = ("forum", "social", "reviews")
# A customer who left a phone number: stored as PERSONAL, never read for listening at INTERNAL, never cited.
PERSONAL_POST = ("delivery-phone", "My Grain Sauvage parcel is lost again, call me back on 06 12 34 56 78")

# Per topic: openings and continuations, paired in turn (the second with a stride), so that posts read as
# different customers writing about the same thing.
TOPICS = {
    "taste": (
        [
            "Just brewed the Ethiopian beans from @grainsauvage",
            "Morning cup of Grain Sauvage's Peru roast",
            "Tried the Colombian coffee from Grain Sauvage in my V60",
            "The Grain Sauvage Ethiopia in the moka pot today",
            "Second bag of the Grain Sauvage house espresso",
        ],
        [
            "notes of red fruit and cocoa, really lovely",
            "smooth and floral, not bitter at all",
            "the freshest coffee I have had in years",
            "a rich chocolate finish, my new favourite",
            "so fragrant the whole kitchen smells of it",
            "bright and juicy, you can taste the farm",
            "perfectly roasted, great with a splash of milk",
        ],
        3,
    ),
    "workshop": (
        [
            "Visited the Grain Sauvage roastery on Saturday morning",
            "Watched the live roasting at the Grain Sauvage workshop",
            "Took my dad to the Saturday roasting demo at Grain Sauvage",
            "Spent the morning at the Grain Sauvage workshop by the canal",
        ],
        [
            "they offered us a cup and explained every step of the roast",
            "the team is friendly and clearly passionate about beans",
            "we left with a bag ground for our cafetiere",
            "a great way to start the weekend",
            "learned how they pick the roast profile for each origin",
            "the smell of freshly roasted beans was wonderful",
        ],
        5,
    ),
    "brewing": (
        [
            "Which grind size do you use for a French press with Grain Sauvage beans",
            "How many grams of Grain Sauvage coffee per cup for a filter brew",
            "Does anyone rest their Grain Sauvage beans a few days before brewing",
            "What water temperature works best for the Grain Sauvage Peru",
        ],
        [
            "I am still experimenting with my ratio",
            "my pour over seems a bit weak",
            "trying to get more sweetness out of it",
            "any tips from other home baristas welcome",
            "I brew about two cups every morning",
        ],
        3,
    ),
    "delivery": (
        [
            "My Grain Sauvage subscription parcel arrived a week late again",
            "Grain Sauvage delivery still missing, tracking has not moved for days",
            "The courier delivered my Grain Sauvage parcel torn open, days after the promised date",
            "Third late delivery in a row from @grainsauvage",
            "Grain Sauvage subscription box turned up crushed and the beans were stale",
        ],
        [
            "really disappointed, I pay for fresh coffee",
            "customer service has not answered my emails",
            "this is unacceptable for a paid subscription",
            "I am close to cancelling",
            "so frustrating, no coffee for the whole weekend",
            "terrible experience after two good years",
        ],
        5,
    ),
    "payment": (
        [
            "Charged twice on my credit card by the Grain Sauvage web shop",
            "The payment page failed with an error but my card was still debited",
            "Two identical card payments on my bank statement after one purchase on the website",
            "Paid by card on the website and the bank shows a double charge",
        ],
        [
            "the money has not been returned, not happy",
            "nobody explains the double payment, very annoying",
            "what a mess with the card payments",
        ],
        1,
    ),
}
# Posts per weekly window, oldest first. The complaints start halfway and grow: deliveries to a tenth of
# all posts (strong: at least 5%), card charges to seven posts (under 5%, but growing in four windows: weak).
STEADY = {"taste": [6] * WEEKS, "workshop": [5] * WEEKS, "brewing": [5] * WEEKS}
SOURING = {"delivery": [0, 0, 0, 0, 1, 3, 5, 8], "payment": [0, 0, 0, 0, 1, 1, 2, 3]}


def posts(layout: dict[str, list[int]]) -> list[tuple[str, str, datetime]]:
    """(id, text, time) of each post; a window's posts spread from its 6th hour to an hour before its end."""
    rows = []
    for topic, weekly in layout.items():
        openings, continuations, stride = TOPICS[topic]
        number = 0
        for week, count in enumerate(weekly):
            start = END - timedelta(weeks=WEEKS - week)
            for position in range(count):
                hours = 6 + (round(position * 161 / (count - 1)) if count > 1 else 0)
                text = f"{openings[number % len(openings)]}, {continuations[number * stride % len(continuations)]}"
                rows.append((f"{topic}-{number:02d}", text, start + timedelta(hours=hours)))
                number += 1
    return rows


async def _prepare(mesh, connect, tenant, layout: dict[str, list[int]]) -> None:
    """The posts in the collection `posts` (time and channel in their metadata), and the brand's voice."""
    embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(mesh["embedding"], tenant, purpose="listening"))
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="posts"))
    documents = []
    rows = [*posts(layout), (*PERSONAL_POST, END - timedelta(days=2))]
    for index, (post_id, text, moment) in enumerate(rows):
        metadata = {"posted_at": moment.isoformat().replace("+00:00", "Z"), "channel": CHANNELS[index % 3]}
        documents.append(embedding_pb2.Document(id=post_id, text=text, metadata=struct(metadata)))
    stored = await embedding.Upsert(embedding_pb2.UpsertRequest(collection="posts", documents=documents))
    # Only the post with the phone number holds personal data. In some sentences ("Third late delivery in a row
    # from Grain Sauvage") the engine takes the brand for a person's name and the post is stored as PERSONAL:
    # those posts write it as a handle.
    assert (stored.inserted, stored.raised_to_personal) == (len(rows), 1)

    samples = importlib.resources.files("matcha.generation") / "samples" / VOICE
    await generation_pb2_grpc.GenerationServiceStub(connect(mesh["generation"], tenant, roles=MARKETER)).LearnVoice(
        generation_pb2.LearnVoiceRequest(
            name=VOICE,
            documents=[
                generation_pb2.SourceDocument(id=page.name, text=page.read_text()) for page in samples.iterdir()
            ],
        )
    )


async def _start(mesh, connect, tenant) -> tuple[conductor_pb2_grpc.ConductorServiceStub, conductor_pb2.Run, int]:
    conductor = conductor_pb2_grpc.ConductorServiceStub(
        connect(mesh["conductor"], tenant, roles=MARKETER, purpose="listening")
    )
    installed = {plan.name: plan for plan in await install_plans(conductor)}
    inputs = struct(
        {
            "collection": "posts",
            "brand": BRAND,
            "time_field": "posted_at",
            "window": f"{7 * 86400}s",
            "look_back": f"{WEEKS * 7 * 86400}s",
            "voice": VOICE,
            "language": "en",
            "target_words": 8,
        }
    )
    run = (await conductor.StartRun(conductor_pb2.StartRunRequest(plan_name="listening-response", inputs=inputs))).run
    return conductor, run, installed["listening-response"].version


def _topic_of(post_ids) -> str:
    (topic,) = {post_id.rsplit("-", 1)[0] for post_id in post_ids}
    return topic


async def test_negative_signals_are_drafted_reviewed_and_only_the_faq_published(listening_mesh, connect, tenant):
    mesh = listening_mesh
    await _prepare(mesh, connect, tenant, STEADY | SOURING)
    conductor, run, plan_version = await _start(mesh, connect, tenant)
    waiting = await until_state(conductor, run.id, (conductor_pb2.RUN_STATE_WAITING,), within_seconds=300)
    steps = {step.step_id: step for step in waiting.steps}

    # The steady topics are signals too (each over 5% of the posts) but mostly positive or neutral: only the
    # two complaints remain, strong first, each built on posts of its own topic only.
    signals = json_format.MessageToDict(steps["signals"].output, preserving_proto_field_name=True)
    assert [_topic_of(post["id"] for post in topic["representative_posts"]) for topic in signals] == [
        "delivery",
        "payment",
    ]
    delivery, payment = signals
    assert (delivery["strength"], payment["strength"]) == ("SIGNAL_STRENGTH_STRONG", "SIGNAL_STRENGTH_WEAK")
    # Counted without the post that holds a phone number: the run's reads stop at its class, INTERNAL.
    assert (delivery["post_count"], payment["post_count"]) == (17, 7)
    for topic, weekly in zip(signals, SOURING.values(), strict=True):
        assert topic["sentiment_mix"]["negative"] >= 0.4
        assert [window["count"] for window in topic["counts"]] == weekly
        assert len(topic["representative_posts"]) == 3
        assert PERSONAL_POST[0] not in [post["id"] for post in topic["representative_posts"]]

    drafts = json_format.MessageToDict(steps["draft"].output, preserving_proto_field_name=True)
    assert [(draft["topic"]["id"], draft["kind"]) for draft in drafts] == [
        (delivery["id"], "brief"),
        (delivery["id"], "faq"),
        (payment["id"], "brief"),
        (payment["id"], "faq"),
    ]
    item_ids = json_format.MessageToDict(steps["submit"].output)
    rita = review_pb2_grpc.ReviewServiceStub(
        connect(mesh["review"], tenant, roles=("reviewer",), subject="rita", purpose="listening")
    )
    items = [(await rita.Get(review_pb2.GetRequest(item_id=item_id))).item for item_id in item_ids]
    expected = [
        ("Response brief", review_pb2.CHANNEL_OTHER, "response brief"),
        ("FAQ", review_pb2.CHANNEL_LANDING_PAGE, "faq"),
    ] * 2
    for item, draft, (title, channel, target) in zip(items, drafts, expected, strict=True):
        topic, generated = draft["topic"], draft["draft"]
        assert item.title == f"{title}: {topic['label']}"
        assert (item.channel, item.target) == (channel, target)
        strong = topic["strength"] == "SIGNAL_STRENGTH_STRONG"
        assert item.priority == (review_pb2.PRIORITY_URGENT if strong else review_pb2.PRIORITY_HIGH)
        assert item.content == generated["text"] != ""
        # The drafts cite the posts they were written from; the rest of the provenance is the generation
        # service's, as it reported it, and the conductor's run fields.
        expected_provenance = json_format.ParseDict(generated["provenance"], common_pb2.Provenance())
        expected_provenance.source_record_ids[:] = [post["id"] for post in topic["representative_posts"]]
        expected_provenance.MergeFrom(
            common_pb2.Provenance(
                run_id=run.id, plan_name="listening-response", plan_version=plan_version, step="submit"
            )
        )
        assert item.provenance == expected_provenance
        assert item.provenance.model.id == generated["model"]["id"] != ""
        assert (item.provenance.voice_profile, item.provenance.voice_profile_version) == (VOICE, 1)
        assert item.provenance.trace_id != "" and item.provenance.HasField("create_time")
        assert "review.scores_attested" in [flag.code for flag in item.flags]

    # The delivery brief and FAQ are approved, the card-charge brief too; its FAQ is rejected.
    delivery_brief, delivery_faq, payment_brief, payment_faq = items
    for item in (delivery_brief, delivery_faq, payment_brief):
        await rita.Decide(
            review_pb2.DecideRequest(item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
        )
    await rita.Decide(
        review_pb2.DecideRequest(
            item_id=payment_faq.id,
            version=payment_faq.version,
            outcome=review_pb2.DECISION_OUTCOME_REJECT,
            comment="wait until the bank confirms the refunds",
        )
    )
    finished = await until_state(conductor, run.id, FINISHED, within_seconds=60)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    outputs = json_format.MessageToDict(finished.outputs)
    assert outputs["signals"] == [delivery["label"], payment["label"]]
    assert outputs["items"] == item_ids
    approved, rejected = "REVIEW_STATUS_APPROVED", "REVIEW_STATUS_REJECTED"
    assert outputs["decisions"] == [approved, approved, approved, rejected]
    (publication_id,) = outputs["publications"]

    # The file sink receives the approved FAQ entry, and nothing else: briefs stay internal.
    deadline = time.monotonic() + 30
    while not (mesh["published"].exists() and list(mesh["published"].glob("*.json"))):
        assert time.monotonic() < deadline, "the file sink did not receive the approved FAQ entry"
        await asyncio.sleep(0.2)
    (published,) = mesh["published"].glob("*.json")
    document = json.loads(published.read_text())
    assert document["item_id"] == delivery_faq.id
    assert document["publication_id"] == publication_id
    assert document["content"] == delivery_faq.content
    assert document["provenance"]["run_id"] == run.id
    assert document["provenance"]["source_record_ids"] == list(delivery_faq.provenance.source_record_ids)


async def test_without_a_negative_topic_nothing_is_drafted(listening_mesh, connect, tenant):
    mesh = listening_mesh
    await _prepare(mesh, connect, tenant, STEADY)
    conductor, run, _ = await _start(mesh, connect, tenant)
    finished = await until_state(conductor, run.id, FINISHED, within_seconds=120)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    outputs = json_format.MessageToDict(finished.outputs)
    assert outputs == {"signals": [], "items": [], "decisions": [], "publications": []}
    rita = review_pb2_grpc.ReviewServiceStub(
        connect(mesh["review"], tenant, roles=("reviewer",), subject="rita", purpose="listening")
    )
    assert list((await rita.List(review_pb2.ListRequest())).items) == []
    assert not mesh["published"].exists() or not list(mesh["published"].glob("*.json"))
