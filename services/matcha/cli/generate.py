"""`matcha generate` (streams a draft to the terminal) and `matcha voice learn|score`."""

from pathlib import Path

import click
from google.protobuf import json_format

from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.cli.records import metadata_filter
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.mesh import GENERATION

DEFAULT_TARGET = GENERATION.local_address


@click.command()
@click.argument("brief")
@click.option("--voice", "voice_name", help="write in this voice profile")
@click.option("--model", default="", help="model name (see ListModels); the default model when unset")
@click.option("--language", default="", help="language of the draft (en, fr); the brief's when unset")
@click.option("--words", type=click.IntRange(0), default=0, help="requested length in words")
@click.option("--best-of", type=click.IntRange(1), default=1, show_default=True, help="candidates to choose from")
@click.option("--max-new-tokens", type=click.IntRange(0), default=0, help="token limit (from --words, else 256)")
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
@click.option("--seed", type=int)
@connection_options(DEFAULT_TARGET)
@run_async
async def generate(brief, voice_name, model, language, words, best_of, max_new_tokens, temperature, seed, **options):
    """Drafts text from BRIEF (streamed as it is generated when --best-of is 1), then its quality scores."""
    parameters = generation_pb2.GenerationParameters(max_new_tokens=max_new_tokens, temperature=temperature)
    if seed is not None:
        parameters.seed = seed
    fields = {"model": model, "prompt": brief, "parameters": parameters, "language": language, "target_words": words}
    voice = generation_pb2.VoiceSelection(name=voice_name) if voice_name else None
    async with channel_from(options) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        if best_of > 1:
            result = await stub.Generate(generation_pb2.GenerateRequest(**fields, voice=voice, best_of=best_of))
            click.echo(result.text)
        else:
            result = None
            async for message in stub.GenerateStream(generation_pb2.GenerateStreamRequest(**fields, voice=voice)):
                if message.HasField("result"):
                    result = message.result
                    click.echo()
                else:
                    click.echo(message.text_delta, nl=False)
    click.echo(
        f"[{result.model.id} {result.model.version}, {result.usage.prompt_tokens} prompt + "
        f"{result.usage.completion_tokens} generated tokens"
        + (f", voice {result.provenance.voice_profile} v{result.provenance.voice_profile_version}" if voice else "")
        + "]",
        err=True,
    )
    click.echo(format_quality(json_format.MessageToDict(result, preserving_proto_field_name=True)), err=True)
    for flag in result.flags:
        click.echo(f"  {flag.code}: {flag.message}", err=True)


def format_quality(reply: dict) -> str:
    """One line of a draft's scores, from a GenerateResponse in proto JSON (as a plan's step output holds it)."""
    quality = reply.get("quality", {})
    candidates = reply.get("candidates", [])
    voice = f"voice {quality['voice_score']:.0f}/100, " if "voice_score" in quality else ""
    verdict = (
        "BELOW THRESHOLD: " + ", ".join(quality.get("failed_checks", [])) if reply.get("below_threshold") else "ok"
    )
    return (
        f"quality ({'best of ' + str(len(candidates)) if len(candidates) > 1 else 'one draft'}): {voice}"
        f"language {quality.get('detected_language', '?')} (asked {quality.get('language', '?')}), "
        f"unknown words {quality.get('unknown_word_share', 0.0):.1%}, "
        f"repeated 3-grams {quality.get('repeated_ngram_share', 0.0):.0%}, "
        f"{quality.get('word_count', 0)} words, "
        f"{len(quality.get('unsupported_claims', []))} unsupported claim(s): {verdict}"
    )


@click.group()
def voice() -> None:
    """Brand tone-of-voice profiles."""


@voice.command()
@click.option("--name", required=True, help="profile name; an existing name gets a new version")
@click.option("--description", default="")
@click.option("--prefer", "preferred", multiple=True, help="a term the brand prefers (repeatable)")
@click.option("--ban", "banned", multiple=True, help="a term the brand never uses (repeatable)")
@click.option("--collection", help="read the pages from this embedding collection instead of FILES")
@click.option("--filter", "filter_json", help='with --collection: metadata filter, e.g. \'{"brand": "grain-sauvage"}\'')
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@connection_options(DEFAULT_TARGET)
@run_async
async def learn(name, description, preferred, banned, collection, filter_json, files, **options):
    """Learns a voice from the brand's pages: text or Markdown FILES, or a --collection."""
    if bool(files) == bool(collection):
        raise click.UsageError("give the brand's pages as FILES or as --collection, not both")
    request = generation_pb2.LearnVoiceRequest(
        name=name, description=description, preferred_terms=preferred, banned_terms=banned
    )
    if collection:
        request.collection.collection = collection
        request.collection.filter.CopyFrom(metadata_filter(filter_json))
    else:
        request.documents.extend(generation_pb2.SourceDocument(id=path.name, text=path.read_text()) for path in files)
    async with channel_from(options) as channel:
        profile = (await generation_pb2_grpc.GenerationServiceStub(channel).LearnVoice(request)).profile
    register = profile.register
    click.echo(
        f"voice {profile.name} v{profile.version}: "
        f"{profile.document_count} documents, {profile.sentence_count} sentences"
    )
    click.echo(f"  languages: {', '.join(profile.languages)}")
    click.echo(
        f"  sentences: median {profile.sentence_length.p50:.0f} words (p90 {profile.sentence_length.p90:.0f}); "
        f"formality {register.formality:.2f}, address {_address(register.address)}"
    )
    click.echo(f"  signature: {', '.join(term.term for term in profile.signature_terms[:12])}")
    for exemplar in profile.exemplars[:3]:
        click.echo(f"  exemplar ({exemplar.centrality:.2f}): {exemplar.text}")


@voice.command()
@click.option("--name", required=True, help="voice profile name")
@click.option("--version", type=click.IntRange(0), default=0, help="profile version (latest when 0)")
@click.argument("text")
@connection_options(DEFAULT_TARGET)
@run_async
async def score(name, version, text, **options):
    """Scores TEXT against a voice, 0-100, with what is off-voice."""
    request = generation_pb2.ScoreVoiceRequest(voice=name, version=version, text=text)
    async with channel_from(options) as channel:
        reply = await generation_pb2_grpc.GenerationServiceStub(channel).ScoreVoice(request)
    parts = reply.components
    click.echo(
        f"{reply.score:.0f}/100 against {reply.voice} v{reply.version} "
        f"(semantic {parts.semantic:.0f}, vocabulary {parts.vocabulary:.0f}, "
        f"register {parts.register:.0f}, sentence length {parts.sentence_length:.0f})"
    )
    for flag in reply.flags:
        click.echo(f"  {flag.code}: {flag.message}")


def _address(form: int) -> str:
    return generation_pb2.AddressForm.Name(form).removeprefix("ADDRESS_FORM_").lower()
