"""Satisfaction survey campaigns (both databases): an admin sends a campaign to a segment, every contact of its
customers gets its own link (signed, expiring, single use: crm_common.links, the complaint survey's mechanism) by
SatisfactionSurveyInvited in its language; the link is answered without signing in (the overall score and the seeds'
factors); SatisfactionSurveyAnswered feeds scoring; the answers count in the KPI satisfaction; bad input is a problem."""

import datetime as dt
import uuid
from urllib.parse import parse_qs, urlsplit

from crm_common import links
from crm_profile.accounts.models import SurveyInvitation
from crm_profile.settings import ProfileSettings
from profile_support import full_body, outbox_events
from test_kpis import as_actor

BOSS = as_actor("boss", "admin")


def _link(event) -> tuple[str, str]:
    url = urlsplit(event.payload["survey_url"])
    return url.path.rsplit("/", 1)[1], parse_qs(url.query)["token"][0]


async def _customer(profile, manager: str, region: str, contacts: list[dict]) -> str:
    body = full_body(account_manager=manager, region=region)
    body["contacts"] = [{**body["contacts"][0], **contact} for contact in contacts]
    for i, contact in enumerate(body["contacts"]):  # each contact its own phone and email
        contact["phone"], contact["email"] = f"+86139{uuid.uuid4().int % 10**8:08d}", f"c{i}.{uuid.uuid4().hex[:8]}@example.com"
    response = await profile.client.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_a_campaign_to_a_segment_each_contact_answers_its_link_once(profile):
    region, am = f"Region {uuid.uuid4().hex[:8]}", f"am-{uuid.uuid4().hex[:6]}"
    first = await _customer(profile, am, region, [{"name": "Zhao", "language": "zh-CN"}, {"name": "Ann", "language": "en"}])
    second = await _customer(profile, am, region, [{"name": "Qian", "language": "zh-CN"}])
    elsewhere = await _customer(profile, am, f"Other {region}", [{"name": "Sun", "language": "zh-CN"}])

    campaign = {"name": "2026 年度满意度调查", "segment": {"region": [region]}}
    assert (
        await profile.client.post("/account-manager/survey-campaigns", json=campaign, headers=as_actor(am, "account_manager"))
    ).status_code == 403
    for bad in (
        {**campaign, "factors": ["weather"]},
        {**campaign, "name": ""},
        {**campaign, "segment": {"tier": ["gold"]}},
        {**campaign, "segment": {"region": [f"Nowhere {region}"]}},  # nobody to ask
        {**campaign, "valid_days": 0},
        {**campaign, "segment": {"region": [region], "key_accounts_only": "no"}},  # not a boolean
        {**campaign, "extra": 1},
    ):
        refused = await profile.client.post("/account-manager/survey-campaigns", json=bad, headers=BOSS)
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json"), (bad, refused.text)
    sent = await profile.client.post("/account-manager/survey-campaigns", json=campaign, headers=BOSS)
    assert sent.status_code == 201, sent.text
    assert (sent.json()["invited"], sent.json()["answered"], sent.json()["factors"]) == (
        3,
        0,
        ["on_time", "damage", "price", "staff", "complaint_handling"],
    )
    invited = {cid: await outbox_events(profile.db, key=cid, type_="SatisfactionSurveyInvited") for cid in (first, second, elsewhere)}
    assert (len(invited[first]), len(invited[second]), invited[elsewhere]) == (2, 1, [])
    assert sorted(e.payload["language"] for e in invited[first]) == ["en", "zh-CN"]
    zh = next(e for e in invited[first] if e.payload["language"] == "zh-CN")
    en = next(e for e in invited[first] if e.payload["language"] == "en")
    zh_id, zh_token = _link(zh)
    en_id, en_token = _link(en)

    page = await profile.client.get(f"/satisfaction-survey-links/{en_id}", params={"token": en_token})
    assert page.status_code == 200, page.text
    assert (page.json()["campaign_name"], page.json()["language"], page.json()["answered"]) == ("2026 年度满意度调查", "en", False)
    assert "customer" not in page.text and "Ann" not in page.text  # the page shows nobody's data
    edited = en_token[:-1] + ("1" if en_token.endswith("0") else "0")
    for token, status in ((zh_token, 403), (edited, 403), ("", 422), ("123.abc", 403)):  # another link's token, edited
        assert (await profile.client.get(f"/satisfaction-survey-links/{en_id}", params={"token": token})).status_code == status
    assert (await profile.client.get("/satisfaction-survey-links/nope", params={"token": en_token})).status_code == 403

    async with profile.db.sessions() as session:
        nonce = (await session.get(SurveyInvitation, en_id)).nonce
    past = links.sign(ProfileSettings().survey_secret.get_secret_value(), en_id, nonce, expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    expired = await profile.client.post(f"/satisfaction-survey-links/{en_id}", json={"token": past, "score": 4})
    assert expired.status_code == 410 and expired.headers["content-type"].startswith("application/problem+json")
    for bad in ({"token": en_token, "score": 6}, {"token": en_token, "score": 4, "factors": {"price": 0}}, {"token": en_token}):
        assert (await profile.client.post(f"/satisfaction-survey-links/{en_id}", json=bad)).status_code == 422
    assert await outbox_events(profile.db, key=first, type_="SatisfactionSurveyAnswered") == []  # refusals stored nothing

    answered = await profile.client.post(
        f"/satisfaction-survey-links/{en_id}", json={"token": en_token, "score": 4, "factors": {"on_time": 5, "price": 2}, "comment": "ok"}
    )
    assert answered.status_code == 200 and answered.json()["factors"] == {"on_time": 5, "price": 2}, answered.text
    again = await profile.client.post(f"/satisfaction-survey-links/{en_id}", json={"token": en_token, "score": 1})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")  # single use
    assert (await profile.client.get(f"/satisfaction-survey-links/{en_id}", params={"token": en_token})).json()["answered"] is True
    assert (await profile.client.post(f"/satisfaction-survey-links/{zh_id}", json={"token": zh_token, "score": 2})).status_code == 200
    [event, _] = await outbox_events(profile.db, key=first, type_="SatisfactionSurveyAnswered")
    assert (event.payload["source"], event.payload["score"], event.payload["factors"], event.payload["survey_id"]) == (
        "campaign",
        4,
        {"on_time": 5, "price": 2},
        en_id,
    )

    listed = (await profile.client.get("/account-manager/survey-campaigns", headers=as_actor(am, "account_manager"))).json()
    mine = next(c for c in listed if c["id"] == sent.json()["id"])
    assert (mine["invited"], mine["answered"], mine["average_score"]) == (3, 2, 3.0)
    month = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    [row] = (await profile.client.get("/account-manager/kpis", params={"period": month}, headers=as_actor(am, "account_manager"))).json()[
        "items"
    ]
    assert (row["satisfaction_surveys"], row["satisfaction"]) == (2, 3.0)  # the campaign's answers count


async def test_a_factor_the_campaign_did_not_ask_is_refused(profile):
    region = f"Region {uuid.uuid4().hex[:8]}"
    customer = await _customer(profile, "am-factor", region, [{"name": "Li", "language": "zh-CN"}])
    sent = await profile.client.post(
        "/account-manager/survey-campaigns",
        json={"name": "on time only", "segment": {"region": [region]}, "factors": ["on_time"]},
        headers=BOSS,
    )
    assert sent.status_code == 201, sent.text
    [invite] = await outbox_events(profile.db, key=customer, type_="SatisfactionSurveyInvited")
    invitation_id, token = _link(invite)
    refused = await profile.client.post(
        f"/satisfaction-survey-links/{invitation_id}", json={"token": token, "score": 3, "factors": {"price": 3}}
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"] == ["body", "factors", "price"]
    ok = await profile.client.post(
        f"/satisfaction-survey-links/{invitation_id}", json={"token": token, "score": 3, "factors": {"on_time": 3}}
    )
    assert ok.status_code == 200, ok.text
