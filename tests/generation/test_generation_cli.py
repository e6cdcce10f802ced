"""`matcha voice learn|score` and `matcha generate` against the in-process service."""

import asyncio

from click.testing import CliRunner

from matcha.cli.generate import generate, voice
from tests.generation.brand_pages import CAFE_PAGES, FORMAL_FRENCH


async def _run(command, arguments: list[str]):
    # The CLI runs its own event loop: give it a thread.
    return await asyncio.to_thread(CliRunner().invoke, command, arguments, catch_exceptions=False)


async def test_cli_learns_scores_and_drafts_in_a_voice(generation_server, issuer, tenant, tmp_path):
    connection = ["--target", f"127.0.0.1:{generation_server.port}"]
    connection += ["--token", issuer.mint(subject="cli", tenant=tenant, roles=["analyst", "author", "operator"])]
    files = []
    for name, text in CAFE_PAGES.items():
        path = tmp_path / f"{name}.md"
        path.write_text(text)
        files.append(str(path))

    learned = await _run(voice, ["learn", "--name", "grain-sauvage", "--ban", "bon marché", *files, *connection])
    assert learned.exit_code == 0, learned.output
    assert "voice grain-sauvage v1: 4 documents" in learned.output and "address informal" in learned.output

    scored = await _run(voice, ["score", "--name", "grain-sauvage", FORMAL_FRENCH, *connection])
    assert scored.exit_code == 0 and "voice.register_mismatch" in scored.output

    drafted = await _run(
        generate,
        [
            "Annonce notre café d'Éthiopie.",
            "--voice",
            "grain-sauvage",
            "--max-new-tokens",
            "8",
            "--seed",
            "3",
            *connection,
        ],
    )
    assert drafted.exit_code == 0
    assert "voice grain-sauvage v1]" in drafted.output and "HuggingFaceTB/SmolLM2-135M-Instruct" in drafted.output

    refused = await _run(voice, ["score", "--name", "nobody", "Bonjour.", *connection])
    assert refused.exit_code == 1 and "NOT_FOUND" in refused.output
