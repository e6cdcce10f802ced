"""A one-draft campaign plan end to end: real conductor, the default local model, real review service.

The scores the generation service computed reach the review item, attested; a draft in the wrong
language is never there unflagged.
"""

import asyncio
import importlib.resources
import time

import pytest
from google.protobuf import json_format, struct_pb2

from matcha.cli.demo import BRIEF, VOICE
from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc

ROLES = ("analyst", "author", "operator", "reviewer")

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


async def _waiting(conductor, run_id: str) -> conductor_pb2.Run:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        reply = await conductor.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))
        run = reply.run
        assert run.state in (
            conductor_pb2.RUN_STATE_PENDING,
            conductor_pb2.RUN_STATE_RUNNING,
            conductor_pb2.RUN_STATE_WAITING,
        ), run.error
        if run.state == conductor_pb2.RUN_STATE_WAITING:
            return run
        await asyncio.sleep(0.3)
    raise AssertionError(f"run {run_id} never reached its review step")


async def test_campaign_plan_hands_attested_scores_to_review(
    generation_server, isolated_database, state_dir, serve, connect, tmp_path, tenant
):
    # The conductor and review service on a database of their own: another conductor of the session (with other
    # endpoints) could claim this run from a shared one.
    review_settings = ReviewSettings(
        database_url=isolated_database,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        review_publish_dir=tmp_path / "published",
        review_service_tokens_dir=tmp_path / "tokens",
    )
    async with serve(assemble_review_service(review_settings).definition, review_settings) as review_server:
        settings = ConductorSettings(
            database_url=isolated_database,
            state_dir=state_dir,
            listen_address="127.0.0.1:0",
            conductor_endpoints={
                "matcha.generation.v1.GenerationService": f"127.0.0.1:{generation_server.port}",
                "matcha.review.v1.ReviewService": f"127.0.0.1:{review_server.port}",
            },
            conductor_poll_seconds=0.3,
        )
        async with serve(build_conductor_service(settings), settings) as conductor_server:
            samples = importlib.resources.files("matcha.generation") / "samples" / VOICE
            generation = generation_pb2_grpc.GenerationServiceStub(connect(generation_server, tenant, roles=ROLES))
            await generation.LearnVoice(
                generation_pb2.LearnVoiceRequest(
                    name=VOICE,
                    documents=[
                        generation_pb2.SourceDocument(id=page.name, text=page.read_text()) for page in samples.iterdir()
                    ],
                )
            )
            conductor = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, roles=ROLES))
            await conductor.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=CAMPAIGN_PLAN))
            inputs = struct_pb2.Struct()
            inputs.update({"brief": BRIEF, "voice": VOICE})
            run = (
                await conductor.StartRun(conductor_pb2.StartRunRequest(plan_name="campaign-email", inputs=inputs))
            ).run
            run = await _waiting(conductor, run.id)

            draft = json_format.MessageToDict(run.steps[0].output)
            item_id = json_format.MessageToDict(run.steps[1].output)
            review = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=ROLES))
            item = (await review.Get(review_pb2.GetRequest(item_id=item_id))).item

    quality = draft["quality"]
    assert len(draft["candidates"]) == 3 and quality["language"] == "fr"
    assert item.content == draft["text"]
    assert item.voice_score == pytest.approx(quality["voice_score"], abs=0.01)
    codes = [flag.code for flag in item.flags]
    assert codes == [flag["code"] for flag in draft.get("flags", [])] + ["review.scores_attested"]
    if not quality.get("language_match"):
        assert "quality.wrong_language" in codes and "quality.below_threshold" in codes
    assert ("quality.below_threshold" in codes) == bool(quality.get("failed_checks"))
