"""The data-protection officer's page (`/ui/data-map.html`) in a real headless Chromium.

Real gateway in front of the real conductor, embedding and review services, on a database of their own; the
conductor's catalog also names a segmentation service that is not running, so one store never answers. A data
subject gets a document and a review item through the gateway; an auditor reads the subject's data map, the
accesses to their records and the export, and verifies both ledgers; an analyst is refused with the role named
and sees nothing of the subject; a broken ledger and a lost connection are said plainly; all of it by keyboard.
"""

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.embedding.app import build_embedding_service
from matcha.gateway.review_page import CONTENT_SECURITY_POLICY
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.runtime.auth import TokenIssuer
from tests.gateway.test_review_page import CHROMIUM_ARGS, MISSING_CHROMIUM
from tests.support import free_port

CONDUCTOR_SERVICE = "matcha.conductor.v1.ConductorService"
EMBEDDING_SERVICE = "matcha.embedding.v1.EmbeddingService"
REVIEW_SERVICE = "matcha.review.v1.ReviewService"
SEGMENTATION_SERVICE = "matcha.segmentation.v1.SegmentationService"

expect.set_options(timeout=20_000)


@dataclass
class Stack:
    base_url: str
    database_url: str
    issuer: TokenIssuer

    def token(self, tenant: str, subject: str, roles: list[str]) -> str:
        return self.issuer.mint(subject=subject, tenant=tenant, roles=roles)

    def http(self, tenant: str, subject: str, roles: list[str], purpose: str = "campaign") -> httpx.AsyncClient:
        headers = {
            "authorization": f"Bearer {self.token(tenant, subject, roles)}",
            "x-matcha-purpose": purpose,
            "x-matcha-data-class": "PERSONAL",
        }
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60)


@dataclass(frozen=True)
class Subject:
    tenant: str
    subject_id: str
    marker: str  # a word only this subject's records hold
    item_id: str


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
async def stack(
    postgres_url, state_dir, tmp_path_factory, serve, start_gateway, issuer, embedding_settings, local_encoder
) -> AsyncIterator[Stack]:
    """Gateway -> conductor -> embedding and review, on a database of their own; the conductor's catalog also
    names a segmentation service at an address where nothing listens."""
    database = f"data_map_page_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    database_url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{database}"))
    embedding = embedding_settings(database_url=database_url)
    review = ReviewSettings(
        database_url=database_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        review_publish_dir=tmp_path_factory.mktemp("data-map-published"),
        review_service_tokens_dir=tmp_path_factory.mktemp("data-map-tokens"),
    )
    async with (
        serve(build_embedding_service(embedding, encoder=local_encoder), embedding) as embedding_server,
        serve(assemble_review_service(review).definition, review) as review_server,
    ):
        endpoints = {
            EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}",
            REVIEW_SERVICE: f"127.0.0.1:{review_server.port}",
            SEGMENTATION_SERVICE: f"127.0.0.1:{free_port()}",  # down: the map says this store did not answer
        }
        conductor = ConductorSettings(
            database_url=database_url,
            state_dir=state_dir,
            listen_address="127.0.0.1:0",
            conductor_endpoints=endpoints,
        )
        async with serve(build_conductor_service(conductor), conductor) as conductor_server:
            backends = {
                CONDUCTOR_SERVICE: f"127.0.0.1:{conductor_server.port}",
                EMBEDDING_SERVICE: endpoints[EMBEDDING_SERVICE],
                REVIEW_SERVICE: endpoints[REVIEW_SERVICE],
            }
            async with start_gateway(backends) as base_url:
                yield Stack(base_url, database_url, issuer)


async def seed(stack: Stack) -> Subject:
    """A subject of a fresh tenant with a CRM note (written by olga, found by ana's search) and a review draft."""
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    subject_id = f"c-{uuid.uuid4().hex[:6]}"
    marker = f"saffron{uuid.uuid4().hex[:4]}"
    policy = {"dataClass": "DATA_CLASS_PERSONAL", "consentedPurposes": ["campaign"], "subjectId": subject_id}
    async with stack.http(tenant, "olga", ["operator", "author"]) as olga:
        created = await olga.post("/v1/collections", json={"name": "crm"})
        assert created.status_code == 200, created.text
        upserted = await olga.post(
            "/v1/collections/crm/documents:upsert",
            json={"documents": [{"id": "note-1", "text": f"Prefers {marker} shirts in linen.", "policy": policy}]},
        )
        assert upserted.status_code == 200, upserted.text
        submitted = await olga.post(
            "/v1/reviews",
            json={
                "title": "Linen is back",
                "content": f"Dear {marker}, your linen shirts are back in stock.",
                "channel": "CHANNEL_EMAIL",
                "subjectIds": [subject_id],
            },
        )
        assert submitted.status_code == 200, submitted.text
    await search_as_ana(stack, tenant, marker)
    return Subject(tenant, subject_id, marker, submitted.json()["item"]["id"])


async def search_as_ana(stack: Stack, tenant: str, marker: str) -> None:
    async with stack.http(tenant, "ana", ["analyst"]) as ana:
        found = await ana.post("/v1/collections/crm/documents:search", json={"text": f"{marker} shirts", "topK": 1})
        assert found.status_code == 200, found.text
        assert found.json()["results"], found.text


async def open_page(browser: Browser | None, url: str) -> tuple[Page, list[str], list[str]]:
    """A fresh browser context on `url`; the lists collect what should never happen (other origins, failed
    responses, script errors) and the console's errors."""
    if browser is None:
        pytest.fail(MISSING_CHROMIUM)
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    problems: list[str] = []
    console_errors: list[str] = []
    origin = url.split("/ui")[0]
    page.on("request", lambda request: request.url.startswith(origin) or problems.append(f"request {request.url}"))
    page.on("response", lambda response: response.status < 400 or problems.append(f"{response.status} {response.url}"))
    page.on("pageerror", lambda error: problems.append(f"page error {error}"))
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    await page.goto(url)
    return page, problems, console_errors


async def show_map(page: Page, subject_id: str) -> None:
    await page.get_by_label("Data subject id").fill(subject_id)
    await page.get_by_role("button", name="Show the data map").click()


async def test_the_page_is_served_beside_the_review_page_under_the_same_policy(stack):
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        page = await http.get("/ui/data-map.html")
        script = await http.get("/ui/data-map.js")
        style = await http.get("/ui/data-map.css")
        review = await http.get("/ui/")
    for response in (page, script, style):
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert "http" not in page.text  # nothing from another origin
    assert 'href="./"' in page.text and 'href="data-map.html"' in review.text  # each links the other
    assert "localStorage" not in script.text


async def test_an_auditor_sees_the_subjects_holdings_and_accesses_and_downloads_the_export(stack, browser, tmp_path):
    seeded = await seed(stack)
    auditor_token = stack.token(seeded.tenant, "dora", ["auditor"])
    page, problems, console_errors = await open_page(
        browser, f"{stack.base_url}/ui/data-map.html#token={auditor_token}"
    )
    assert "token=" not in page.url
    await expect(page.locator("#identity")).to_contain_text(f"Signed in as dora (auditor) in {seeded.tenant}")
    await expect(page.get_by_label("Data subject id")).to_be_focused()

    await show_map(page, seeded.subject_id)
    await expect(page.locator("#map-heading")).to_have_text(f"Data map of {seeded.subject_id}")
    await expect(page.locator("#map-heading")).to_be_focused()
    await expect(page.locator("#map-summary")).to_contain_text("Incomplete: 1 store of 4 did not answer")
    await expect(page.locator("#unanswered")).to_be_visible()
    await expect(page.locator("#unanswered-list")).to_contain_text("SegmentationService: UNAVAILABLE")

    holdings = page.locator("#holdings-body")
    documents = holdings.locator("tr", has_text="documents")
    await expect(documents.locator("th, td")).to_have_text(
        ["EmbeddingService", "documents", "crm", "1", "Personal", "campaign", "1", "0", "no"]
    )
    drafts = holdings.locator("tr", has_text="drafts")
    await expect(drafts.locator("td").nth(0)).to_have_text("drafts")
    await expect(drafts.locator("td").nth(2)).to_have_text("1")
    await expect(holdings.locator("tr", has_text="ConductorService")).to_contain_text("holds nothing")
    await expect(holdings.locator("tr.unanswered")).to_contain_text("SegmentationService")

    # The records are there on demand only.
    records = page.locator("#records details")
    note = page.locator("#records details", has_text="EmbeddingService, documents (crm): 1 record")
    for index in range(await records.count()):
        await expect(records.nth(index)).not_to_have_attribute("open", "")
    await expect(page.get_by_text(f"Prefers {seeded.marker} shirts")).to_be_hidden()
    await note.locator("summary").click()
    await expect(note.locator("pre")).to_contain_text(f"Prefers {seeded.marker} shirts in linen.")

    # Who accessed the records: olga wrote the note, ana's search returned it.
    accesses = page.locator("#accesses-body")
    upsert = accesses.locator("tr", has_text="EmbeddingService/Upsert")
    await expect(upsert.locator("td").nth(1)).to_have_text("olga")
    await expect(upsert.locator("td").nth(3)).to_have_text("campaign")
    await expect(upsert.locator("td").nth(8)).to_have_text("Allow")
    search = accesses.locator("tr", has_text="EmbeddingService/Search")
    await expect(search.locator("td").nth(1)).to_have_text("ana")
    await expect(search.locator("td").nth(2)).to_have_text("analyst")
    await expect(search.locator("td").nth(5)).to_have_text("Personal")  # declared
    await expect(search.locator("td").nth(6)).to_have_text("Personal")  # returned
    await expect(accesses.locator("tr", has_text="ReviewService/Submit")).to_have_count(1)
    await expect(page.locator("#accesses-summary")).to_have_text(re.compile(r"^\d+ accesses on the record"))

    # Paging on through the accesses ledger: an access made after the map was drawn.
    await search_as_ana(stack, seeded.tenant, seeded.marker)
    await expect(search).to_have_count(1)
    await page.get_by_role("button", name="Load later accesses").click()
    await expect(page.locator("#accesses-summary")).to_contain_text("loaded now")
    await expect(search).to_have_count(2)
    await page.get_by_role("button", name="Load later accesses").click()
    await expect(page.locator("#accesses-summary")).to_contain_text("No later access on the record")
    await expect(search).to_have_count(2)

    # The export: the whole answer, as the API gives it.
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Download the whole answer (JSON)").click()
    download = await downloading.value
    assert download.suggested_filename.startswith(f"data-map-{seeded.subject_id}-")
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    exported = json.loads(saved.read_text())
    async with stack.http(seeded.tenant, "dora", ["auditor"], purpose="data-map") as dora:
        answer = (await dora.get(f"/v1/subjects/{seeded.subject_id}:dataMap")).json()
    assert exported["subjectId"] == seeded.subject_id and exported["complete"] is False
    assert exported["stores"] == answer["stores"]
    assert seeded.marker in json.dumps(exported["stores"])
    assert {access["method"].rsplit("/", 1)[1] for access in exported["accesses"]} >= {"Upsert", "Search", "Submit"}

    # Both ledgers' chains.
    await page.get_by_role("button", name="Verify both ledgers").click()
    verified = page.locator("#verify-results")
    await expect(verified.locator("dd").nth(0)).to_have_text("Intact: no row yet.")  # no run in this tenant
    await expect(verified.locator("dd").nth(1)).to_contain_text("Intact: ")
    head_hash = await verified.locator("dd").nth(1).locator("code").text_content()
    assert len(head_hash) == 64 and int(head_hash, 16) >= 0

    # Nothing of the subject in the address or the browser's storage.
    assert seeded.subject_id not in page.url and seeded.marker not in page.url
    stored = await page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert seeded.subject_id not in stored and seeded.marker not in stored
    assert problems == [] and console_errors == []
    await page.context.close()


async def test_an_analyst_without_the_auditor_role_is_refused_with_the_role_named_and_sees_nothing(stack, browser):
    seeded = await seed(stack)
    page, problems, _ = await open_page(browser, f"{stack.base_url}/ui/data-map.html")
    await expect(page.get_by_label("Token")).to_be_focused()
    await page.get_by_label("Token").fill(stack.token(seeded.tenant, "ana", ["analyst", "reviewer"]))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#identity")).to_contain_text("without the auditor role")

    await show_map(page, seeded.subject_id)
    message = page.locator("#map-message")
    await expect(message).to_have_attribute("role", "alert")
    await expect(message).to_contain_text("Refused: you do not have the auditor role needed to read the data map")
    await expect(message).to_be_focused()
    await expect(page.locator("#map")).to_be_hidden()
    assert seeded.marker not in await page.content()

    await page.get_by_role("button", name="Verify both ledgers").click()
    await expect(page.locator("#verify-message")).to_contain_text(
        "Refused: you do not have the auditor role needed to verify the ledgers"
    )
    await expect(page.locator("#verify-results")).not_to_contain_text("Intact")
    assert sorted(problems) == sorted(
        [
            f"403 {stack.base_url}/v1/subjects/{seeded.subject_id}:dataMap",
            f"403 {stack.base_url}/v1/audit:verify",
            f"403 {stack.base_url}/v1/audit:verify",
        ]
    )
    await page.context.close()


async def test_a_lost_connection_and_a_broken_ledger_are_said_plainly(stack, browser):
    seeded = await seed(stack)
    token = stack.token(seeded.tenant, "dora", ["auditor"])
    page, _, _ = await open_page(browser, f"{stack.base_url}/ui/data-map.html#token={token}")
    await page.route("**/v1/subjects/**", lambda route: route.abort("internetdisconnected"))
    await show_map(page, seeded.subject_id)
    await expect(page.locator("#map-message")).to_contain_text(
        "Network error: the gateway could not be reached to read the data map"
    )
    await expect(page.locator("#map-message")).to_be_focused()
    await page.unroute("**/v1/subjects/**")

    # Someone with database access rewrites who made a call.
    connection = await asyncpg.connect(stack.database_url)
    try:
        await connection.execute("ALTER TABLE access_ledger DISABLE TRIGGER access_ledger_append_only")
        try:
            altered = await connection.fetchval(
                "UPDATE access_ledger SET principal = 'someone-else' WHERE tenant = $1 AND method LIKE '%/Search' "
                "RETURNING sequence",
                seeded.tenant,
            )
        finally:
            await connection.execute("ALTER TABLE access_ledger ENABLE TRIGGER access_ledger_append_only")
    finally:
        await connection.close()
    await page.get_by_role("button", name="Verify both ledgers").click()
    accesses = page.locator("#verify-results dd").nth(1)
    await expect(accesses).to_contain_text(f"Broken: row {altered} altered")
    await expect(accesses.locator(".broken")).to_have_text("Broken")
    await page.context.close()


async def test_keyboard_only(stack, browser):
    seeded = await seed(stack)
    token = stack.token(seeded.tenant, "dora", ["auditor"])
    page, problems, _ = await open_page(browser, f"{stack.base_url}/ui/data-map.html#token={token}")
    await expect(page.get_by_label("Data subject id")).to_be_focused()
    await page.keyboard.type(seeded.subject_id)
    await page.keyboard.press("Enter")
    await expect(page.locator("#map-heading")).to_be_focused()

    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Download the whole answer (JSON)")).to_be_focused()
    async with page.expect_download() as downloading:
        await page.keyboard.press("Enter")
    saved = await (await downloading.value).path()
    assert seeded.marker in json.dumps(json.loads(saved.read_text()))

    await page.keyboard.press("Tab")
    first_records = page.locator("#records details").first
    await expect(first_records.locator("summary")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(first_records).to_have_attribute("open", "")
    await expect(first_records.locator("pre")).to_be_visible()

    more = page.get_by_role("button", name="Load later accesses")
    for _ in range(20):
        if await more.evaluate("button => button === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(more).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#accesses-summary")).to_contain_text("on the record")

    # Back up to the verification and to the review page, still by keyboard.
    verify = page.get_by_role("button", name="Verify both ledgers")
    for _ in range(40):
        if await verify.evaluate("button => button === document.activeElement"):
            break
        await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator("#verify-results dd").nth(1)).to_contain_text("Intact")
    assert problems == []
    review_link = page.get_by_role("link", name="Review queue")
    for _ in range(10):
        if await review_link.evaluate("link => link === document.activeElement"):
            break
        await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{stack.base_url}/ui/")
    # One sign-in serves both pages (the review page then warns that an auditor cannot decide).
    await expect(page.locator("#identity")).to_contain_text("Signed in as dora (auditor)")
    await page.context.close()
