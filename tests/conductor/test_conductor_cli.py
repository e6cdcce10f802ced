"""`matcha plan register`, `matcha run`, `matcha run show` and `matcha audit` against the running conductor."""

import asyncio
import json

from click.testing import CliRunner

from matcha.cli.main import cli

PLAN = """
name: embed-words
inputs:
  - {name: words, type: list, required: true}
steps:
  - id: embed
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "inputs.words", concurrency: 2}
    request: {texts: ["${item}"]}
    output: "response.dimension"
outputs:
  dimensions: "steps.embed.output"
"""


async def invoke(*args: str):
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def test_register_run_show_and_audit_from_the_cli(conductor_server, issuer, tenant, tmp_path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN)
    token = issuer.mint(subject="ana", tenant=tenant, roles=["analyst", "author", "operator", "auditor"])
    connection = ["--target", f"127.0.0.1:{conductor_server.port}", "--token", token, "--data-class", "PUBLIC"]

    code, out, err = await invoke("plan", "register", str(plan_file), *connection)
    assert code == 0, err
    assert "'embed-words' registered as version 1" in out

    code, out, err = await invoke("run", "embed-words", "--input", 'words=["tea", "coffee"]', *connection)
    assert code == 0, err
    assert "SUCCEEDED" in out
    assert json.loads(out[out.index("{") :]) == {"dimensions": [384, 384]}
    run_id = out.split()[1]

    code, out, _ = await invoke("run", "show", run_id, *connection)
    assert code == 0 and "embed" in out and "SUCCEEDED" in out

    code, out, _ = await invoke("audit", "list", "--run", run_id, *connection)
    assert code == 0 and out.count("EmbeddingService/Embed") == 2 and "ALLOW" in out
    code, out, _ = await invoke("audit", "verify", *connection)
    assert code == 0 and "ledger intact" in out

    code, _, err = await invoke("run", "embed-words", "--input", "nonsense", *connection)
    assert code == 2 and "key=value" in err
    code, _, err = await invoke("run", "no-such-plan", *connection)
    assert code == 1 and "NOT_FOUND" in err
