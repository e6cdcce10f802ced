"""`python -m matcha.review` as a process: configured from the environment, serving, drained on SIGTERM."""

import asyncio
import os
import signal
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.review.v1 import review_pb2, review_pb2_grpc
from tests.review.conftest import draft
from tests.support import free_port


async def test_the_review_process_serves_and_stops_cleanly(postgres_url, key_paths, issuer, tmp_path, tenant):
    port = free_port()
    env = {
        **os.environ,
        "MATCHA_DATABASE_URL": postgres_url,
        "MATCHA_STATE_DIR": str(tmp_path),
        "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MATCHA_AUTH_PUBLIC_KEY_FILE": str(key_paths.public),
        "MATCHA_REVIEW_PUBLISH_DIR": str(tmp_path / "published"),
        "MATCHA_GRACE_PERIOD_SECONDS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "matcha.review", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                assert process.returncode is None, (await process.stdout.read()).decode()
                try:
                    reply = await health.Check(
                        health_pb2.HealthCheckRequest(service="matcha.review.v1.ReviewService"), timeout=1
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "review process never served"
                await asyncio.sleep(0.2)
            token = issuer.mint(subject="planner", tenant=tenant, roles=["analyst", "author", "operator"])
            stub = review_pb2_grpc.ReviewServiceStub(channel)
            reply = await stub.Submit(draft(), metadata=(("authorization", f"Bearer {token}"),))
            assert reply.created and reply.item.status == review_pb2.REVIEW_STATUS_PENDING
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
