"""`python -m matcha.gateway` as the launcher runs it: settings from the environment, SIGTERM stops it."""

import asyncio
import json
import os
import signal
import socket
import sys

import httpx
import pytest

from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.gateway.__main__ import listening_socket
from tests.support import free_port


async def _run_gateway(environment: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "matcha.gateway",
        env={**{key: value for key, value in os.environ.items() if not key.startswith("MATCHA_")}, **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


# The IPv6 wildcard (the default) must take IPv4 connections too: probes and ingresses on IPv4 clusters.
@pytest.mark.parametrize("host", ["127.0.0.1", "[::]"])
async def test_gateway_process_serves_and_stops_on_sigterm(host, embedding_server, state_dir, issuer, tenant):
    port = free_port()
    process = await _run_gateway(
        {
            "MATCHA_STATE_DIR": str(state_dir),
            "MATCHA_LISTEN_ADDRESS": f"{host}:{port}",
            "MATCHA_GATEWAY_BACKENDS": json.dumps({EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"}),
        }
    )
    token = issuer.mint(subject="u", tenant=tenant, roles=["analyst", "author", "operator"])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            listed = await client.get("/v1/collections", headers={"authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json() == {"collections": []}
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0
    request_logs = [json.loads(line) for line in stdout.decode().splitlines() if '"message": "request"' in line]
    assert request_logs[-1]["path"] == "/v1/collections" and request_logs[-1]["status"] == 200


async def test_gateway_process_refuses_to_start_without_backends(state_dir):
    missing = await _run_gateway({"MATCHA_STATE_DIR": str(state_dir)})
    _, stderr = await asyncio.wait_for(missing.communicate(), timeout=30)
    assert missing.returncode == 1
    assert "MATCHA_GATEWAY_BACKENDS: Field required" in stderr.decode()

    not_json = await _run_gateway({"MATCHA_STATE_DIR": str(state_dir), "MATCHA_GATEWAY_BACKENDS": "embedding=x"})
    _, stderr = await asyncio.wait_for(not_json.communicate(), timeout=30)
    assert not_json.returncode == 1
    assert "gateway_backends" in stderr.decode() and "Traceback" not in stderr.decode()

    unknown = await _run_gateway(
        {"MATCHA_STATE_DIR": str(state_dir), "MATCHA_GATEWAY_BACKENDS": '{"matcha.nothing.v1.Nope": "localhost:1"}'}
    )
    _, stderr = await asyncio.wait_for(unknown.communicate(), timeout=30)
    assert unknown.returncode == 1
    assert "matcha.nothing.v1.Nope" in stderr.decode()


@pytest.mark.parametrize("host", ["127.0.0.1", "::"])
async def test_connections_accepted_by_the_gateway_socket_send_small_replies_at_once(host):
    # Nagle's algorithm with delayed acknowledgements held each small reply back by about 40 ms.
    accepted = asyncio.get_running_loop().create_future()

    async def on_connection(reader, writer):
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connection, sock=listening_socket(host, 0))
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 10) == 1
        writer.close()
