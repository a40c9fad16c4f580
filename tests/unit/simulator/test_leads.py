"""The simulator's lead endpoints, driven over loopback HTTP with aiohttp: uploads by SmartLead's
rules in both answer forms, a campaign's leads page by page, finding, removing, pausing, resuming
and unsubscribing leads, with the same key check, rate budget and faults as every write."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest

from bulkrunner.model import Rate
from bulkrunner.simulator import FaultPlan, Simulator, SimulatorConfig, SimulatorState, seed_lead
from bulkrunner.simulator.campaigns import Campaigns
from bulkrunner.simulator.lead_writes import Leads
from bulkrunner.simulator.leads import LEAD_FIELDS, is_address
from bulkrunner.simulator.validation import Accepted
from tests.unit.simulator import api as simulator_api
from tests.unit.simulator.api import Api, Reply

KEY = "s3cret-leads-key"


class LeadApi(Api):
    """The simulator's client, with the lead calls the tests make."""

    async def upload(self, campaign_id: int, *emails: str, **settings: bool) -> Reply:
        body = {"lead_list": [{"email": e} for e in emails], "settings": settings}
        return await self("POST", f"/campaigns/{campaign_id}/leads", body)

    async def page(self, campaign_id: int, query: str = "") -> Reply:
        return await self("GET", f"/campaigns/{campaign_id}/leads{query}")

    async def emails(self, campaign_id: int) -> list[str]:
        """Every lead address of the campaign, oldest first, read page by page."""
        found: list[str] = []
        while True:
            _, page = await self.page(campaign_id, f"?offset={len(found)}&limit=100")
            found += [entry["lead"]["email"] for entry in page["data"]]
            if len(found) >= int(page["total_leads"]):
                return found

    async def lead(self, email: str) -> Any:
        return (await self("GET", f"/leads/?email={email}"))[1]


def serving(**options: Any) -> AbstractAsyncContextManager[tuple[Simulator, LeadApi]]:
    return simulator_api.serving(LeadApi, KEY, options)


def detailed(**counts: Any) -> dict[str, Any]:
    """The detailed answer: these counts, every other one zero."""
    return {
        "ok": True,
        "upload_count": 0,
        "total_leads": 0,
        "already_added_to_campaign": 0,
        "duplicate_count": 0,
        "invalid_email_count": 0,
        "invalid_emails": [],
        "unsubscribed_leads": [],
        "block_count": 0,
        "bounce_count": 0,
        "is_lead_limit_exhausted": False,
        "lead_import_stopped_count": 0,
        **counts,
    }


OK: Reply = (200, {"success": True, "data": {}})
FULL_LEAD = {
    "email": "Ada.Lovelace@Analytical.example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company_name": "Analytical Engines",
    "phone_number": 441234567,
    "website": "https://analytical.example.com",
    "location": "London",
    "linkedin_profile": "https://linkedin.example.com/in/ada",
    "company_url": "analytical.example.com",
    "custom_fields": {"Industry": "Computing", "Employees": 12, "Score": 9.5},
}


# --- uploading and reading back ---------------------------------------------------------------


async def test_an_upload_adds_the_leads_and_they_read_back_in_order_with_ids() -> None:
    body = {"lead_list": [FULL_LEAD, {"email": "grace@navy.example.com", "first_name": "Grace"}]}
    async with serving() as (simulator, api):
        reply = await api("POST", "/campaigns/7/leads", body)
        page = await api.page(7)

    assert reply == (200, detailed(upload_count=2, total_leads=2))
    status, shown = page
    assert status == 200
    assert (shown["total_leads"], shown["offset"], shown["limit"]) == ("2", 0, 100)
    first, second = shown["data"]
    assert first["status"] == second["status"] == "STARTED"
    assert first["lead_category_id"] is None
    assert first["lead"] == {"id": first["lead"]["id"], **FULL_LEAD, "is_unsubscribed": False}
    assert second["lead"] == {
        "id": second["lead"]["id"],
        "email": "grace@navy.example.com",
        **dict.fromkeys(LEAD_FIELDS),
        "first_name": "Grace",
        "custom_fields": {},
        "is_unsubscribed": False,
    }
    assert first["lead"]["id"] != second["lead"]["id"]
    assert first["campaign_lead_map_id"] != second["campaign_lead_map_id"]
    assert simulator.state.leads.addresses(7) == [FULL_LEAD["email"], "grace@navy.example.com"]
    uploads = simulator.state.writes("leads")
    assert [(r.campaign_id, r.leads, r.added, r.applied) for r in uploads] == [(7, 2, 2, True)]
    assert simulator.state.applied == {7: 1}


async def test_ids_are_stable_across_reads_and_campaigns_are_listed_once_they_hold_leads() -> None:
    async with serving() as (_, api):
        before = await api("GET", "/campaigns/")
        await api.upload(3, "a@x.example.com", "b@x.example.com")
        once = await api.page(3)
        again = await api.page(3)
        listed = await api("GET", "/campaigns/")

    assert before[1] == []
    assert once == again
    assert [c["id"] for c in listed[1]] == [3]


async def test_the_counts_form_answers_only_added_and_skipped() -> None:
    async with serving(lead_answer="counts", bounced=["gone@x.example.com"]) as (_, api):
        first = await api.upload(1, "a@x.example.com", "not-an-address", "gone@x.example.com")
        second = await api.upload(1, "A@X.example.com", "b@x.example.com")

    assert first == (200, {"added_count": 1, "skipped_count": 2})
    assert second == (200, {"added_count": 1, "skipped_count": 1})


async def test_total_leads_can_be_the_field_that_counts_the_leads_added() -> None:
    async with serving(lead_added_field="total_leads") as (_, api):
        reply = await api.upload(1, "a@x.example.com", "a@x.example.com", "b@x.example.com")

    assert reply == (200, detailed(upload_count=3, total_leads=2, duplicate_count=1))


# --- the rules, lead by lead -------------------------------------------------------------------


async def test_each_rule_refuses_its_leads_and_the_rest_are_added() -> None:
    config: dict[str, Any] = {
        "block_list": ["blocked@x.example.com", "spam.example.com"],
        "unsubscribed": ["Gone@X.example.com"],
        "bounced": ["bounce@x.example.com"],
    }
    async with serving(**config) as (simulator, api):
        await api.upload(1, "old@x.example.com")
        await api.upload(2, "elsewhere@x.example.com")
        reply = await api.upload(
            1,
            "new@x.example.com",
            "not an address",
            "no-domain@",
            "OLD@x.example.com",
            "new@X.EXAMPLE.COM",
            "blocked@x.example.com",
            "anyone@spam.example.com",
            "gone@x.example.com",
            "bounce@x.example.com",
            "Elsewhere@x.example.com",
            "last@x.example.com",
        )

    assert reply == (
        200,
        detailed(
            upload_count=2,
            total_leads=11,
            already_added_to_campaign=1,
            duplicate_count=2,  # once in this request, once in campaign 2
            invalid_email_count=2,
            invalid_emails=["not an address", "no-domain@"],
            unsubscribed_leads=["gone@x.example.com"],
            block_count=2,
            bounce_count=1,
        ),
    )
    assert simulator.state.leads.addresses(1) == [
        "old@x.example.com",
        "new@x.example.com",
        "last@x.example.com",
    ]
    assert simulator.state.writes("leads")[-1].added == 2


@pytest.mark.parametrize(
    ("setting", "email"),
    [
        ("ignore_global_block_list", "blocked@x.example.com"),
        ("ignore_global_block_list", "who@blocked.example.com"),
        ("ignore_unsubscribe_list", "gone@x.example.com"),
        ("ignore_duplicate_leads_in_other_campaign", "elsewhere@x.example.com"),
    ],
)
async def test_each_setting_lets_its_leads_in(setting: str, email: str) -> None:
    config: dict[str, Any] = {
        "block_list": ["blocked@x.example.com", "@blocked.example.com"],
        "unsubscribed": ["gone@x.example.com"],
    }
    async with serving(**config) as (simulator, api):
        await api.upload(2, "elsewhere@x.example.com")
        refused = await api.upload(1, email)
        added = await api.upload(1, email, **{setting: True})
        bounced = await api.upload(3, "b@x.example.com")

    assert refused[1]["upload_count"] == 0
    assert added == (200, detailed(upload_count=1, total_leads=1))
    assert simulator.state.leads.addresses(1) == [email]
    assert bounced[1]["upload_count"] == 1


async def test_a_lead_in_another_campaign_keeps_its_id_when_let_in() -> None:
    async with serving() as (simulator, api):
        await api.upload(1, "shared@x.example.com")
        skipped = await api.upload(2, "SHARED@x.example.com")
        added = await api.upload(
            2, "SHARED@x.example.com", ignore_duplicate_leads_in_other_campaign=True
        )
        one, two = (await api.page(1))[1]["data"][0], (await api.page(2))[1]["data"][0]

    assert skipped == (200, detailed(total_leads=1, duplicate_count=1))
    assert added[1]["upload_count"] == 1
    assert one["lead"]["id"] == two["lead"]["id"]
    assert one["campaign_lead_map_id"] != two["campaign_lead_map_id"]
    assert two["lead"]["email"] == "shared@x.example.com"  # the lead as first added
    assert simulator.state.leads.held == 2


async def test_a_client_block_list_blocks_only_in_that_clients_campaigns() -> None:
    config: dict[str, Any] = {
        "client_block_lists": {7: ["x.example.com"], 8: ["other@y.example.com"]},
        "block_list": ["everywhere@y.example.com"],
    }
    async with serving(**config) as (simulator, api):
        await api("POST", "/campaigns/1/settings", {"client_id": 7})
        leads = ("a@x.example.com", "other@y.example.com", "everywhere@y.example.com")
        no_client = await api.upload(2, *leads)
        client_seven = await api.upload(1, *leads, ignore_duplicate_leads_in_other_campaign=True)

    assert client_seven == (200, detailed(upload_count=1, total_leads=3, block_count=2))
    assert no_client == (200, detailed(upload_count=2, total_leads=3, block_count=1))
    assert simulator.state.leads.addresses(1) == ["other@y.example.com"]


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("a@x.example.com", True),
        ("  Padded@Example.COM  ", True),
        ("first.last+tag@sub.example.co", True),
        ("", False),
        ("plain", False),
        ("a@b", False),
        ("a@@x.example.com", False),
        ("a b@x.example.com", False),
        (".a@x.example.com", False),
        ("a..b@x.example.com", False),
        ("a@x..example.com", False),
        ("a@-x.example.com", False),
        ("a@x.example.c0m", False),
    ],
)
def test_which_addresses_are_valid(email: str, valid: bool) -> None:
    assert is_address(email) is valid


# --- the request cap and the body -------------------------------------------------------------


@pytest.mark.parametrize(
    ("most", "sent", "status"), [(400, 400, 200), (400, 401, 422), (100, 101, 422)]
)
async def test_an_upload_may_carry_at_most_the_configured_number_of_leads(
    most: int, sent: int, status: int
) -> None:
    emails = [f"lead{n}@x.example.com" for n in range(sent)]
    options = {} if most == 400 else {"leads_per_request": most}
    async with serving(**options) as (simulator, api):
        reply = await api.upload(1, *emails)

    assert reply[0] == status
    if status == 422:
        error = reply[1]["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"] == {"field": "lead_list", "maximum": most, "received": sent}
        assert f"at most {most} leads" in error["message"]
        assert simulator.state.leads.held == 0
    else:
        assert simulator.state.leads.held == sent


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "lead_list"),
        ({"lead_list": {"email": "a@x.example.com"}}, "lead_list"),
        ({"lead_list": "a@x.example.com"}, "lead_list"),
        ({"lead_list": []}, "lead_list"),
        ({"lead_list": [{"email": "a@x.example.com"}], "leads": []}, "leads"),
        ({"lead_list": ["a@x.example.com"]}, "lead_list[0]"),
        ({"lead_list": [{"email": "a@x.example.com"}, {"first_name": "B"}]}, "lead_list[1].email"),
        ({"lead_list": [{"email": None}]}, "lead_list[0].email"),
        ({"lead_list": [{"email": 5}]}, "lead_list[0].email"),
        (
            {"lead_list": [{"email": "a@x.example.com", "first_name": {}}]},
            "lead_list[0].first_name",
        ),
        (
            {"lead_list": [{"email": "a@x.example.com", "phone_number": True}]},
            "lead_list[0].phone_number",
        ),
        (
            {"lead_list": [{"email": "a@x.example.com", "custom_fields": ["x"]}]},
            "lead_list[0].custom_fields",
        ),
        (
            {"lead_list": [{"email": "a@x.example.com", "custom_fields": {"Size": None}}]},
            "lead_list[0].custom_fields.Size",
        ),
        (
            {"lead_list": [{"email": "a@x.example.com", "custom_fields": {"Ok": False}}]},
            "lead_list[0].custom_fields.Ok",
        ),
        ({"lead_list": [{"email": "a@x.example.com"}], "settings": []}, "settings"),
        (
            {
                "lead_list": [{"email": "a@x.example.com"}],
                "settings": {"ignore_unsubscribe_list": 1},
            },
            "settings.ignore_unsubscribe_list",
        ),
    ],
)
async def test_invalid_upload_bodies_are_refused_naming_the_field(body: object, field: str) -> None:
    async with serving() as (simulator, api):
        reply = await api("POST", "/campaigns/1/leads", body)

    assert reply[0] == 422
    error = reply[1]["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["field"] == field
    assert f"'{field}'" in error["message"]
    assert simulator.state.leads.held == 0
    assert [(r.applied, r.leads) for r in simulator.state.writes("leads")] == [(False, 0)]


@pytest.mark.parametrize("raw", [b"not json", b"", b"[]", b'"text"'])
async def test_an_upload_body_that_is_not_a_json_object_is_a_flat_400(raw: bytes) -> None:
    async with serving() as (_, api):
        reply = await api("POST", "/campaigns/1/leads", raw=raw)

    assert reply == (400, {"error": "Invalid JSON body"})


async def test_unknown_lead_fields_and_settings_are_ignored_and_nulls_are_fields_not_sent() -> None:
    lead = {"email": "a@x.example.com", "company": "Acme", "first_name": None, "tags": ["vip"]}
    body = {"lead_list": [lead], "settings": {"return_lead_ids": True}}
    async with serving() as (_, api):
        reply = await api("POST", "/campaigns/1/leads", body)
        shown = (await api.page(1))[1]["data"][0]["lead"]

    assert reply[1]["upload_count"] == 1
    assert "company" not in shown
    assert "tags" not in shown
    assert shown["first_name"] is None
    assert shown["company_name"] is None


# --- the account's lead capacity --------------------------------------------------------------


async def test_the_capacity_stops_an_upload_midway_and_removing_a_lead_frees_room() -> None:
    async with serving(campaigns={1, 2}, seeded_leads={2: 2}, lead_capacity=5) as (sim, api):
        first = await api.upload(1, "a@x.example.com", "b@x.example.com")
        # Room for one more: c goes in, d and e are stopped, a is already there either way.
        second = await api.upload(
            1, "c@x.example.com", "d@x.example.com", "a@x.example.com", "bad", "e@x.example.com"
        )
        full = await api.upload(1, "f@x.example.com")
        lead_id = (await api.lead("b@x.example.com"))["id"]
        removed = await api("DELETE", f"/campaigns/1/leads/{lead_id}")
        after = await api.upload(1, "f@x.example.com", "g@x.example.com")

    assert first[1] == detailed(upload_count=2, total_leads=2)
    assert second[1] == detailed(
        upload_count=1,
        total_leads=5,
        already_added_to_campaign=1,
        invalid_email_count=1,
        invalid_emails=["bad"],
        is_lead_limit_exhausted=True,
        lead_import_stopped_count=2,
    )
    assert full[1] == detailed(
        total_leads=1, is_lead_limit_exhausted=True, lead_import_stopped_count=1
    )
    assert removed == OK
    assert after[1] == detailed(
        upload_count=1, total_leads=2, is_lead_limit_exhausted=True, lead_import_stopped_count=1
    )
    assert sim.state.leads.addresses(1) == ["a@x.example.com", "c@x.example.com", "f@x.example.com"]
    assert sim.state.leads.held == 5
    assert [r.added for r in sim.state.writes("leads")] == [2, 1, 0, 1]


async def test_in_the_counts_form_a_full_account_skips_every_lead() -> None:
    async with serving(lead_answer="counts", lead_capacity=1) as (_, api):
        reply = await api.upload(1, "a@x.example.com", "b@x.example.com")

    assert reply == (200, {"added_count": 1, "skipped_count": 1})


# --- paging -----------------------------------------------------------------------------------


async def test_a_campaigns_leads_come_in_pages_of_at_most_100() -> None:
    emails = [f"lead{n:03}@x.example.com" for n in range(250)]
    async with serving() as (_, api):
        for start in range(0, 250, 100):
            await api.upload(4, *emails[start : start + 100])
        pages = [await api.page(4, f"?offset={offset}&limit=100") for offset in (0, 100, 200)]
        default = await api.page(4)
        small = await api.page(4, "?offset=5&limit=3")
        beyond = await api.page(4, "?offset=300")
        read = await api.emails(4)
        empty = await api.page(5)

    assert [len(p[1]["data"]) for p in pages] == [100, 100, 50]
    assert {p[1]["total_leads"] for p in pages} == {"250"}
    assert [e["lead"]["email"] for e in small[1]["data"]] == emails[5:8]
    assert (small[1]["offset"], small[1]["limit"]) == (5, 3)
    assert default == pages[0]
    assert beyond[1]["data"] == []
    assert read == emails
    assert empty == (200, {"total_leads": "0", "offset": 0, "limit": 100, "data": []})


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?limit=101", "limit must be between 1 and 100, got 101"),
        ("?limit=0", "limit must be between 1 and 100, got 0"),
        ("?limit=ten", "limit must be a whole number >= 0, got 'ten'"),
        ("?offset=-1", "offset must be a whole number >= 0, got '-1'"),
    ],
)
async def test_a_bad_page_is_a_flat_400(query: str, error: str) -> None:
    async with serving() as (_, api):
        reply = await api.page(1, query)

    assert reply == (400, {"error": error})


async def test_a_page_can_be_filtered_by_status() -> None:
    async with serving() as (_, api):
        await api.upload(1, "a@x.example.com", "b@x.example.com", "c@x.example.com")
        lead_id = (await api.lead("b@x.example.com"))["id"]
        await api("POST", f"/campaigns/1/leads/{lead_id}/pause")
        paused = await api.page(1, "?status=PAUSED")
        started = await api.page(1, "?status=STARTED&limit=1")

    assert [e["lead"]["email"] for e in paused[1]["data"]] == ["b@x.example.com"]
    assert paused[1]["total_leads"] == "1"
    assert started[1]["total_leads"] == "2"
    assert [e["lead"]["email"] for e in started[1]["data"]] == ["a@x.example.com"]


# --- finding, removing --------------------------------------------------------------------------


async def test_a_lead_is_found_by_address_in_any_case_with_its_campaigns() -> None:
    async with serving() as (_, api):
        await api.upload(1, "Ada@X.example.com")
        await api.upload(2, "ada@x.example.com", ignore_duplicate_leads_in_other_campaign=True)
        found = await api.lead("ADA@x.example.com")
        unknown = await api("GET", "/leads/?email=nobody@x.example.com")
        unslashed = await api("GET", "/leads?email=ada@x.example.com")
        missing = await api("GET", "/leads/")
        entries = [(await api.page(n))[1]["data"][0] for n in (1, 2)]

    assert found == {
        **entries[0]["lead"],
        "lead_campaign_data": [
            {
                "campaign_id": n,
                "campaign_lead_map_id": entry["campaign_lead_map_id"],
                "status": "STARTED",
                "lead_category_id": None,
            }
            for n, entry in zip((1, 2), entries, strict=True)
        ],
    }
    assert found["email"] == "Ada@X.example.com"
    assert unknown == (200, {})
    assert unslashed[1] == found
    assert missing == (400, {"error": "email is required"})


async def test_removing_a_lead_takes_it_out_of_that_campaign_only() -> None:
    async with serving(campaigns={1, 2, 3}) as (simulator, api):
        await api.upload(1, "a@x.example.com", "b@x.example.com", "c@x.example.com")
        await api.upload(2, "b@x.example.com", ignore_duplicate_leads_in_other_campaign=True)
        b = await api.lead("b@x.example.com")
        removed = await api("DELETE", f"/campaigns/1/leads/{b['id']}")
        again = await api("DELETE", f"/campaigns/1/leads/{b['id']}")
        never = await api("DELETE", f"/campaigns/3/leads/{b['id']}")
        unknown = await api("DELETE", "/campaigns/1/leads/12345")
        not_a_number = await api("DELETE", "/campaigns/1/leads/abc")
        after = await api.page(1)
        found = await api.lead("b@x.example.com")
        readded = await api.upload(
            1, "b@x.example.com", ignore_duplicate_leads_in_other_campaign=True
        )
        order = await api.emails(1)
        entry = (await api.page(1, "?offset=2"))[1]["data"][0]

    assert removed == OK
    assert again == never == (404, {"error": "Lead not found in this campaign"})
    assert unknown == not_a_number == (404, {"error": "Lead not found"})
    assert [e["lead"]["email"] for e in after[1]["data"]] == ["a@x.example.com", "c@x.example.com"]
    assert [c["campaign_id"] for c in found["lead_campaign_data"]] == [2]
    assert readded[1]["upload_count"] == 1
    assert order == ["a@x.example.com", "c@x.example.com", "b@x.example.com"]
    assert entry["lead"]["id"] == b["id"]
    assert entry["campaign_lead_map_id"] != b["lead_campaign_data"][0]["campaign_lead_map_id"]
    assert [r.action for r in simulator.state.writes("lead-status")] == ["remove"] * 5


async def test_a_lead_in_no_campaign_is_still_known_and_no_longer_a_duplicate() -> None:
    async with serving() as (_, api):
        await api.upload(1, "a@x.example.com")
        lead_id = (await api.lead("a@x.example.com"))["id"]
        await api("DELETE", f"/campaigns/1/leads/{lead_id}")
        found = await api.lead("a@x.example.com")
        moved = await api.upload(2, "a@x.example.com")

    assert (found["id"], found["lead_campaign_data"]) == (lead_id, [])
    assert moved[1]["upload_count"] == 1


# --- pause, resume, unsubscribe ----------------------------------------------------------------


async def test_pause_resume_and_unsubscribe_read_back_as_statuses() -> None:
    async with serving() as (simulator, api):
        await api.upload(1, "a@x.example.com", "b@x.example.com")
        a, b = [(await api.lead(e))["id"] for e in ("a@x.example.com", "b@x.example.com")]
        paused = await api("POST", f"/campaigns/1/leads/{a}/pause", {})
        shown_paused = (await api.page(1))[1]["data"][0]["status"]
        resumed = await api(
            "POST", f"/campaigns/1/leads/{a}/resume", {"resume_lead_with_delay_days": 3}
        )
        shown_resumed = (await api.page(1))[1]["data"][0]["status"]
        unsubscribed = await api("POST", f"/campaigns/1/leads/{b}/unsubscribe")
        pause_unsubscribed = await api("POST", f"/campaigns/1/leads/{b}/pause")
        resume_unsubscribed = await api("POST", f"/campaigns/1/leads/{b}/resume")
        statuses = [e["status"] for e in (await api.page(1))[1]["data"]]
        found = await api.lead("b@x.example.com")

    assert paused == resumed == unsubscribed == OK
    assert (shown_paused, shown_resumed) == ("PAUSED", "STARTED")
    assert statuses == ["STARTED", "UNSUBSCRIBED"]
    for reply, verb in ((pause_unsubscribed, "paused"), (resume_unsubscribed, "resumed")):
        assert reply[0] == 422
        assert reply[1]["error"]["code"] == "INVALID_STATE"
        assert reply[1]["error"]["message"] == f"Lead is UNSUBSCRIBED: it cannot be {verb}"
    assert found["is_unsubscribed"] is False  # unsubscribed from campaign 1 only
    actions = [(r.action, r.applied) for r in simulator.state.writes("lead-status")]
    assert actions == [
        ("pause", True),
        ("resume", True),
        ("unsubscribe", True),
        ("pause", False),
        ("resume", False),
    ]


async def test_resuming_a_lead_on_its_last_step_is_a_500_that_says_so() -> None:
    async with serving(last_step_leads=["Last@x.example.com"]) as (simulator, api):
        await api.upload(1, "last@x.example.com", "set@x.example.com", "fine@x.example.com")
        simulator.state.leads.member(1, "SET@x.example.com").last_step = True  # type: ignore[union-attr]
        ids = [(await api.lead(f"{n}@x.example.com"))["id"] for n in ("last", "set", "fine")]
        replies = [await api("POST", f"/campaigns/1/leads/{i}/resume", {}) for i in ids]

    for lead_id, (status, body) in zip(ids[:2], replies[:2], strict=True):
        assert status == 500
        assert body["error"]["message"] == (
            f"Lead {lead_id} is on the last sequence step of campaign 1: it cannot be resumed"
        )
    assert replies[2] == OK
    assert [r.applied for r in simulator.state.writes("lead-status")] == [False, False, True]


@pytest.mark.parametrize(
    ("action", "body", "status", "field"),
    [
        ("resume", {"resume_lead_with_delay_days": -1}, 422, "resume_lead_with_delay_days"),
        ("resume", {"resume_lead_with_delay_days": "2"}, 422, "resume_lead_with_delay_days"),
        ("resume", {"resume_lead_with_delay_days": True}, 422, "resume_lead_with_delay_days"),
        ("resume", {"delay": 2}, 422, "delay"),
        ("pause", {"status": "PAUSED"}, 422, "status"),
        ("unsubscribe", {"everywhere": True}, 422, "everywhere"),
        ("pause", [], 400, None),
        ("resume", "soon", 400, None),
    ],
)
async def test_invalid_lead_action_bodies_are_refused(
    action: str, body: object, status: int, field: str | None
) -> None:
    async with serving() as (simulator, api):
        await api.upload(1, "a@x.example.com")
        lead_id = (await api.lead("a@x.example.com"))["id"]
        reply = await api("POST", f"/campaigns/1/leads/{lead_id}/{action}", body)

    assert reply[0] == status
    if field is None:
        assert reply[1] == {"error": "Invalid JSON body"}
    else:
        assert reply[1]["error"]["details"]["field"] == field
    assert simulator.state.leads.member(1, "a@x.example.com").status == "STARTED"  # type: ignore[union-attr]


async def test_unsubscribing_everywhere_marks_the_lead_and_keeps_it_out_of_new_uploads() -> None:
    async with serving() as (simulator, api):
        await api.upload(1, "a@x.example.com")
        await api.upload(2, "a@x.example.com", ignore_duplicate_leads_in_other_campaign=True)
        lead_id = (await api.lead("a@x.example.com"))["id"]
        reply = await api("POST", f"/leads/{lead_id}/unsubscribe")
        unknown = await api("POST", "/leads/999/unsubscribe")
        found = await api.lead("a@x.example.com")
        refused = await api.upload(
            3, "A@x.example.com", ignore_duplicate_leads_in_other_campaign=True
        )
        let_in = await api.upload(
            3,
            "a@x.example.com",
            ignore_duplicate_leads_in_other_campaign=True,
            ignore_unsubscribe_list=True,
        )

    assert reply == OK
    assert unknown == (404, {"error": "Lead not found"})
    assert found["is_unsubscribed"] is True
    assert [c["status"] for c in found["lead_campaign_data"]] == ["UNSUBSCRIBED"] * 2
    assert refused[1] == detailed(total_leads=1, unsubscribed_leads=["A@x.example.com"])
    assert let_in[1]["upload_count"] == 1
    everywhere = simulator.state.writes("lead-status")[0]
    assert (everywhere.campaign_id, everywhere.action) == (None, "unsubscribe")


# --- seeding --------------------------------------------------------------------------------------


async def test_listed_campaigns_can_start_with_the_same_leads_every_time() -> None:
    options: dict[str, Any] = {"campaigns": {1, 2}, "seeded_leads": 3, "lead_capacity": 6}
    async with serving(**options) as (_, api):
        first = await api.page(1)
        second_campaign = await api.emails(2)
        full = await api.upload(1, "new@x.example.com")
    async with serving(**options) as (_, api):
        again = await api.page(1)

    assert first == again
    assert [e["lead"]["email"] for e in first[1]["data"]] == [seed_lead(1, n)[0] for n in range(3)]
    assert second_campaign == [seed_lead(2, n)[0] for n in range(3)]
    lead = first[1]["data"][0]["lead"]
    email, values, custom = seed_lead(1, 0)
    assert lead == {
        "id": lead["id"],
        "email": email,
        **dict(zip(LEAD_FIELDS, values, strict=True)),
        "custom_fields": custom,
        "is_unsubscribed": False,
    }
    assert {e["status"] for e in first[1]["data"]} <= {"STARTED", "PAUSED"}
    assert full[1]["is_lead_limit_exhausted"] is True  # seeded leads count toward the capacity


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seeded_leads": 5}, "needs the campaigns listed"),
        ({"seeded_leads": -1, "campaigns": {1}}, "seeded_leads must be >= 0"),
        ({"seeded_leads": {2: 5}, "campaigns": {1}}, "campaign 2, which does not exist"),
        ({"seeded_leads": {1: -5}}, "seeded_leads of campaign 1"),
        ({"lead_answer": "short"}, "lead_answer must be one of detailed, counts"),
        ({"lead_added_field": "added"}, "lead_added_field must be one of"),
        ({"leads_per_request": 0}, "leads_per_request must be >= 1"),
        ({"lead_capacity": -1}, "lead_capacity must be >= 0"),
    ],
)
def test_impossible_lead_configurations_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(api_key=KEY, **options)


# --- shared behaviour: key, 404, rate budget, faults ---------------------------------------------


LEAD_ROUTES: list[tuple[str, str, object]] = [
    ("POST", "/campaigns/{c}/leads", {"lead_list": [{"email": "n@x.example.com"}]}),
    ("GET", "/campaigns/{c}/leads", None),
    ("POST", "/campaigns/{c}/leads/{l}/pause", None),
    ("POST", "/campaigns/{c}/leads/{l}/resume", {"resume_lead_with_delay_days": 0}),
    ("POST", "/campaigns/{c}/leads/{l}/unsubscribe", None),
    ("DELETE", "/campaigns/{c}/leads/{l}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), LEAD_ROUTES)
async def test_every_lead_route_checks_the_key_and_the_campaign(
    method: str, path: str, body: object
) -> None:
    async with serving(campaigns={1}, seeded_leads=1) as (simulator, api):
        lead_id = (await api.lead(seed_lead(1, 0)[0]))["id"]
        missing = await api(method, path.format(c=2, l=lead_id), body)
        not_a_number = await api(method, path.format(c="x", l=lead_id), body)
        wrong_key = await api(method, path.format(c=1, l=lead_id), body, key="nope")
        fine = await api(method, path.format(c=1, l=lead_id), body)

    assert missing == not_a_number == (404, {"error": "Campaign not found"})
    assert wrong_key == (401, {"message": "Invalid API Key"})
    assert fine[0] == 200
    assert [r.campaign_id for r in simulator.state.requests[1:]] == [2, None, 1, 1]
    assert all(KEY not in r.path for r in simulator.state.requests)


async def test_the_search_and_the_account_wide_unsubscribe_check_the_key() -> None:
    async with serving(campaigns={1}, seeded_leads=1) as (simulator, api):
        email = seed_lead(1, 0)[0]
        search = await api("GET", f"/leads/?email={email}", key="nope")
        unsubscribe = await api("POST", "/leads/1/unsubscribe", key="nope")
        lead = simulator.state.leads.find(email)

    assert search == unsubscribe == (401, {"message": "Invalid API Key"})
    assert lead is not None
    assert lead.is_unsubscribed is False


async def test_lead_routes_share_the_rate_budget_of_the_key() -> None:
    async with serving(rates=(Rate(3, 60),)) as (simulator, api):
        replies = [
            await api.upload(1, "a@x.example.com"),
            await api.page(1),
            await api("GET", "/leads/?email=a@x.example.com"),
            await api.upload(1, "b@x.example.com"),
            await api("POST", "/campaigns/1/settings", {"sending_limit": 5}),
        ]

    assert [status for status, _ in replies] == [200, 200, 200, 429, 429]
    assert simulator.state.leads.addresses(1) == ["a@x.example.com"]


async def test_a_campaigns_fault_script_runs_across_its_lead_writes_too() -> None:
    faults = FaultPlan(scripted={5: ["503", "ok", "500", "429", "ok", "drop"]})
    async with serving(faults=faults) as (simulator, api):
        failed = await api.upload(5, "a@x.example.com")
        added = await api.upload(5, "a@x.example.com")
        page = await api.page(5)  # reads draw no fault
        lead_id = (await api.lead("a@x.example.com"))["id"]
        pause_failed = await api("POST", f"/campaigns/5/leads/{lead_id}/pause")
        settings_limited = await api("POST", "/campaigns/5/settings", {"sending_limit": 1})
        paused = await api("POST", f"/campaigns/5/leads/{lead_id}/pause")
        with pytest.raises(aiohttp.ClientConnectionError):
            await api.upload(5, "b@x.example.com")

    assert failed[0] == 503
    assert added[1]["upload_count"] == 1
    assert page[0] == 200
    assert pause_failed[0] == 500
    assert settings_limited[0] == 429
    assert paused == OK
    writes = simulator.state.writes()
    assert [(r.operation, r.fault, r.applied, r.added) for r in writes] == [
        ("leads", "503", False, 0),
        ("leads", None, True, 1),
        ("lead-status", "500", False, 0),
        ("settings", "429", False, 0),
        ("lead-status", None, True, 0),
        ("leads", "drop", False, 0),
    ]
    assert simulator.state.leads.addresses(5) == ["a@x.example.com"]
    assert simulator.state.leads.member(5, "a@x.example.com").status == "PAUSED"  # type: ignore[union-attr]


@pytest.mark.parametrize("applies", [False, True])
async def test_a_slow_upload_may_still_add_its_leads(applies: bool) -> None:
    faults = FaultPlan(scripted={5: ["slow"]}, slow_seconds=0.01, slow_applies=applies)
    async with serving(faults=faults) as (simulator, api):
        reply = await api.upload(5, "a@x.example.com")

    assert reply[0] == (200 if applies else 504)
    assert simulator.state.leads.addresses(5) == (["a@x.example.com"] if applies else [])


async def test_probabilistic_faults_reach_the_account_wide_unsubscribe() -> None:
    faults = FaultPlan(probabilities={"503": 1.0})
    async with serving(campaigns={1}, seeded_leads=1, faults=faults) as (simulator, api):
        lead_id = (await api.lead(seed_lead(1, 0)[0]))["id"]
        reply = await api("POST", f"/leads/{lead_id}/unsubscribe")

    assert reply[0] == 503
    assert simulator.state.leads.by_id(lead_id).is_unsubscribed is False  # type: ignore[union-attr]


# --- recording and scale --------------------------------------------------------------------------


async def test_the_summary_counts_the_leads_uploaded() -> None:
    async with serving() as (simulator, api):
        await api.upload(1, "a@x.example.com", "b@x.example.com")
        await api.upload(1, "a@x.example.com")

    lines = simulator.state.summary([])
    assert "lead uploads: 2 requests carrying 3 leads, 2 added; the account holds 2" in lines


def test_ten_thousand_leads_go_into_twenty_campaigns_by_address_lookups() -> None:
    """The benchmark's load, a tenth of it, applied without HTTP: every lead is judged by dict
    lookups, so the account ends up holding exactly what was sent, and reads back in order."""
    config = SimulatorConfig(api_key=KEY, campaigns=range(1, 21))
    state = SimulatorState()
    leads = Leads(config, state, Campaigns(config, state))
    for request in range(100):
        campaign_id = 1 + request % 20
        lead_list = [{"email": f"lead{request * 100 + n}@x.example.com"} for n in range(100)]
        answer = leads.upload(campaign_id, {"lead_list": lead_list})
        assert isinstance(answer, Accepted)
        assert answer.added == 100

    assert state.leads.held == len(state.leads.by_address) == 10_000
    assert [len(state.leads.campaign(c)) for c in range(1, 21)] == [500] * 20
    assert state.leads.addresses(20)[:2] == ["lead1900@x.example.com", "lead1901@x.example.com"]
    page = leads.page(20, {"offset": "400", "limit": "100"})
    assert isinstance(page, dict)
    assert page["data"][-1]["lead"]["email"] == "lead9999@x.example.com"
