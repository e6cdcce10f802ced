"""The classification step of `make demo`, against a real classification server."""

import re

from matcha.cli.demo import run_classification_demo


async def test_demo_reads_reviews_and_headlines(classification_server, issuer, tenant, capsys):
    token = issuer.mint(subject="demo", tenant=tenant, roles=["analyst", "author", "operator"])
    await run_classification_demo(f"127.0.0.1:{classification_server.port}", token)
    output = capsys.readouterr().out
    agreed = re.search(r"verdict on (\d+) of (\d+) ", output)
    assert agreed, output
    # Two thirds of the held-out critics' verdicts at least.
    assert int(agreed.group(1)) >= 0.66 * int(agreed.group(2))
    assert "weak signals in " in output and "Guardian headlines" in output
    strong = output.split("STRONG (", 1)[1].split("WEAK (", 1)[0]
    # Early 2020: the coronavirus dominates the news.
    assert "coronavirus" in strong.lower()
    assert "first seen 2020-" in strong and "sentiment " in strong
