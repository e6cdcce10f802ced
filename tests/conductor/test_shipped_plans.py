"""The plans shipped with Matcha register cleanly, once: `matcha plan install` and the launcher's install."""

import asyncio

import pytest
from click.testing import CliRunner

from matcha.cli.main import cli
from matcha.conductor import expressions
from matcha.conductor.v1 import conductor_pb2
from matcha.launcher.plans import install_local_plans
from matcha.plans import shipped_plans

SHIPPED = ["listening-response", "segment-campaign", "win-back"]


async def invoke(*args: str):
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_the_package_ships_each_plan_under_its_own_name():
    assert [plan.name for plan in shipped_plans()] == SHIPPED
    for plan in shipped_plans():
        assert f"name: {plan.name}\n" in plan.document


async def test_plan_install_registers_every_shipped_plan_once(conductor_server, conductor_for, issuer, tenant):
    token = issuer.mint(subject="ana", tenant=tenant, roles=["author"])
    connection = ["--target", f"127.0.0.1:{conductor_server.port}", "--token", token]

    code, out, err = await invoke("plan", "install", *connection)
    assert code == 0, err
    assert out.splitlines() == [f"plan {name!r} registered: version 1" for name in SHIPPED]

    # Unchanged plans are not new versions.
    code, out, err = await invoke("plan", "install", *connection)
    assert code == 0, err
    assert out.splitlines() == [f"plan {name!r} unchanged: version 1" for name in SHIPPED]

    stub = conductor_for(tenant)
    listed = await stub.ListPlans(conductor_pb2.ListPlansRequest())
    assert sorted(plan.name for plan in listed.plans) == SHIPPED


async def test_plan_install_needs_the_author_role(conductor_server, issuer, tenant):
    token = issuer.mint(subject="ana", tenant=tenant, roles=["analyst"])
    code, _, err = await invoke("plan", "install", "--target", f"127.0.0.1:{conductor_server.port}", "--token", token)
    assert code == 1 and "PERMISSION_DENIED" in err


async def test_the_launcher_installs_them_for_the_local_tenant(conductor_server, issuer, tenant):
    address = f"127.0.0.1:{conductor_server.port}"
    first = await asyncio.to_thread(install_local_plans, address, issuer, tenant)
    again = await asyncio.to_thread(install_local_plans, address, issuer, tenant)
    assert [(plan.name, plan.version, plan.created) for plan in first] == [(name, 1, True) for name in SHIPPED]
    assert [(plan.name, plan.version, plan.created) for plan in again] == [(name, 1, False) for name in SHIPPED]


def test_flatten_crosses_segments_and_variants_and_join_makes_text():
    variables = {"inputs": {"segments": ["a", "b"], "variants": ["A", "B"], "words": ["x", "y"]}}
    crossed = expressions.evaluate("flatten(inputs.segments.map(s, inputs.variants.map(v, s + v)))", variables)
    assert crossed == ["aA", "aB", "bA", "bB"]
    assert expressions.evaluate("join(inputs.words, ', ')", variables) == "x, y"
    for source in ("flatten(inputs.words)", "join(inputs.segments.map(s, 1), ',')"):
        with pytest.raises(expressions.ExpressionError):
            expressions.evaluate(source, variables)
