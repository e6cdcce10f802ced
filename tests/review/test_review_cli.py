"""`matcha review ...` against the running review service."""

import asyncio

from click.testing import CliRunner

from matcha.cli.review import review
from matcha.review.v1 import review_pb2
from tests.review.conftest import REVIEWER, draft


async def invoke(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, review, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_list_show_decide_and_publish_from_the_cli(review_server, review_for, issuer, tenant):
    item = (await review_for(tenant, subject="planner").Submit(draft(title="CLI draft"))).item
    token = issuer.mint(subject="rita", tenant=tenant, roles=list(REVIEWER))
    connection = ["--target", f"127.0.0.1:{review_server.port}", "--token", token]

    code, out, _ = await invoke("list", "--status", "pending", *connection)
    assert code == 0 and item.id in out and "PENDING" in out and "'CLI draft'" in out
    code, out, _ = await invoke("show", item.id, *connection)
    assert code == 0 and item.content_sha256 in out and item.content.strip() in out

    code, _, err = await invoke("reject", item.id, *connection)
    assert code == 2 and "--comment" in err  # a rejection needs a reason
    code, out, _ = await invoke("approve", item.id, "--comment", "good", *connection)
    assert code == 0 and "APPROVED" in out and item.content_sha256 in out
    code, _, err = await invoke("approve", item.id, *connection)
    assert code == 1 and "FAILED_PRECONDITION" in err and "APPROVED" in err

    # Under four-eyes the approver does not publish; a publisher does.
    code, _, err = await invoke("publish", item.id, *connection)
    assert code == 1 and "PERMISSION_DENIED" in err
    publisher = ["--target", f"127.0.0.1:{review_server.port}"]
    publisher += ["--token", issuer.mint(subject="pat", tenant=tenant, roles=["publisher"])]
    code, out, _ = await invoke("publish", item.id, *publisher)
    assert code == 0 and "to files" in out
    code, out, _ = await invoke("publish", item.id, *publisher)
    assert code == 0 and "already published" in out
    got = await review_for(tenant).Get(review_pb2.GetRequest(item_id=item.id))
    assert got.item.status == review_pb2.REVIEW_STATUS_APPROVED and got.item.HasField("publication")
