"""The reviewers' page (`/ui/`) in a real headless Chromium.

Real gateway in front of the real review and conductor services, on real PostgreSQL: a plan run submits
its draft for review and waits; a reviewer signs in with the launcher's kind of link, opens the draft from
the live queue with the keyboard, edits it and approves it; the API then shows that exactly the edited text
was approved, and the run resumed with it. A principal without the reviewer role sees the page refuse, and
so do a reviewer facing someone else's claim, a version overtaken while editing, and an expired item.
"""

import asyncio
import hashlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.gateway.review_page import CONTENT_SECURITY_POLICY
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.runtime.auth import TokenIssuer
from tests.support import free_port

REVIEW_SERVICE = "matcha.review.v1.ReviewService"
CONDUCTOR_SERVICE = "matcha.conductor.v1.ConductorService"
# Debian's chromium as root in a sandboxed machine with no route out: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DRAFT_TITLE = "Spring walk"
DRAFT_TEXT = "Our cheap walking shoes are here.\nTry them in store this weekend.\n"
PLAN = """
name: page-reviewed-copy
inputs:
  - {name: text, type: string, required: true}
steps:
  - id: submit
    call: matcha.review.v1.ReviewService/Submit
    request:
      title: "Spring walk"
      content: "${inputs.text}"
      channel: CHANNEL_EMAIL
      target: newsletter-weekly
      priority: PRIORITY_HIGH
      audience: {segmentation: walkers, segmentation_version: 3, segment_id: seg-7, persona: "Weekend walkers"}
      provenance:
        run_id: "${run.id}"
        plan_name: "${run.plan_name}"
        plan_version: "${run.plan_version}"
        step: draft
        model: {id: "HuggingFaceTB/SmolLM2-135M-Instruct", version: "q8_0"}
        prompt_template: spring-email
        prompt_template_version: 4
        voice_profile: house-voice
        voice_profile_version: 2
        source_record_ids: ["crm:customer/1042", "reviews:8812"]
      voice_score: 71.5
      flags:
        - {code: voice.banned_term, message: "banned term \\"cheap\\"", severity: FLAG_SEVERITY_WARNING}
      resume: {run_id: "${run.id}", signal_key: approval}
    output: "response.item.id"
  - id: approval
    depends_on: [submit]
    await: {roles: [review-service]}
outputs:
  item: "steps.submit.output"
  status: "steps.approval.output.status"
  content: "steps.approval.output.content"
"""

expect.set_options(timeout=20_000)


MISSING_CHROMIUM = (
    "the review page tests need Debian's chromium (`apt-get install -y chromium`, which `make test` does "
    "when it is missing); Playwright drives it, it never downloads a browser"
)


def digest(title: str, content: str) -> str:
    return hashlib.sha256(title.encode() + b"\x00" + content.encode()).hexdigest()


@dataclass
class Stack:
    base_url: str
    tenant: str
    issuer: TokenIssuer

    def token(self, subject: str, roles: list[str]) -> str:
        return self.issuer.mint(subject=subject, tenant=self.tenant, roles=roles)

    def http(self, subject: str, roles: list[str]) -> httpx.AsyncClient:
        headers = {
            "authorization": f"Bearer {self.token(subject, roles)}",
            "x-matcha-purpose": "campaign",
            "x-matcha-data-class": "INTERNAL",
        }
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser | None]:
    """Debian's chromium driven by Playwright; None when it is not installed, which fails each test using it."""
    executable = shutil.which("chromium")
    if executable is None:
        yield None
        return
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def stack(postgres_url, state_dir, tmp_path_factory, serve, start_gateway, issuer) -> AsyncIterator[Stack]:
    """Gateway -> review <-> conductor, on a database of their own (so no other test's replica takes their work)."""
    database = f"review_page_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    database_url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{database}"))
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    review_address = f"127.0.0.1:{free_port()}"
    conductor_settings = ConductorSettings(
        database_url=database_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        conductor_endpoints={REVIEW_SERVICE: review_address},
        conductor_lease_seconds=2.0,
        conductor_poll_seconds=0.5,
    )
    async with serve(build_conductor_service(conductor_settings), conductor_settings) as conductor:
        review_settings = ReviewSettings(
            database_url=database_url,
            state_dir=state_dir,
            listen_address=review_address,
            review_conductor_address=f"127.0.0.1:{conductor.port}",
            review_service_tokens_dir=tmp_path_factory.mktemp("review-page-tokens"),
            review_delivery_initial_backoff_seconds=0.05,
            review_delivery_max_backoff_seconds=0.2,
            review_delivery_poll_seconds=0.2,
        )
        service_token = issuer.mint(subject="review-service", tenant=tenant, roles=["review-service"])
        (review_settings.tokens_dir / f"{tenant}.jwt").write_text(service_token)
        backends = {REVIEW_SERVICE: review_address, CONDUCTOR_SERVICE: f"127.0.0.1:{conductor.port}"}
        async with (
            serve(assemble_review_service(review_settings).definition, review_settings),
            start_gateway(backends) as base_url,
        ):
            yield Stack(base_url, tenant, issuer)


async def open_page(browser: Browser | None, url: str) -> tuple[Page, list[str]]:
    """A fresh browser context on `url`; the list collects what should never happen (other origins, errors)."""
    if browser is None:
        pytest.fail(MISSING_CHROMIUM)
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []
    origin = url.split("/ui")[0]
    page.on("request", lambda request: request.url.startswith(origin) or problems.append(f"request {request.url}"))
    page.on("response", lambda response: response.status < 400 or problems.append(f"{response.status} {response.url}"))
    page.on("pageerror", lambda error: problems.append(f"page error {error}"))
    await page.goto(url)
    return page, problems


async def start_run(analyst: httpx.AsyncClient, text: str) -> tuple[str, str]:
    """Starts the plan over HTTP and waits for its draft to be queued; returns the run and item ids."""
    registered = await analyst.post("/v1/plans", json={"document": PLAN})
    assert registered.status_code == 200, registered.text
    started = await analyst.post("/v1/runs", json={"planName": "page-reviewed-copy", "inputs": {"text": text}})
    assert started.status_code == 200, started.text
    run_id = started.json()["run"]["id"]
    for _ in range(300):
        run = (await analyst.get(f"/v1/runs/{run_id}", params={"view": "RUN_VIEW_FULL"})).json()["run"]
        if run["state"] == "RUN_STATE_WAITING":
            return run_id, run["steps"][0]["output"]
        assert run["state"] in ("RUN_STATE_PENDING", "RUN_STATE_RUNNING"), run
        await asyncio.sleep(0.1)
    raise AssertionError("the run never reached its review step")


async def test_the_page_is_served_with_a_self_only_policy(stack):
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        redirected = await http.get("/ui")
        page = await http.get("/ui/")
        script = await http.get("/ui/review.js")
        unknown = await http.get("/ui/missing.js")
        posted = await http.post("/ui/")
        head = await http.head("/ui/review.css")
        style = await http.get("/ui/review.css")
        cached = await http.get("/ui/review.js", headers={"if-none-match": script.headers["etag"]})
    assert redirected.status_code == 308 and redirected.headers["location"] == "ui/"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "connect-src 'self'" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another origin
    assert script.headers["content-type"].startswith("text/javascript") and "fetch(" in script.text
    assert unknown.status_code == 404 and unknown.json()["details"][0]["reason"] == "ROUTE_NOT_FOUND"
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert cached.status_code == 304
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(style.content) > 0


async def test_a_reviewer_approves_an_edited_draft_and_the_run_resumes_with_it(stack, browser):
    async with stack.http("ana", ["author", "operator"]) as analyst:
        run_id, item_id = await start_run(analyst, DRAFT_TEXT)

        page, problems = await open_page(browser, f"{stack.base_url}/ui/#token={stack.token('rita', ['reviewer'])}")
        assert "token=" not in page.url  # the token leaves the address bar and the history at once
        await expect(page.locator("#identity")).to_contain_text("Signed in as rita (reviewer)")
        await expect(page.locator("#live-state")).to_have_text("Live")
        row = page.locator("#queue-body tr", has=page.get_by_role("link", name=DRAFT_TITLE))
        await expect(row).to_contain_text("Pending")
        await expect(row).to_contain_text("Weekend walkers (seg-7)")
        await expect(row).to_contain_text("High")
        await expect(row).to_contain_text("E-mail")

        # Live: a draft submitted after the page loaded appears without a reload.
        submitted = await analyst.post(
            "/v1/reviews", json={"title": "Autumn offer", "content": "Warm socks.", "channel": "CHANNEL_SMS"}
        )
        assert submitted.status_code == 200, submitted.text
        await expect(page.get_by_role("link", name="Autumn offer")).to_be_visible()

        # Keyboard: j moves through the queue (earliest due first: the HIGH draft), Enter opens it.
        await page.locator("body").focus()
        await page.keyboard.press("j")
        await expect(page.get_by_role("link", name=DRAFT_TITLE)).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("#item-heading")).to_have_text(DRAFT_TITLE)
        await expect(page.locator("#item-heading")).to_be_focused()

        provenance = page.locator("#provenance-list")
        for shown in (
            "Weekend walkers (seg-7)",
            "HuggingFaceTB/SmolLM2-135M-Instruct (q8_0)",
            "spring-email v4",
            "house-voice v2",
            "page-reviewed-copy v1",
            run_id,
        ):
            await expect(provenance).to_contain_text(shown)
        await expect(page.locator("#voice-score")).to_have_text("Voice score: 71.5 / 100")
        await expect(page.locator("#flags")).to_contain_text('Warning: voice.banned_term banned term "cheap"')
        await expect(page.locator("#sources")).to_contain_text("crm:customer/1042")
        await expect(page.locator("#sources")).to_contain_text("reviews:8812")

        edited = "Our walking shoes are here.\nTry them in store this weekend, in every size.\n"
        await page.get_by_label("Content", exact=True).fill(edited)
        await expect(page.locator("#edit-state")).to_contain_text("Edited")
        await page.get_by_role("button", name="Approve").click()
        # Four-eyes: rita's approval is recorded on the version she was given; her edit is a new version that
        # someone else must approve before anything is approved or the run resumes.
        await expect(page.locator("#item-message")).to_contain_text("Approve: recorded on version 1")
        await expect(page.locator("#item-message")).to_be_focused()
        assert problems == []
        revised = (await analyst.get(f"/v1/reviews/{item_id}")).json()["item"]
        assert revised["version"] == 2 and revised.get("approvedVersion", 0) == 0
        waiting = (await analyst.get(f"/v1/runs/{run_id}")).json()["run"]
        assert waiting["state"] == "RUN_STATE_WAITING"

        async with stack.http("otto", ["reviewer"]) as otto:
            claimed = await otto.post(f"/v1/reviews/{item_id}:claim", json={})
            assert claimed.status_code == 200, claimed.text
            approved = await otto.post(
                f"/v1/reviews/{item_id}:decide", json={"version": 2, "outcome": "DECISION_OUTCOME_APPROVE"}
            )
            assert approved.status_code == 200, approved.text
        # Approved items leave the "to review" queue, live.
        await expect(page.get_by_role("link", name=DRAFT_TITLE)).to_have_count(0)

        item = (await analyst.get(f"/v1/reviews/{item_id}")).json()["item"]
        assert item["status"] == "REVIEW_STATUS_APPROVED"
        assert (item["approvedVersion"], item["version"]) == (2, 2)
        assert item["approvedSha256"] == digest(DRAFT_TITLE, edited)
        assert item["versions"][1]["content"] == edited and item["versions"][1]["origin"] == "VERSION_ORIGIN_HUMAN_EDIT"
        assert [decision["reviewerSubject"] for decision in item["decisions"]] == ["rita", "otto"]

        for _ in range(300):
            run = (await analyst.get(f"/v1/runs/{run_id}", params={"view": "RUN_VIEW_FULL"})).json()["run"]
            if run["state"] not in ("RUN_STATE_WAITING", "RUN_STATE_RUNNING", "RUN_STATE_PENDING"):
                break
            await asyncio.sleep(0.1)
        assert run["state"] == "RUN_STATE_SUCCEEDED", run
        assert run["outputs"]["content"] == edited and run["outputs"]["status"] == "REVIEW_STATUS_APPROVED"
        await page.context.close()


async def test_a_principal_without_the_reviewer_role_is_refused_and_the_item_stays_pending(stack, browser):
    async with stack.http("ana", ["author", "operator"]) as analyst:
        submitted = await analyst.post(
            "/v1/reviews",
            json={"title": "Members night", "content": "Doors open at eight.", "channel": "CHANNEL_EMAIL"},
        )
        item_id = submitted.json()["item"]["id"]

        page, problems = await open_page(browser, f"{stack.base_url}/ui/")
        # Signing in by pasting the token into the form.
        await expect(page.get_by_label("Token")).to_be_focused()
        expired = stack.issuer.mint(subject="otto", tenant=stack.tenant, roles=["reviewer"], ttl_seconds=-60)
        await page.get_by_label("Token").fill(expired)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("This token has expired. Ask for a new one.")
        await expect(page.get_by_label("Token")).to_be_focused()
        await page.get_by_label("Token").fill(stack.token("otto", ["analyst"]))
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#identity")).to_contain_text("without the reviewer role")
        await page.get_by_role("link", name="Members night").click()
        await page.get_by_label("Content", exact=True).fill("Doors open at seven.")
        await page.get_by_role("button", name="Approve").click()

        message = page.locator("#item-message")
        await expect(message).to_have_attribute("role", "alert")
        await expect(message).to_contain_text("Refused: you do not have the reviewer role needed for this action")
        await expect(message).to_be_focused()
        assert problems == [f"403 {stack.base_url}/v1/reviews/{item_id}:decide"]

        item = (await analyst.get(f"/v1/reviews/{item_id}")).json()["item"]
        assert item["status"] == "REVIEW_STATUS_PENDING" and item["version"] == 1 and item["decisions"] == []
        await page.context.close()


async def test_a_draft_claimed_by_another_reviewer_is_refused_with_their_name(stack, browser):
    async with stack.http("ana", ["author", "operator"]) as analyst, stack.http("rob", ["reviewer"]) as rob:
        submitted = await analyst.post(
            "/v1/reviews", json={"title": "Rainy day", "content": "Umbrellas at half price.", "channel": "CHANNEL_PUSH"}
        )
        item_id = submitted.json()["item"]["id"]
        claimed = await rob.post(f"/v1/reviews/{item_id}:claim", json={})
        assert claimed.status_code == 200, claimed.text

        # The link a launcher prints may lack the final slash: the redirect keeps the fragment.
        page, _ = await open_page(browser, f"{stack.base_url}/ui#token={stack.token('rita', ['reviewer'])}")
        assert page.url == f"{stack.base_url}/ui/"
        row = page.locator("#queue-body tr", has=page.get_by_role("link", name="Rainy day"))
        await expect(row).to_contain_text("rob")
        await page.get_by_role("link", name="Rainy day").click()
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("#item-message")).to_contain_text("rob has claimed this item")
        await expect(page.locator("#item-message")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.locator("#item")).to_be_hidden()
        await expect(page.get_by_role("link", name="Rainy day")).to_be_focused()
        item = (await analyst.get(f"/v1/reviews/{item_id}")).json()["item"]
        assert item["status"] == "REVIEW_STATUS_PENDING"
        await page.context.close()


async def test_an_edit_overtaken_by_a_new_version_is_refused_as_stale_then_decided_on_the_new_one(stack, browser):
    async with stack.http("ana", ["author", "operator"]) as analyst, stack.http("rob", ["reviewer"]) as rob:
        submitted = await analyst.post(
            "/v1/reviews", json={"title": "Summer sale", "content": "Everything must go.", "channel": "CHANNEL_AD"}
        )
        item_id = submitted.json()["item"]["id"]
        page, _ = await open_page(
            browser, f"{stack.base_url}/ui/#item={item_id}&token={stack.token('rita', ['reviewer'])}"
        )
        await expect(page.locator("#item-heading")).to_have_text("Summer sale")
        assert page.url.endswith(f"/ui/#item={item_id}")
        await page.get_by_label("Content", exact=True).fill("Everything must go, today only.")

        # Meanwhile another reviewer asks for changes and the author answers with version 2.
        asked = await rob.post(
            f"/v1/reviews/{item_id}:decide",
            json={"version": 1, "outcome": "DECISION_OUTCOME_REQUEST_CHANGES", "comment": "Say until when."},
        )
        assert asked.status_code == 200, asked.text
        revised = await analyst.post(
            f"/v1/reviews/{item_id}:revise",
            json={"version": 1, "title": "Summer sale", "content": "Everything must go, until Sunday."},
        )
        assert revised.status_code == 200, revised.text
        await expect(page.locator("#item-message")).to_contain_text("changed while you were editing")
        await expect(page.get_by_label("Content", exact=True)).to_have_value("Everything must go, today only.")

        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("#item-message")).to_contain_text(
            "you reviewed version 1, but the item is now at version 2"
        )
        await page.get_by_role("button", name="Load the current version").click()
        await expect(page.get_by_label("Content", exact=True)).to_have_value("Everything must go, until Sunday.")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("#item-message")).to_contain_text("Approve: recorded on version 2")
        item = (await analyst.get(f"/v1/reviews/{item_id}")).json()["item"]
        assert item["approvedSha256"] == digest("Summer sale", "Everything must go, until Sunday.")
        await page.context.close()


async def test_an_item_past_its_due_time_is_refused_as_expired(stack, browser):
    async with stack.http("ana", ["author", "operator"]) as analyst:
        # Far enough ahead that a page opened on a loaded machine still shows the item before it expires.
        due = datetime.now(UTC) + timedelta(seconds=6)
        submitted = await analyst.post(
            "/v1/reviews",
            json={
                "title": "Flash offer",
                "content": "Ten minutes left.",
                "channel": "CHANNEL_SMS",
                "dueTime": due.isoformat(),
            },
        )
        assert submitted.status_code == 200, submitted.text
        item_id = submitted.json()["item"]["id"]
        page, _ = await open_page(
            browser, f"{stack.base_url}/ui/#item={item_id}&token={stack.token('rita', ['reviewer'])}"
        )
        await expect(page.locator("#item-heading")).to_have_text("Flash offer")
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.2)
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("#item-message")).to_contain_text("this item has expired")
        # The expiry is an event too: the page follows it and closes the decision.
        await expect(page.locator("#decision-closed")).to_contain_text("This item is expired")
        await expect(page.get_by_role("button", name="Approve")).to_be_disabled()
        await page.context.close()


async def test_an_html_draft_is_previewed_without_scripts_handlers_or_remote_resources(stack, browser):
    html = (
        '<h2>Members night</h2><p onclick="window.clicked = 1">Doors open at <strong>eight</strong>.</p>'
        '<script>window.injected = 1</script><img src="http://198.51.100.7/pixel.png" onerror="window.injected = 2">'
        '<a href="javascript:window.injected = 3">more</a>'
    )
    async with stack.http("ana", ["author", "operator"]) as analyst:
        submitted = await analyst.post(
            "/v1/reviews",
            json={
                "title": "Members night",
                "content": html,
                "format": "CONTENT_FORMAT_HTML",
                "channel": "CHANNEL_EMAIL",
            },
        )
        item_id = submitted.json()["item"]["id"]
        page, problems = await open_page(
            browser, f"{stack.base_url}/ui/#item={item_id}&token={stack.token('rita', ['reviewer'])}"
        )
        preview = page.locator("#preview")
        await expect(preview.locator("strong")).to_have_text("eight")
        await expect(preview.get_by_role("heading", name="Members night")).to_be_visible()
        assert await preview.locator("script, img, [onclick]").count() == 0
        assert await preview.locator("a", has_text="more").get_attribute("href") is None
        await preview.locator("p").click()
        assert await page.evaluate("[window.injected, window.clicked]") == [None, None]
        # The editor still holds the exact HTML the reviewer approves.
        await expect(page.get_by_label("Content", exact=True)).to_have_value(html)
        assert problems == []
        await page.context.close()
