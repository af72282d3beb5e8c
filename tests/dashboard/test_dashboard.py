"""The dashboard in a real browser against a real server: sign-in, memory, agent, health,
admin, roles and tenants."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
from playwright.sync_api import expect

from tests.agent.conftest import oa_plan, oa_verdict, step
from tests.dashboard.conftest import Site, shot, sign_in
from tests.llm.conftest import oa_stream


def add_record(page: Any, site: Site, text: str, tags: str = "") -> str:
    page.goto(site.url + "/ui/memory")
    page.get_by_label("Text", exact=True).fill(text)
    if tags:
        page.locator("#add-h ~ form").get_by_label("Tags").fill(tags)
    page.get_by_role("button", name="Remember").click()
    page.wait_for_url(re.compile(r".*/ui/memory/[0-9a-z]+\?flash=.*"))
    return page.url.split("/ui/memory/")[1].split("?")[0]


def search(page: Any, site: Site, query: str) -> None:
    page.goto(site.url + "/ui/memory")
    page.get_by_label("Query").fill(query)
    page.get_by_role("button", name="Search", exact=True).click()


def test_sign_in_keeps_the_key_in_an_http_only_cookie(open_page: Any, site: Site) -> None:
    page = open_page(None)
    page.goto(site.url + "/ui/memory")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("mgr_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")

    page.get_by_label("API key").fill(site.key("admin"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/memory")
    expect(page.locator(".layer")).to_have_count(3)
    cookie = next(c for c in page.context.cookies() if c["name"] == "magray_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert "magray_key" not in page.evaluate("document.cookie")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(site.url + "/ui/health")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_add_search_explain_and_forget(open_page: Any, site: Site, tmp_path: Path) -> None:
    page = open_page("admin")
    rid = add_record(page, site, "The lighthouse keeper logs the tide every dawn.", "sea, log")
    expect(page.locator("pre.text")).to_have_text("The lighthouse keeper logs the tide every dawn.")
    expect(page.locator(".tag")).to_have_text(["sea", "log"])
    expect(page.get_by_role("meter", name="promotion score")).to_be_visible()
    add_record(page, site, "Quarterly budget review moved to Thursday.")

    search(page, site, "who records the tide at the lighthouse")
    first = page.locator(".hit").first
    expect(first.locator(".hit-text")).to_contain_text("lighthouse keeper")
    first.get_by_text("Why this hit").click()
    meters = first.get_by_role("meter")
    expect(meters).to_have_count(4)
    vector = first.get_by_role("meter", name="vector rank")
    expect(vector).to_have_attribute("aria-valuenow", "100")  # ranked first by meaning
    expect(first.locator("dl.bars")).to_contain_text("#1")
    shot(page, "memory", tmp_path)

    first.locator(".hit-text").click()
    page.wait_for_url(f"**/ui/memory/{rid}")
    expect(page.locator("dl.facts")).to_contain_text(re.compile(r"\d+ recalls?, last at"))
    shot(page, "record", tmp_path)
    page.get_by_role("button", name="Forget").click()
    page.wait_for_url("**/ui/memory?flash=*")
    expect(page.get_by_role("status")).to_contain_text(f"Forgot {rid}")

    search(page, site, "who records the tide at the lighthouse")
    expect(page.locator("#hits")).not_to_contain_text("lighthouse keeper")
    page.goto(site.url + f"/ui/memory/{rid}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_promote_and_expire_start_as_dry_runs(open_page: Any, site: Site) -> None:
    page = open_page("admin")
    page.goto(site.url + "/ui/memory")
    page.get_by_role("button", name="Promote (dry run)").click()
    expect(page.locator("#lifecycle h3")).to_have_text(re.compile("Promotion, dry run"))
    page.get_by_role("button", name="Expire (dry run)").click()
    expect(page.locator("#lifecycle h3")).to_have_text("Expiry, dry run")


def test_mutating_forms_need_the_csrf_token(open_page: Any, site: Site) -> None:
    page = open_page("admin")
    forged = page.request.post(
        site.url + "/ui/memory/add", form={"text": "forged", "csrf": "0" * 40}
    )
    assert forged.status == 403
    missing = page.request.post(site.url + "/ui/memory/add", form={"text": "forged"})
    assert missing.status == 403
    search(page, site, "forged")
    expect(page.locator("#hits")).not_to_contain_text("forged")


def test_chat_streams_the_answer_and_links_its_citations(
    open_page: Any, site: Site, tmp_path: Path
) -> None:
    page = open_page("admin")
    rid = add_record(page, site, "The office plants are watered on Mondays by Priya.")
    site.llm.add(oa_stream(["Priya waters ", "the plants ", "on Mondays [1]."]))
    page.goto(site.url + "/ui/agent")
    page.get_by_label("Question").fill("Who waters the office plants?")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator(".chat .a")).to_have_text("Priya waters the plants on Mondays [1].")
    cite = page.locator(".chat a.cite")
    expect(cite).to_have_count(1)
    shot(page, "agent-chat", tmp_path)
    cite.click()
    page.wait_for_url(f"**/ui/memory/{rid}")
    expect(page.locator("pre.text")).to_contain_text("watered on Mondays")


def test_agent_run_streams_its_plan_and_waits_for_approval(
    open_page: Any, site: Site, tmp_path: Path
) -> None:
    site.llm.add(
        oa_plan(
            step("edit", "file_edit", {"path": "notes.txt", "search": "two", "replace": "2"}),
        ),
        oa_verdict(True, "notes.txt now says 2."),
    )
    page = open_page("admin")
    page.goto(site.url + "/ui/agent")
    page.get_by_role("textbox", name="Task").fill("write two as a digit in notes.txt")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r".*/ui/agent/runs/[0-9a-f]+$"))
    step_row = page.locator("#plan li[data-step=edit]")
    expect(step_row).to_contain_text("file_edit")
    expect(step_row.locator("pre[data-arg=search]")).to_have_text("two")
    expect(step_row.locator("pre[data-arg=replace]")).to_have_text("2")
    expect(step_row.locator("pre.diff")).to_have_text("--- notes.txt\n+++ notes.txt\n-two\n+2")
    approve = page.get_by_role("button", name="Approve and run")
    expect(approve).to_be_visible()
    assert (site.workspace / "notes.txt").read_text() == "one\ntwo\nthree\n"  # not yet
    shot(page, "agent-run", tmp_path)
    approve.click()
    expect(page.locator("#approval-note")).to_contain_text("Approved")
    expect(page.locator("#result-json")).to_contain_text("notes.txt now says 2.")
    expect(page.locator("#steps li[data-status]")).to_contain_text(["file_edit"])
    assert (site.workspace / "notes.txt").read_text() == "one\n2\nthree\n"


def test_health_shows_metrics_that_move_with_requests(
    open_page: Any, site: Site, tmp_path: Path
) -> None:
    page = open_page("admin")
    page.goto(site.url + "/ui/health")
    expect(page.get_by_role("heading", name=re.compile("Readiness"))).to_be_visible()
    expect(page.locator(".checks li").first).to_be_visible()
    before = int(page.locator("#requests-total").inner_text())
    recalls = int(page.locator("#recalls-total").inner_text())
    for query in ("tide", "budget", "plants"):
        search(page, site, query)
        expect(page.locator("#hits")).not_to_be_empty()
    page.goto(site.url + "/ui/health")
    assert int(page.locator("#requests-total").inner_text()) > before
    assert int(page.locator("#recalls-total").inner_text()) >= recalls + 3
    expect(page.get_by_text("Recall latency")).to_contain_text("ms")
    expect(page.locator("svg.spark polyline").first).to_have_attribute("points", re.compile(r"\d"))
    expect(page.get_by_role("cell", name="oa", exact=False).first).to_be_visible()
    shot(page, "health", tmp_path)


def test_a_reader_cannot_see_the_admin_page(open_page: Any, site: Site, tmp_path: Path) -> None:
    page = open_page("reader")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    expect(page.get_by_role("button", name="Remember")).to_have_count(0)
    page.goto(site.url + "/ui/admin")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("admin role")

    admin = open_page("admin")
    admin.get_by_role("link", name="Admin").click()
    expect(admin.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(admin.locator("table.audit tbody tr").first).to_be_visible()
    expect(admin.get_by_text("Hash chain: intact")).to_be_visible()

    # the admin makes a reader key for a new tenant: shown once, listed without the secret
    admin.get_by_label("Role").select_option("reader")
    admin.get_by_role("textbox", name="Tenant").fill("newco")
    admin.get_by_role("button", name="Create key").click()
    expect(admin.get_by_role("alert")).to_contain_text("shown only once")
    secret = admin.locator("#new-key").inner_text()
    assert secret.startswith("mgr_")
    kid = admin.locator(".created .muted").inner_text().split()[1]
    row = admin.locator("#keys-h ~ table tbody tr", has_text=kid)
    expect(row).to_contain_text("reader")
    expect(row).to_contain_text("newco")
    expect(admin.locator("#tenants-h ~ ul li", has_text="newco")).to_have_text(
        "newco 1 key, 1 active"
    )
    shot(admin, "admin", tmp_path)
    admin.goto(site.url + "/ui/admin")
    expect(admin.get_by_text(secret)).to_have_count(0)

    # the new key signs in (a fresh browser context) and sees no Admin page
    newco = open_page(None)
    sign_in(newco, site, secret)
    expect(newco.get_by_role("link", name="Admin")).to_have_count(0)
    newco.goto(site.url + "/ui/admin")
    expect(newco.get_by_role("heading", name="Not allowed")).to_be_visible()

    # revoked, it no longer signs anyone in; the chain still verifies, with the key changes
    admin.get_by_role("button", name=f"Revoke key {kid}").click()
    expect(admin.get_by_text(f"Revoked key {kid}.")).to_be_visible()
    expect(admin.locator("#keys-h ~ table tbody tr", has_text=kid)).to_contain_text("revoked")
    expect(admin.get_by_role("button", name=f"Revoke key {kid}")).to_have_count(0)
    expect(admin.locator("#tenants-h ~ ul li", has_text="newco")).to_have_text(
        "newco 1 key, 0 active"
    )
    newco.goto(site.url + "/ui/memory")
    expect(newco.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(admin.get_by_text("Hash chain: intact")).to_be_visible()
    expect(admin.locator("table.audit")).to_contain_text("DELETE /v1/keys/{id}")


def test_one_tenant_never_sees_another_tenants_records(open_page: Any, site: Site) -> None:
    acme = open_page("acme")
    rid = add_record(acme, site, "Acme's secret launch codename is Blue Heron.")
    search(acme, site, "secret launch codename")
    expect(acme.locator(".hit").first).to_contain_text("Blue Heron")

    globex = open_page("globex")
    expect(globex.locator("table.records")).not_to_contain_text("Blue Heron")
    search(globex, site, "secret launch codename Blue Heron")
    expect(globex.locator("#hits")).to_contain_text("No memory matches")
    globex.goto(site.url + f"/ui/memory/{rid}")
    expect(globex.get_by_role("heading", name="Not found")).to_be_visible()
    expect(globex.locator("body")).not_to_contain_text("Blue Heron")
    # The health page shows the caller's own tenant's layers only.
    globex.goto(site.url + "/ui/health")
    expect(globex.locator("body")).not_to_contain_text("acme")


def test_phone_width_and_dark_mode_stay_readable(
    open_page: Any, site: Site, tmp_path: Path
) -> None:
    page = open_page("admin", width=390, height=844, dark=True)
    for path in ("/ui/memory", "/ui/agent", "/ui/health", "/ui/admin"):
        page.goto(site.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, (path, overflow)
    page.goto(site.url + "/ui/memory")
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(17, 20, 24)"
    shot(page, "memory-phone-dark", tmp_path)
    # Keyboard: Tab reaches the skip link first, Enter on it moves to the content; '/'
    # focuses the search box.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "query"


def test_static_assets_ship_in_the_package(site: Site) -> None:
    js = httpx.get(site.url + "/ui/static/htmx.min.js", timeout=60)
    assert js.status_code == 200 and "htmx" in js.text
    page = httpx.get(site.url + "/ui/login", timeout=60).text
    assert "http://" not in page.replace(site.url, "") and "https://" not in page


def test_a_record_from_a_file_links_its_source_with_offsets(open_page: Any, site: Site) -> None:
    text = "# Kettle\n\nDescale the kettle with citric acid once a month.\n"
    answer = httpx.post(
        site.url + "/v1/ingest",
        headers={"Authorization": f"Bearer {site.key('admin')}"},
        files={"files": ("kettle.md", text.encode(), "text/markdown")},
        timeout=180,
    )
    assert answer.status_code == 200, answer.text
    page = open_page("admin")
    search(page, site, "how to descale the kettle")
    page.locator(".hit .hit-text", has_text="citric acid").first.click()
    source = page.locator("a.source")
    expect(source).to_contain_text("kettle.md")
    expect(source).to_have_attribute("href", re.compile(r"^file:///.*kettle\.md#L\d+$"))
    expect(page.locator("dl.facts")).to_contain_text(re.compile(r"bytes \d+–\d+, lines \d+–\d+"))
