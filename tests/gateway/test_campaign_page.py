"""The marketer's page (`/ui/campaigns.html`) in a real headless Chromium.

Real gateway in front of the real review and segmentation services, on a database of their own. Through the
gateway, a tenant gets two campaigns (experiments over published, approved variants, with a holdout), outcome
events spread over three days, and a rule segmentation built twice with customers moving between its segments.
An analyst reads the campaigns, each arm's rate with its 95% interval drawn as a bar with whiskers, the rate over
time as lines, lift over the holdout and the probability of being best; the segments with their sizes and the
movements between versions; the same in French; all of it by keyboard. What the page shows is checked against
what the API answers, formatted the way the browser formats numbers.
"""

import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, async_playwright, expect

from matcha.gateway.review_page import CONTENT_SECURITY_POLICY
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.runtime.auth import TokenIssuer
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from tests.gateway.test_data_map_page import open_page
from tests.gateway.test_review_page import CHROMIUM_ARGS, MISSING_CHROMIUM

REVIEW_SERVICE = "matcha.review.v1.ReviewService"
SEGMENTATION_SERVICE = "matcha.segmentation.v1.SegmentationService"
CUSTOMERS = [f"cust-{index:03d}" for index in range(240)]
# Customers converting per arm, each on one of three days: fixed counts, whatever the arms' random sizes.
CONVERTING = {"A": 12, "B": 30, "holdout": 1}
SPENDERS_RULES = [
    {"id": "big_spenders", "name": "Big spenders", "condition": "spend >= 100.0"},
    {"id": "small_spenders", "name": "Small spenders", "condition": "spend < 100.0"},
]

expect.set_options(timeout=20_000)


@dataclass
class Stack:
    base_url: str
    issuer: TokenIssuer

    def token(self, tenant: str, subject: str, roles: list[str]) -> str:
        return self.issuer.mint(subject=subject, tenant=tenant, roles=roles)

    def http(self, tenant: str, subject: str, roles: list[str]) -> httpx.AsyncClient:
        headers = {
            "authorization": f"Bearer {self.token(tenant, subject, roles)}",
            "x-matcha-purpose": "campaign",
            "x-matcha-data-class": "INTERNAL",
        }
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60)


@dataclass(frozen=True)
class Seeded:
    tenant: str
    spring_id: str  # the older campaign, with outcomes
    autumn_id: str  # the newer one, without
    results: dict  # GetCampaignResults of spring on conversions, as the API answers


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
    """Gateway -> review and segmentation, on a database of their own."""
    database = f"campaign_page_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    database_url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{database}"))
    review = ReviewSettings(
        database_url=database_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        review_publish_dir=tmp_path_factory.mktemp("campaign-page-published"),
        review_service_tokens_dir=tmp_path_factory.mktemp("campaign-page-tokens"),
    )
    segmentation = SegmentationSettings(database_url=database_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with (
        serve(assemble_review_service(review).definition, review) as review_server,
        serve(build_segmentation_service(segmentation), segmentation) as segmentation_server,
    ):
        backends = {
            REVIEW_SERVICE: f"127.0.0.1:{review_server.port}",
            SEGMENTATION_SERVICE: f"127.0.0.1:{segmentation_server.port}",
        }
        async with start_gateway(backends) as base_url:
            yield Stack(base_url, issuer)


async def published_variant(stack: Stack, tenant: str, label: str) -> str:
    """A draft submitted, approved by a reviewer and published by a publisher (three people); its publication id."""
    async with (
        stack.http(tenant, "walt", ["author"]) as writer,
        stack.http(tenant, "rita", ["reviewer"]) as reviewer,
        stack.http(tenant, "pat", ["publisher"]) as publisher,
    ):
        submitted = await writer.post(
            "/v1/reviews",
            json={
                "title": f"Variant {label}",
                "content": f"Taste this month's coffee ({label}).",
                "channel": "CHANNEL_EMAIL",
                "target": f"variant {label}",
            },
        )
        assert submitted.status_code == 200, submitted.text
        item_id = submitted.json()["item"]["id"]
        decided = await reviewer.post(
            f"/v1/reviews/{item_id}:decide", json={"version": 1, "outcome": "DECISION_OUTCOME_APPROVE"}
        )
        assert decided.status_code == 200, decided.text
        published = await publisher.post(
            f"/v1/reviews/{item_id}:publish", json={"contentSha256": decided.json()["item"]["approvedSha256"]}
        )
        assert published.status_code == 200, published.text
        return published.json()["publication"]["id"]


async def create_experiment(stack: Stack, tenant: str, experiment_id: str, name: str) -> dict[str, str]:
    """An experiment of variants A and B over CUSTOMERS; each customer's arm."""
    variants = [{"label": label, "publicationId": await published_variant(stack, tenant, label)} for label in "AB"]
    async with stack.http(tenant, "pat", ["publisher"]) as publisher:
        created = await publisher.post(
            "/v1/experiments",
            json={
                "experimentId": experiment_id,
                "name": name,
                "variants": variants,
                "minSamplePerArm": 10,
                "customerIds": CUSTOMERS,
            },
        )
        assert created.status_code == 200, created.text
        assigned = await publisher.post(f"/v1/experiments/{experiment_id}:assign", json={"customerIds": CUSTOMERS})
        assert assigned.status_code == 200, assigned.text
    return {row["customerId"]: row["arm"] for row in assigned.json()["assignments"]}


async def ingest_outcomes(stack: Stack, tenant: str, experiment_id: str, arms: dict[str, str]) -> None:
    """CONVERTING customers of each arm convert, a third of them on each of the next three days."""
    now = datetime.now(UTC)
    events = []
    for arm, count in CONVERTING.items():
        members = [customer for customer, assigned in arms.items() if assigned == arm]
        assert len(members) >= count, (arm, len(members))
        for index, customer in enumerate(members[:count]):
            time = now + timedelta(days=index % 3, minutes=1)
            events.append(
                {
                    "eventId": f"{experiment_id}-conv-{customer}",
                    "experimentId": experiment_id,
                    "customerId": customer,
                    "type": "OUTCOME_TYPE_CONVERTED",
                    "value": 18.5,
                    "time": time.isoformat().replace("+00:00", "Z"),
                }
            )
            events.append(
                {
                    "eventId": f"{experiment_id}-open-{customer}",
                    "experimentId": experiment_id,
                    "customerId": customer,
                    "type": "OUTCOME_TYPE_OPENED",
                }
            )
    # One unsubscription two months ahead: a series of it per hour would have too many buckets.
    unsubscribed = next(customer for customer, assigned in arms.items() if assigned == "A")
    events.append(
        {
            "eventId": f"{experiment_id}-unsubscribe",
            "experimentId": experiment_id,
            "customerId": unsubscribed,
            "type": "OUTCOME_TYPE_UNSUBSCRIBED",
            "time": (now + timedelta(days=60)).isoformat().replace("+00:00", "Z"),
        }
    )
    async with stack.http(tenant, "otto", ["operator"]) as operator:
        ingested = await operator.post("/v1/outcomes:ingest", json={"events": events})
        assert ingested.status_code == 200, ingested.text
        assert int(ingested.json()["accepted"]) == len(events)


async def build_spenders(stack: Stack, tenant: str) -> None:
    """A rule segmentation built twice over 20 customers: between the versions 4 small spenders become big and 1
    big spender becomes small (big 6 -> 9, small 14 -> 11)."""
    policy = {"dataClass": "DATA_CLASS_INTERNAL", "consentedPurposes": ["campaign"]}
    first = {f"shop-{index:02d}": 150.0 if index < 6 else 40.0 for index in range(20)}
    second = dict(first, **{"shop-00": 20.0}, **{f"shop-{index:02d}": 210.0 for index in range(6, 10)})
    async with stack.http(tenant, "otto", ["operator", "author", "analyst"]) as operator:
        for spend in (first, second):
            customers = [
                {"id": customer, "features": {"spend": value}, "policy": policy} for customer, value in spend.items()
            ]
            ingested = await operator.post("/v1/customers:batchIngest", json={"customers": customers})
            assert ingested.status_code == 200, ingested.text
            built = await operator.post(
                "/v1/segmentations:build",
                json={"name": "spenders", "features": ["spend"], "rules": {"rules": SPENDERS_RULES}},
            )
            assert built.status_code == 200, built.text


@pytest.fixture(scope="module")
async def seeded(stack) -> Seeded:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    spring_id = f"spring-{uuid.uuid4().hex[:6]}"
    arms = await create_experiment(stack, tenant, spring_id, "Spring coffee")
    await ingest_outcomes(stack, tenant, spring_id, arms)
    autumn_id = f"autumn-{uuid.uuid4().hex[:6]}"
    await create_experiment(stack, tenant, autumn_id, "Autumn tea")
    async with stack.http(tenant, "pat", ["publisher"]) as publisher:
        promoted = await publisher.post(f"/v1/experiments/{autumn_id}:promote", json={"variant": "A"})
        assert promoted.status_code == 200, promoted.text
    await build_spenders(stack, tenant)
    async with stack.http(tenant, "ana", ["analyst"]) as analyst:
        results = await analyst.get(f"/v1/experiments/{spring_id}/results")
        assert results.status_code == 200, results.text
    return Seeded(tenant, spring_id, autumn_id, results.json())


def shown_percent(value: float, *, signed: bool = False, french: bool = False) -> str:
    """A rate as the page shows it: Intl.NumberFormat's percent with one decimal, which rounds the exact value of
    the double half away from zero (Decimal(value) is that exact value)."""
    number = (Decimal(value) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = f"{abs(number)}"
    if french:
        text = text.replace(".", ",") + "\u202f%"
    else:
        text += "%"
    if signed and number != 0:
        text = ("+" if number > 0 else "-") + text
    return text


def outcome(arm: dict, kind: str = "OUTCOME_TYPE_CONVERTED") -> dict:
    return next(rate for rate in arm["outcomes"] if rate["type"] == kind)


async def sign_in(browser: Browser | None, stack: Stack, seeded: Seeded, fragment: str = "", roles=("analyst",)):
    token = stack.token(seeded.tenant, "mia", list(roles))
    page, problems, console_errors = await open_page(
        browser, f"{stack.base_url}/ui/campaigns.html#token={token}{fragment}"
    )
    await expect(page.locator("#identity")).to_contain_text("mia")
    return page, problems, console_errors


async def test_the_page_is_served_beside_the_review_page_under_the_same_policy(stack):
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        page = await http.get("/ui/campaigns.html")
        script = await http.get("/ui/campaigns.js")
        style = await http.get("/ui/campaigns.css")
        review = await http.get("/ui/")
    for response in (page, script, style):
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert "http" not in page.text  # nothing from another origin
    assert 'href="./"' in page.text and 'href="campaigns.html"' in review.text  # each links the other
    assert "localStorage" not in script.text


async def test_an_analyst_sees_each_variants_rate_interval_lift_and_chances_as_charts(stack, browser, seeded):
    page, problems, console_errors = await sign_in(browser, stack, seeded)
    assert "token=" not in page.url

    # Campaigns, newest first, each with its variants and audience.
    rows = page.locator("#campaigns-body tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator("a")).to_have_text("Autumn tea")
    await expect(rows.nth(1).locator("a")).to_have_text("Spring coffee")
    await expect(rows.nth(1).locator("td").nth(0)).to_have_text("A, B")
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text(f"{len(CUSTOMERS)}")
    await expect(rows.nth(0).locator("td").nth(3)).to_have_text("A")  # promoted
    await expect(rows.nth(1).locator("td").nth(3)).to_have_text("")

    await page.get_by_role("link", name="Spring coffee").click()
    await expect(page.locator("#results-heading")).to_have_text("Results of Spring coffee")
    await expect(page.locator("#results-heading")).to_be_focused()
    assert f"experiment={seeded.spring_id}" in page.url
    await expect(page.locator("#results-summary")).to_contain_text(
        f"Experiment {seeded.spring_id}: {len(CUSTOMERS)} customers, 10% held out; minimum sample 10 per arm, reached."
    )

    # The table: one row per arm, every figure as the API gives it.
    arms = seeded.results["arms"]
    assert [arm["arm"] for arm in arms] == ["A", "B", "holdout"]
    table = page.locator("#arms-body tr")
    await expect(table).to_have_count(3)
    for index, arm in enumerate(arms):
        rate = outcome(arm)
        cells = table.nth(index).locator("th, td")
        name = "Holdout" if arm["holdout"] else arm["arm"]
        expected = [
            name,
            str(arm["audience"]),
            str(CONVERTING[arm["arm"]]),
            shown_percent(rate["rate"]),
            f"{shown_percent(rate['ciLow'])} to {shown_percent(rate['ciHigh'])}",
            "" if arm["holdout"] else shown_percent(arm["lift"], signed=True),
        ]
        await expect(cells.nth(0)).to_have_text(expected[0])
        for column in range(1, 6):
            await expect(cells.nth(column)).to_have_text(expected[column])
        await expect(cells.nth(7)).to_have_text(shown_percent(arm.get("probabilityBest", 0.0)))
    # B converts 30 of its ~108 customers, A 12, the holdout 1 of ~24: B is the likeliest best.
    chances = [arm.get("probabilityBest", 0.0) for arm in arms]
    assert chances[1] == max(chances) > 0.5
    await expect(table.nth(1).locator("td").nth(5)).to_have_text(re.compile(r"^\+\d+\.\d pts$"))

    # The chart: a bar up to each rate and a whisker over its interval, in the arms' order.
    groups = page.locator("#rates-chart svg g.arm")
    await expect(groups).to_have_count(3)
    geometry = await groups.evaluate_all(
        """groups => groups.map(g => {
            const bar = g.querySelector("rect.bar");
            const range = g.querySelector(".whisker line.range");
            return {arm: g.dataset.arm, barTop: +bar.getAttribute("y"), barHeight: +bar.getAttribute("height"),
                    low: +range.getAttribute("y1"), high: +range.getAttribute("y2"),
                    value: g.querySelector("text.value").textContent, title: g.querySelector("title").textContent};
        })"""
    )
    assert [shape["arm"] for shape in geometry] == ["A", "B", "holdout"]
    for shape, arm in zip(geometry, arms, strict=True):
        rate = outcome(arm)
        # SVG's y grows downwards: the interval's low end is below the bar's top, its high end above.
        assert shape["low"] >= shape["barTop"] >= shape["high"]
        assert shape["value"] == shown_percent(rate["rate"])
        assert f"95% interval {shown_percent(rate['ciLow'])} to {shown_percent(rate['ciHigh'])}" in shape["title"]
    heights = {shape["arm"]: shape["barHeight"] for shape in geometry}
    rates = {arm["arm"]: outcome(arm)["rate"] for arm in arms}
    assert heights["B"] / heights["A"] == pytest.approx(rates["B"] / rates["A"], rel=1e-3)
    assert heights["B"] > heights["A"] > heights["holdout"] > 0

    # Over time: one line per arm through three daily points, cumulative, ending at the arm's rate.
    lines = page.locator("#series-chart svg g.line")
    await expect(lines).to_have_count(3)
    for index, arm in enumerate(arms):
        dots = lines.nth(index).locator("circle")
        await expect(dots).to_have_count(3)
        series = [float(value) for value in await dots.evaluate_all("dots => dots.map(d => d.dataset.rate)")]
        assert series == sorted(series) and series[-1] == pytest.approx(outcome(arm)["rate"])
        if CONVERTING[arm["arm"]] >= 3:  # some of them on each day
            assert series[0] < series[1] < series[2]
        name = "Holdout" if arm["holdout"] else arm["arm"]
        await expect(page.locator("#series-legend li").nth(index)).to_have_text(
            f"{name}: {shown_percent(outcome(arm)['rate'])}"
        )
    await expect(page.locator("#series-caption")).to_have_text("Converted rate over time (cumulative, per day)")

    # Another outcome: opens, counted for the same customers.
    await page.get_by_label("Outcome").select_option("OUTCOME_TYPE_OPENED")
    await expect(page.locator("#rates-caption")).to_have_text("Opened rate per variant, with its 95% interval")
    await expect(table.nth(1).locator("td").nth(1)).to_have_text(str(CONVERTING["B"]))
    await expect(table.nth(1).locator("td").nth(2)).to_have_text(shown_percent(outcome(arms[1])["rate"]))

    # Per hour, two months of unsubscriptions are too many buckets: the results stay, the series says why not.
    await page.get_by_label("Outcome").select_option("OUTCOME_TYPE_UNSUBSCRIBED")
    await page.get_by_label("Over time, per").select_option("3600s")
    await expect(page.locator("#series-chart")).to_contain_text("No series at this width (at most 1000 buckets")
    await expect(page.locator("#rates-caption")).to_have_text("Unsubscribed rate per variant, with its 95% interval")
    await expect(table.nth(0).locator("td").nth(1)).to_have_text("1")
    await page.get_by_label("Over time, per").select_option("604800s")
    await expect(page.locator("#series-chart svg g.line")).to_have_count(3)
    await expect(page.locator("#series-caption")).to_have_text("Unsubscribed rate over time (cumulative, per week)")

    # A campaign without outcomes yet.
    await page.get_by_role("link", name="Autumn tea").click()
    await expect(page.locator("#results-heading")).to_have_text("Results of Autumn tea")
    await expect(page.locator("#arms-body tr").nth(0).locator("td").nth(1)).to_have_text("0")
    await expect(page.locator("#results-summary")).to_contain_text("Winner: A.")
    await expect(page.locator("#arms-body tr").nth(0).locator("th")).to_have_text("A winner")
    await expect(page.locator("#rates-chart rect.bar.promoted")).to_have_count(1)
    await expect(page.locator("#rates-chart svg g.arm")).to_have_count(3)

    # Nothing failed but the hourly series the service refused (INVALID_ARGUMENT, HTTP 400), asked for once.
    assert [problem.split("?")[0] for problem in problems] == [
        f"400 {stack.base_url}/v1/experiments/{seeded.spring_id}/results"
    ]
    assert "bucket=3600s" in problems[0]
    assert all("400" in message for message in console_errors)
    await page.context.close()


async def test_segments_show_their_sizes_and_the_customers_movements(stack, browser, seeded):
    page, problems, console_errors = await sign_in(browser, stack, seeded)
    await expect(page.get_by_label("Segmentation")).to_have_value("spenders")
    await expect(page.locator("#segmentation-heading")).to_have_text("spenders, version 2")
    sizes = page.locator("#segments-body tr")
    big = page.locator('#segments-body tr[data-segment="big_spenders"]')
    small = page.locator('#segments-body tr[data-segment="small_spenders"]')
    await expect(big.locator("th")).to_contain_text("Big spenders")
    await expect(big.locator("td").nth(0)).to_have_text("9")
    await expect(big.locator("td").nth(1)).to_have_text("45.0%")
    await expect(small.locator("td").nth(0)).to_have_text("11")
    assert await sizes.count() >= 2
    big_bar = await page.locator('#sizes-chart g.segment[data-segment="big_spenders"] rect').get_attribute("width")
    small_bar = await page.locator('#sizes-chart g.segment[data-segment="small_spenders"] rect').get_attribute("width")
    assert float(big_bar) / float(small_bar) == pytest.approx(9 / 11, rel=1e-3)

    # Movements from version 1: 1 big spender became small, 4 small ones big.
    await expect(page.locator("#movements-summary")).to_contain_text(
        "From version 1 to version 2: 20 customers on both sides, of whom 5 changed segment; 0 new, 0 gone."
    )
    matrix = page.locator("#migration-body")
    await expect(matrix.locator('tr[data-from="big_spenders"] td[data-to="big_spenders"]')).to_have_text("5")
    await expect(matrix.locator('tr[data-from="big_spenders"] td[data-to="small_spenders"]')).to_have_text("1")
    await expect(matrix.locator('tr[data-from="small_spenders"] td[data-to="big_spenders"]')).to_have_text("4")
    await expect(matrix.locator('tr[data-from="small_spenders"] td[data-to="small_spenders"]')).to_have_text("10")
    shift = page.locator('#shifts-body tr[data-segment="big_spenders"] td')
    await expect(shift).to_have_text(["30.0%", "45.0%", "+15.0 pts"])

    # The first version has nothing before it; the address names the view, so it can be shared.
    await page.get_by_label("Version", exact=True).select_option("1")
    await expect(page.locator("#segmentation-heading")).to_have_text("spenders, version 1")
    await expect(big.locator("td").nth(0)).to_have_text("6")
    await expect(page.locator("#movements-message")).to_have_text(
        "This is the first version: there is no previous version to compare it with."
    )
    assert "segmentation=spenders" in page.url and "version=1" in page.url
    # Since its build, the customers' current features moved five of them.
    await page.get_by_label("Movements since").select_option("current")
    await expect(page.locator("#movements-summary")).to_contain_text(
        "From the build of version 1 to the customers' features today: 20 customers on both sides, of whom 5 "
        "changed segment"
    )
    assert problems == [] and console_errors == []
    await page.context.close()


async def test_customers_moving_now_are_counted_live(stack, browser, seeded):
    """Customers re-assigned as their data arrives, counted per move while the page is open (a tenant of its own,
    so the other tests' comparisons with current data stay as they are)."""
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    await build_spenders(stack, tenant)
    page, problems, console_errors = await sign_in(browser, stack, Seeded(tenant, "", "", {}))
    await expect(page.locator("#live-state")).to_have_text(
        "Live: customers of spenders re-assigned since this page opened, as their data arrives (latest version)."
    )
    await expect(page.locator("#live-moves")).to_have_text("No customer has moved since this page opened.")

    policy = {"dataClass": "DATA_CLASS_INTERNAL", "consentedPurposes": ["campaign"]}
    spend = {"shop-10": 300.0, "shop-11": 320.0, "shop-01": 10.0}
    customers = [{"id": customer, "features": {"spend": value}, "policy": policy} for customer, value in spend.items()]
    async with stack.http(tenant, "otto", ["operator"]) as operator:
        ingested = await operator.post("/v1/customers:batchIngest", json={"customers": customers})
        assert ingested.status_code == 200, ingested.text
    up = page.locator('#live-moves li[data-from="small_spenders"][data-to="big_spenders"]')
    down = page.locator('#live-moves li[data-from="big_spenders"][data-to="small_spenders"]')
    await expect(up).to_contain_text("Small spenders \u2192 Big spenders: 2 customers (latest at ")
    await expect(down).to_contain_text("Big spenders \u2192 Small spenders: 1 customer (latest at ")
    await expect(page.locator("#live-moves li")).to_have_count(2)

    await page.get_by_label("Language").select_option("fr")
    await expect(up).to_contain_text("Small spenders \u2192 Big spenders : 2 clients (dernier à ")
    await expect(page.locator("#live-state")).to_contain_text("En direct : clients de spenders réaffectés")
    assert problems == [] and console_errors == []
    await page.context.close()


async def test_french_labels_and_numbers(stack, browser, seeded):
    page, problems, console_errors = await sign_in(browser, stack, seeded, f"&experiment={seeded.spring_id}")
    await expect(page.locator("#results-heading")).to_have_text("Results of Spring coffee")
    await page.get_by_label("Language").select_option("fr")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.locator("h1")).to_have_text("Campagnes Matcha")
    await expect(page.locator("#campaigns-heading")).to_have_text("Campagnes")
    await expect(page.locator("#results-heading")).to_have_text("Résultats de Spring coffee")
    await expect(page.locator("#arms-table thead th")).to_have_text(
        [
            "Variante",
            "Audience",
            "Clients",
            "Taux",
            "Intervalle à 95 %",
            "Gain sur le témoin",
            "Écart",
            "Probabilité d'être la meilleure",
        ]
    )
    await expect(page.get_by_label("Résultat mesuré")).to_have_value("OUTCOME_TYPE_CONVERTED")
    holdout = page.locator('#arms-body tr[data-arm="holdout"] th')
    await expect(holdout).to_have_text("Témoin")
    b = outcome(seeded.results["arms"][1])
    b_row = page.locator('#arms-body tr[data-arm="B"] td')
    await expect(b_row.nth(2)).to_have_text(shown_percent(b["rate"], french=True))
    await expect(b_row.nth(3)).to_have_text(
        f"de {shown_percent(b['ciLow'], french=True)} à {shown_percent(b['ciHigh'], french=True)}"
    )
    await expect(page.locator("#rates-caption")).to_have_text(
        "Taux « Converti » par variante, avec son intervalle à 95 %"
    )
    await expect(page.locator("#segments-heading")).to_have_text("Segments")
    await expect(page.locator("#movements-summary")).to_contain_text(
        "De la version 1 à la version 2 : 20 clients des deux côtés, dont 5 ont changé de segment"
    )
    await expect(page.get_by_role("link", name="File de relecture")).to_be_visible()

    # The choice holds for the tab: a reload comes back in French.
    await page.reload()
    await expect(page.locator("#campaigns-heading")).to_have_text("Campagnes")
    await expect(page.locator("#results-heading")).to_have_text("Résultats de Spring coffee")
    assert problems == [] and console_errors == []
    await page.context.close()


async def test_the_browsers_language_chooses_french(stack, browser, seeded):
    if browser is None:
        pytest.fail(MISSING_CHROMIUM)
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    token = stack.token(seeded.tenant, "mia", ["analyst"])
    await page.goto(f"{stack.base_url}/ui/campaigns.html#token={token}")
    await expect(page.locator("#campaigns-heading")).to_have_text("Campagnes")
    await expect(page.locator("#identity")).to_contain_text("Connecté en tant que mia (analyst)")
    await expect(page.get_by_label("Langue")).to_have_value("fr")
    await context.close()

    # A link may name the language; the browser's says English here.
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(f"{stack.base_url}/ui/campaigns.html#lang=fr&token={token}")
    await expect(page.locator("#campaigns-heading")).to_have_text("Campagnes")
    await page.get_by_label("Langue").select_option("en")
    await expect(page.locator("#campaigns-heading")).to_have_text("Campaigns")
    assert "lang=en" in page.url
    await page.reload()
    await expect(page.locator("#campaigns-heading")).to_have_text("Campaigns")
    await context.close()


async def test_refusals_and_unknown_experiments_are_said_plainly(stack, browser, seeded):
    page, _, _ = await sign_in(browser, stack, seeded, "&experiment=no-such-campaign")
    await expect(page.locator("#results-message")).to_have_text("No experiment no-such-campaign in this tenant.")
    await expect(page.locator("#results-message")).to_be_focused()
    await page.context.close()

    page, _, _ = await sign_in(browser, stack, seeded, f"&experiment={seeded.spring_id}", roles=("auditor",))
    await expect(page.locator("#identity")).to_contain_text("without the analyst role")
    await expect(page.locator("#campaigns-message")).to_contain_text(
        "Refused: you do not have the analyst role needed to list the campaigns"
    )
    await expect(page.locator("#results-message")).to_contain_text(
        "Refused: you do not have the analyst role needed to read the results"
    )
    await expect(page.locator("#arms-body tr")).to_have_count(0)
    await page.context.close()


async def test_keyboard_only(stack, browser, seeded):
    page, problems, _ = await sign_in(browser, stack, seeded)
    await expect(page.locator("#campaigns-body tr")).to_have_count(2)
    spring = page.get_by_role("link", name="Spring coffee")
    for _ in range(30):
        if await spring.evaluate("link => link === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(spring).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#results-heading")).to_have_text("Results of Spring coffee")
    await expect(page.locator("#results-heading")).to_be_focused()
    await expect(page.locator("#campaigns-body tr.current a")).to_have_text("Spring coffee")

    # On to the outcome, changed with the arrow keys.
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Outcome")).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(page.locator("#rates-caption")).to_have_text("Clicked rate per variant, with its 95% interval")

    # Back to the other campaign, by keyboard again.
    autumn = page.get_by_role("link", name="Autumn tea")
    for _ in range(30):
        if await autumn.evaluate("link => link === document.activeElement"):
            break
        await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator("#results-heading")).to_have_text("Results of Autumn tea")

    # The segments' version and the language, by keyboard too.
    version = page.get_by_label("Version", exact=True)
    for _ in range(40):
        if await version.evaluate("select => select === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(version).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#segmentation-heading")).to_have_text("spenders, version 1")
    language = page.get_by_label("Language")
    for _ in range(60):
        if await language.evaluate("select => select === document.activeElement"):
            break
        await page.keyboard.press("Shift+Tab")
    await expect(language).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#segmentation-heading")).to_have_text("spenders, version 1")
    await expect(page.locator("#results-heading")).to_have_text("Résultats de Autumn tea")
    assert problems == []
    await page.context.close()
