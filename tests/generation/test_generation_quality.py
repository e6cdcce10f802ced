"""Quality scores, best-of selection and attested scores reaching review, with the real local model."""

import importlib.resources

import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.generation.app import build_generation_service
from matcha.generation.core import REPLY_OPENINGS
from matcha.generation.quality import failure_weight
from matcha.generation.settings import BackendSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.client import error_details
from tests.generation.brand_pages import CAFE_PAGES

# Learning a voice is an author's work.
AUTHOR = ("analyst", "author")
FRENCH_BRIEF = "Écris une phrase pour annoncer notre café du mois aux clients."
FACTS = generation_pb2.DraftFacts(
    product="Éthiopie Guji lavé",
    price=generation_pb2.Price(amount="12.90", currency="EUR"),
    start_date="2026-03-03",
    end_date="2026-03-09",
)


def _quick(**kwargs) -> generation_pb2.GenerationParameters:
    return generation_pb2.GenerationParameters(max_new_tokens=24, temperature=0.7, seed=11, **kwargs)


async def _learn(stub) -> None:
    await stub.LearnVoice(
        generation_pb2.LearnVoiceRequest(
            name="grain-sauvage",
            documents=[generation_pb2.SourceDocument(id=key, text=text) for key, text in CAFE_PAGES.items()],
        )
    )


@pytest.fixture(scope="module")
async def review_server(postgres_url, state_dir, serve, tmp_path_factory):
    """A review service on the same state dir: it verifies with the generation service's public key."""
    settings = ReviewSettings(
        database_url=postgres_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        review_publish_dir=tmp_path_factory.mktemp("published"),
        review_service_tokens_dir=tmp_path_factory.mktemp("tokens"),
    )
    async with serve(assemble_review_service(settings).definition, settings) as server:
        yield server


async def test_best_of_reports_every_candidate_and_keeps_the_best(stub_for, tenant):
    stub = stub_for(tenant, roles=AUTHOR)
    await _learn(stub)
    reply = await stub.Generate(
        generation_pb2.GenerateRequest(
            prompt=FRENCH_BRIEF,
            voice=generation_pb2.VoiceSelection(name="grain-sauvage", exemplar_count=1),
            facts=FACTS,
            best_of=2,
            parameters=_quick(),
        )
    )
    # Two draws, then up to two more while neither is in the language asked and fluent enough.
    seeds = [candidate.seed for candidate in reply.candidates]
    assert 2 <= len(seeds) <= 4 and seeds == list(range(11, 11 + len(seeds)))
    (kept,) = [candidate for candidate in reply.candidates if candidate.selected]
    assert kept.text == reply.text and kept.quality == reply.quality
    others = [candidate for candidate in reply.candidates if not candidate.selected]

    def rank(quality):
        return (not quality.language_match, failure_weight(list(quality.failed_checks)), -quality.overall)

    assert all(rank(reply.quality) <= rank(candidate.quality) for candidate in others)
    quality = reply.quality
    assert quality.language == "fr" and quality.word_count > 0 and quality.HasField("voice_score")
    assert 0.0 <= quality.unknown_word_share <= 1.0 and 0.0 <= quality.repeated_ngram_share <= 1.0
    assert reply.usage.completion_tokens == sum(c.completion_tokens for c in reply.candidates)
    # Honesty: a kept draft that fails a check says so, with the reasons.
    codes = [flag.code for flag in reply.flags]
    assert reply.below_threshold == bool(quality.failed_checks)
    assert ("quality.below_threshold" in codes) == reply.below_threshold
    assert set(quality.failed_checks) <= set(codes)
    assert reply.attestation


async def test_a_draft_in_the_wrong_language_never_goes_unflagged(stub_for, tenant):
    # English asked for a French brief: whatever the model writes is checked, not trusted.
    reply = await stub_for(tenant).Generate(
        generation_pb2.GenerateRequest(prompt=FRENCH_BRIEF, language="en", parameters=_quick())
    )
    quality = reply.quality
    assert quality.language == "en" and quality.detected_language
    assert quality.language_match == (quality.detected_language == "en")
    wrong = [flag for flag in reply.flags if flag.code == "quality.wrong_language"]
    assert bool(wrong) == (not quality.language_match)
    assert all(flag.severity == common_pb2.FLAG_SEVERITY_ERROR for flag in wrong)
    assert reply.below_threshold or quality.language_match


async def test_drafts_all_in_the_wrong_language_are_redrawn_begun_in_the_language_asked(stub_for, tenant):
    # With the demo's French brand voice, the small model answers this English brief in French three times.
    stub = stub_for(tenant, roles=AUTHOR)
    pages = importlib.resources.files("matcha.generation") / "samples" / "grain-sauvage"
    documents = [
        generation_pb2.SourceDocument(id=page.name, text=page.read_text())
        for page in sorted(pages.iterdir(), key=lambda page: page.name)
    ]
    await stub.LearnVoice(generation_pb2.LearnVoiceRequest(name="demo-voice", documents=documents))
    reply = await stub.Generate(
        generation_pb2.GenerateRequest(
            prompt="Write a short post announcing that the shop now opens on Sundays.",
            language="en",
            voice=generation_pb2.VoiceSelection(name="demo-voice", exemplar_count=2),
            best_of=3,
            target_words=25,
            parameters=generation_pb2.GenerationParameters(temperature=0.4, repetition_penalty=1.05, seed=7),
        )
    )
    drawn, redrawn = reply.candidates[:3], reply.candidates[3:]
    assert not any(candidate.quality.language_match for candidate in drawn)
    assert 1 <= len(redrawn) <= 3 and redrawn[0].text.startswith(REPLY_OPENINGS["en"])
    for index, candidate in enumerate(redrawn):
        earlier = reply.candidates[: 3 + index]
        if not any(other.quality.language_match for other in earlier):
            assert candidate.text.startswith(REPLY_OPENINGS["en"])
    assert reply.quality.language_match, reply.text
    # A redrawn draft is scored like any other: what it still fails stays flagged.
    assert reply.below_threshold == bool(reply.quality.failed_checks)


async def test_unsupported_claims_and_unknown_words_carry_spans(stub_for, tenant):
    # Greedy decoding of a brief that invites figures: every figure not in the facts is an unsupported claim.
    reply = await stub_for(tenant).Generate(
        generation_pb2.GenerateRequest(
            prompt="Write an SMS with a discount code, a percentage and a date for our coffee sale.",
            facts=FACTS,
            parameters=generation_pb2.GenerationParameters(max_new_tokens=48, temperature=0.0),
        )
    )
    for flag in reply.flags:
        if flag.code in ("quality.unsupported_claim", "quality.unknown_words"):
            assert flag.spans and all(0 <= span.start < span.end <= len(reply.text) for span in flag.spans)
    claims = [flag for flag in reply.flags if flag.code == "quality.unsupported_claim"]
    assert bool(claims) == bool(reply.quality.unsupported_claims)
    for claim, span in zip(reply.quality.unsupported_claims, claims[0].spans if claims else [], strict=True):
        assert reply.text[span.start : span.end].strip() == claim


async def test_attested_scores_reach_the_review_item(stub_for, connect, review_server, tenant):
    stub = stub_for(tenant, roles=AUTHOR)
    await _learn(stub)
    reply = await stub.Generate(
        generation_pb2.GenerateRequest(
            prompt=FRENCH_BRIEF,
            voice=generation_pb2.VoiceSelection(name="grain-sauvage", exemplar_count=1),
            parameters=_quick(),
        )
    )
    review = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant))

    def submission(**overrides) -> review_pb2.SubmitRequest:
        values = {
            "content": reply.text,
            "channel": review_pb2.CHANNEL_EMAIL,
            "provenance": reply.provenance,
            "voice_score": reply.quality.voice_score,
            "flags": reply.flags,
            "quality_attestation": reply.attestation,
        }
        return review_pb2.SubmitRequest(**(values | overrides))

    item = (await review.Submit(submission())).item
    assert item.voice_score == pytest.approx(reply.quality.voice_score)
    assert [flag.code for flag in item.flags] == [flag.code for flag in reply.flags] + ["review.scores_attested"]

    # What a plan author could do, refused: a better score, a dropped flag, edited content, a forged mark.
    tampered = [
        submission(voice_score=min(100.0, reply.quality.voice_score + 20)),
        submission(content=reply.text + " Offre valable demain seulement."),
        submission(quality_attestation=reply.attestation[:-4] + "AAAA"),
    ]
    if reply.flags:
        tampered.append(submission(flags=list(reply.flags)[1:]))
    for request in tampered:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await review.Submit(request)
        details = error_details(raised.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert list(details.field_violations) == ["quality_attestation"]
    forged = common_pb2.ContentFlag(code="review.scores_attested", severity=common_pb2.FLAG_SEVERITY_INFO)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await review.Submit(submission(flags=[forged], voice_score=50.0, quality_attestation=""))
    assert "flags[0].code" in error_details(raised.value).field_violations
    # Another tenant cannot reuse the attestation.
    other = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant + "-other"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await other.Submit(submission())
    assert error_details(raised.value).reason == "ATTESTATION_MISMATCH"


async def test_production_configuration_points_generation_at_tgi_or_vllm(
    generation_settings, serve, connect, local_encoder, tgi_server, openai_server, tenant
):
    """The two lines of docs/generation.md, against servers speaking TGI's and OpenAI's protocols."""
    for backend in (
        BackendSettings(name="production", kind="tgi", url=tgi_server[0]),
        BackendSettings(name="production", kind="openai", url=openai_server[0]),
    ):
        settings = generation_settings([backend], generation_default_model="production")
        async with serve(build_generation_service(settings, encoder=local_encoder), settings) as server:
            stub = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
            reply = await stub.Generate(generation_pb2.GenerateRequest(prompt=FRENCH_BRIEF, parameters=_quick()))
            assert reply.text and reply.quality.language == "fr" and reply.quality.word_count > 0
            assert reply.attestation and reply.candidates[0].selected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"language": "de"}, "language"),
        ({"best_of": 6}, "best_of"),
        ({"target_words": -1}, "target_words"),
        ({"facts": generation_pb2.DraftFacts(start_date="2026-02-30")}, "facts.start_date"),
        ({"facts": generation_pb2.DraftFacts(start_date="2026-03-09", end_date="2026-03-03")}, "facts.end_date"),
        (
            {"facts": generation_pb2.DraftFacts(price=generation_pb2.Price(amount="12,90", currency="EUR"))},
            "facts.price.amount",
        ),
        (
            {"facts": generation_pb2.DraftFacts(price=generation_pb2.Price(amount="12.90", currency="euro"))},
            "facts.price.currency",
        ),
        (
            {"facts": generation_pb2.DraftFacts(recommended_items=[generation_pb2.RecommendedItem()])},
            "facts.recommended_items[0].name",
        ),
    ],
)
async def test_bad_quality_input_is_invalid_argument_naming_the_field(stub_for, tenant, change, field):
    request = generation_pb2.GenerateRequest(prompt=FRENCH_BRIEF, parameters=_quick())
    for name, value in change.items():
        if isinstance(value, generation_pb2.DraftFacts):
            request.facts.CopyFrom(value)
        else:
            setattr(request, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for(tenant).Generate(request)
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details.field_violations


async def test_unknown_voice_is_not_found(stub_for, tenant):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for(tenant).Generate(
            generation_pb2.GenerateRequest(
                prompt=FRENCH_BRIEF, voice=generation_pb2.VoiceSelection(name="nobody"), parameters=_quick()
            )
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
