"""A stock grpcurl needs no proto files: reflection describes every service."""

import asyncio
import json
import sys
from pathlib import Path

GRPCURL = str(Path(sys.executable).with_name("grpcurl"))


async def grpcurl(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    return process.returncode, stdout.decode(), stderr.decode()


async def test_grpcurl_lists_and_calls_through_reflection(embedding_server, issuer, tenant):
    address = f"127.0.0.1:{embedding_server.port}"
    code, listed, _ = await grpcurl(address, "list")
    assert code == 0 and "matcha.embedding.v1.EmbeddingService" in listed.split()

    token = issuer.mint(subject="ops", tenant=tenant, roles=["analyst", "author", "operator"])
    code, out, err = await grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        "-H",
        "x-matcha-data-class: PUBLIC",
        "-d",
        json.dumps({"texts": ["hello from grpcurl"]}),
        address,
        "matcha.embedding.v1.EmbeddingService/Embed",
    )
    assert code == 0, err
    reply = json.loads(out)
    assert reply["dimension"] == 384 and len(reply["embeddings"][0]["values"]) == 384

    code, _, err = await grpcurl("-d", "{}", address, "matcha.embedding.v1.EmbeddingService/ListCollections")
    assert code != 0 and "Unauthenticated" in err
