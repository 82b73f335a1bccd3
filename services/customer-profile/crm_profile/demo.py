"""Demo customers for `make run`: ~30 Chinese and English-speaking shippers created through the HTTP API.

`await seed("http://127.0.0.1:8001")` returns the customers as the API shows them (ids included); the
other services' demos use these ids. Seeding twice is harmless: a customer that already exists (same
tax id, phone or email -> 409) is read back instead of created again. Contract ends are relative to
today, so a few contracts are always about to run out (renewal reminders have something to do).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json

import httpx

from crm_common.edge import caller_auth
from crm_profile.settings import ProfileSettings

AMS = ["am-zhang", "am-li", "am-wang", "am-chen"]

# name, short name, type, industry, size band, region, status, services, tags, contract days left (None: no
# contract), credit limit, payment days, contacts [(name, role, phone, email, language, timezone, channel, consent)]
CUSTOMERS: list[dict] = [
    dict(
        name="华信电子科技(深圳)有限公司",
        short="华信电子",
        industry="electronics",
        size="large",
        region="South China",
        status="active",
        services=["warehousing", "express"],
        tags=["key-account", "vip"],
        days=20,
        credit=2_000_000,
        pay=60,
        address=("pickup", "深圳市宝安区福永街道凤凰工业区8栋", "Shenzhen", "Guangdong", 22.67, 113.82),
        contacts=[
            ("陈伟", "物流经理", "13800138001", "chen.wei@huaxin-electronics.example.cn", "zh-CN", "Asia/Shanghai", "sms", True),
            ("刘芳", "财务主管", "13800138002", "liu.fang@huaxin-electronics.example.cn", "zh-CN", "Asia/Shanghai", "email", False),
        ],
    ),
    dict(
        name="上海美家家居用品有限公司",
        short="美家家居",
        industry="furniture",
        size="medium",
        region="East China",
        status="active",
        services=["warehousing", "distribution"],
        tags=["key-account"],
        days=45,
        credit=800_000,
        pay=45,
        address=("delivery", "上海市闵行区莘庄工业区申富路99号", "Shanghai", "Shanghai", 31.11, 121.38),
        contacts=[("王磊", "供应链总监", "13916200003", "wang.lei@meijia-home.example.cn", "zh-CN", "Asia/Shanghai", "phone", True)],
    ),
    dict(
        name="杭州鲜果汇农产品有限公司",
        short="鲜果汇",
        industry="fresh food",
        size="small",
        region="East China",
        status="active",
        services=["cold_chain", "distribution"],
        tags=["cold-chain", "seasonal"],
        days=10,
        credit=150_000,
        pay=30,
        address=("pickup", "杭州市余杭区良渚街道冷链园3号库", "Hangzhou", "Zhejiang", 30.37, 120.03),
        contacts=[("赵敏", "采购经理", "13758100004", "zhao.min@xianguohui.example.cn", "zh-CN", "Asia/Shanghai", "sms", True)],
    ),
    dict(
        name="北京康泰医药物流有限公司",
        short="康泰医药",
        industry="pharmaceuticals",
        size="large",
        region="North China",
        status="active",
        services=["cold_chain", "warehousing", "trunk_transport"],
        tags=["key-account", "gsp"],
        days=200,
        credit=3_000_000,
        pay=60,
        address=("pickup", "北京市大兴区生物医药基地天富街6号", "Beijing", "Beijing", 39.68, 116.33),
        contacts=[
            ("孙丽", "质量负责人", "13601100005", "sun.li@kangtai-pharma.example.cn", "zh-CN", "Asia/Shanghai", "email", False),
            ("周强", "运输主管", "13601100006", "zhou.qiang@kangtai-pharma.example.cn", "zh-CN", "Asia/Shanghai", "phone", False),
        ],
    ),
    dict(
        name="广州潮流服饰有限公司",
        short="潮流服饰",
        industry="apparel",
        size="medium",
        region="South China",
        status="active",
        services=["express", "warehousing"],
        tags=["e-commerce", "price-sensitive"],
        days=120,
        credit=300_000,
        pay=30,
        address=("pickup", "广州市白云区太和镇电商产业园A座", "Guangzhou", "Guangdong", 23.33, 113.35),
        contacts=[("黄小燕", "电商运营", "13922200007", "huang.xiaoyan@chaoliu-fashion.example.cn", "zh-CN", "Asia/Shanghai", "sms", True)],
    ),
    dict(
        name="重庆长江汽车零部件有限公司",
        short="长江汽配",
        industry="automotive parts",
        size="large",
        region="Southwest",
        status="active",
        services=["trunk_transport", "warehousing"],
        tags=["jit", "key-account"],
        days=300,
        credit=1_500_000,
        pay=90,
        address=("pickup", "重庆市两江新区鱼复工业园18号", "Chongqing", "Chongqing", 29.65, 106.75),
        contacts=[("吴刚", "物流部长", "13883300008", "wu.gang@cj-autoparts.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)],
    ),
    dict(
        name="成都川味食品有限公司",
        short="川味食品",
        industry="FMCG",
        size="medium",
        region="Southwest",
        status="active",
        services=["distribution", "trunk_transport"],
        tags=["fmcg"],
        days=25,
        credit=400_000,
        pay=45,
        address=("pickup", "成都市新都区食品工业园12号", "Chengdu", "Sichuan", 30.82, 104.16),
        contacts=[("郑洁", "销售物流经理", "13980800009", "zheng.jie@chuanwei-food.example.cn", "zh-CN", "Asia/Shanghai", "sms", True)],
    ),
    dict(
        name="武汉光谷光电有限公司",
        short="光谷光电",
        industry="electronics",
        size="medium",
        region="Central China",
        status="dormant",
        services=["express"],
        tags=["at-risk"],
        days=-30,
        credit=200_000,
        pay=30,
        address=("pickup", "武汉市东湖高新区光谷大道77号", "Wuhan", "Hubei", 30.48, 114.41),
        contacts=[("何军", "采购", "13871100010", "he.jun@ggoptics.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)],
    ),
    dict(
        name="沈阳北方重工机械有限公司",
        short="北方重工",
        industry="machinery",
        size="large",
        region="Northeast",
        status="active",
        services=["trunk_transport"],
        tags=["oversize"],
        days=400,
        credit=2_500_000,
        pay=90,
        address=("pickup", "沈阳市铁西区北一路15号", "Shenyang", "Liaoning", 41.80, 123.36),
        contacts=[("冯涛", "发运主管", "13940100011", "feng.tao@beifang-heavy.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)],
    ),
    dict(
        name="苏州精工精密制造有限公司",
        short="苏州精工",
        industry="manufacturing",
        size="medium",
        region="East China",
        status="active",
        services=["warehousing", "trunk_transport"],
        tags=["key-account"],
        days=75,
        credit=600_000,
        pay=60,
        address=("pickup", "苏州工业园区星湖街328号", "Suzhou", "Jiangsu", 31.31, 120.72),
        contacts=[("许静", "计划经理", "13912700012", "xu.jing@sz-precision.example.cn", "zh-CN", "Asia/Shanghai", "email", True)],
    ),
    dict(
        name="青岛海洋水产有限公司",
        short="海洋水产",
        industry="fresh food",
        size="small",
        region="North China",
        status="active",
        services=["cold_chain"],
        tags=["cold-chain"],
        days=15,
        credit=100_000,
        pay=15,
        address=("pickup", "青岛市黄岛区渔港路5号冷库", "Qingdao", "Shandong", 35.96, 120.18),
        contacts=[("于海", "总经理", "13864200013", "yu.hai@haiyang-seafood.example.cn", "zh-CN", "Asia/Shanghai", "sms", False)],
    ),
    dict(
        name="义乌小商品国际贸易有限公司",
        short="义乌小商品",
        industry="retail",
        size="medium",
        region="East China",
        status="active",
        services=["express", "distribution"],
        tags=["cross-border", "price-sensitive"],
        days=160,
        credit=250_000,
        pay=30,
        address=("pickup", "义乌市福田街道国际商贸城四区", "Yiwu", "Zhejiang", 29.33, 120.10),
        contacts=[("楼晓东", "外贸经理", "13757900014", "lou.xiaodong@yiwu-trade.example.cn", "zh-CN", "Asia/Shanghai", "email", True)],
    ),
    dict(
        name="郑州中原粮油有限公司",
        short="中原粮油",
        industry="FMCG",
        size="large",
        region="Central China",
        status="active",
        services=["trunk_transport", "warehousing", "distribution"],
        tags=["fmcg", "key-account"],
        days=95,
        credit=1_200_000,
        pay=45,
        address=("pickup", "郑州市经开区第八大街21号", "Zhengzhou", "Henan", 34.70, 113.78),
        contacts=[("常红", "储运经理", "13838100015", "chang.hong@zhongyuan-grain.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)],
    ),
    dict(
        name="厦门鹭岛茶业有限公司",
        short="鹭岛茶业",
        industry="FMCG",
        size="small",
        region="South China",
        status="prospect",
        services=[],
        tags=["lead"],
        days=None,
        credit=None,
        pay=None,
        address=None,
        contacts=[("林晓梅", "老板", "13806000016", "lin.xiaomei@ludao-tea.example.cn", "zh-CN", "Asia/Shanghai", "sms", False)],
    ),
    dict(
        name="天津港联化工有限公司",
        short="港联化工",
        industry="chemicals",
        size="large",
        region="North China",
        status="lost",
        services=["trunk_transport"],
        tags=["hazmat", "lost-2025"],
        days=-200,
        credit=500_000,
        pay=60,
        address=("pickup", "天津市滨海新区南港工业区化工路9号", "Tianjin", "Tianjin", 38.78, 117.55),
        contacts=[("马建国", "物流主管", "13920200017", "ma.jianguo@ganglian-chem.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)],
    ),
    dict(
        name="南京金陵医疗器械有限公司",
        short="金陵医疗",
        industry="medical devices",
        size="medium",
        region="East China",
        status="active",
        services=["warehousing", "express"],
        tags=["gsp"],
        days=28,
        credit=700_000,
        pay=45,
        address=("pickup", "南京市江宁区科学园竹山路68号", "Nanjing", "Jiangsu", 31.92, 118.87),
        contacts=[("钱琳", "运营经理", "13951700018", "qian.lin@jinling-med.example.cn", "zh-CN", "Asia/Shanghai", "email", True)],
    ),
    dict(
        name="Pacific Home Goods Inc.",
        short="Pacific Home",
        industry="retail",
        size="large",
        region="Overseas",
        status="active",
        services=["warehousing", "trunk_transport", "distribution"],
        tags=["key-account", "cross-border", "vip"],
        days=18,
        credit=2_000_000,
        pay=60,
        address=("delivery", "2100 E Carson St, Long Beach, CA", "Long Beach", "California", 33.83, -118.19),
        contacts=[
            (
                "Emily Carter",
                "Director of Logistics",
                "+1 415 555 0101",
                "emily.carter@pacifichome.example.com",
                "en",
                "America/Los_Angeles",
                "email",
                True,
            ),
            (
                "Daniel Brooks",
                "Import Coordinator",
                "+1 415 555 0102",
                "daniel.brooks@pacifichome.example.com",
                "en",
                "America/Los_Angeles",
                "email",
                False,
            ),
        ],
    ),
    dict(
        name="Northwind Outdoor Gear Ltd.",
        short="Northwind",
        industry="apparel",
        size="medium",
        region="Overseas",
        status="active",
        services=["warehousing", "express"],
        tags=["cross-border", "e-commerce"],
        days=55,
        credit=500_000,
        pay=45,
        address=("delivery", "Unit 4, Trafford Park, Manchester", "Manchester", "England", 53.46, -2.32),
        contacts=[
            (
                "Oliver Hughes",
                "Supply Chain Manager",
                "+44 20 7946 0103",
                "oliver.hughes@northwind-gear.example.co.uk",
                "en",
                "Europe/London",
                "email",
                True,
            )
        ],
    ),
    dict(
        name="Lion City Electronics Pte. Ltd.",
        short="Lion City",
        industry="electronics",
        size="medium",
        region="Overseas",
        status="active",
        services=["express", "warehousing"],
        tags=["cross-border"],
        days=140,
        credit=900_000,
        pay=30,
        address=("delivery", "18 Tai Seng Street, Singapore", "Singapore", "Singapore", 1.34, 103.89),
        contacts=[
            (
                "Rachel Tan",
                "Procurement Lead",
                "+65 6123 4104",
                "rachel.tan@lioncity-elec.example.sg",
                "en",
                "Asia/Singapore",
                "email",
                False,
            )
        ],
    ),
    dict(
        name="Rhine Precision Tools GmbH",
        short="Rhine Tools",
        industry="machinery",
        size="large",
        region="Overseas",
        status="active",
        services=["trunk_transport", "warehousing"],
        tags=["key-account"],
        days=260,
        credit=1_800_000,
        pay=60,
        address=("delivery", "Industriestrasse 12, Duisburg", "Duisburg", "NRW", 51.43, 6.76),
        contacts=[
            (
                "Lukas Schneider",
                "Head of Logistics",
                "+49 30 9018 2105",
                "lukas.schneider@rhine-tools.example.de",
                "en",
                "Europe/Berlin",
                "email",
                True,
            )
        ],
    ),
    dict(
        name="Maple Leaf Organics Corp.",
        short="Maple Leaf",
        industry="fresh food",
        size="small",
        region="Overseas",
        status="prospect",
        services=[],
        tags=["lead", "cold-chain"],
        days=None,
        credit=None,
        pay=None,
        address=None,
        contacts=[
            (
                "Sophie Martin",
                "Export Manager",
                "+1 604 555 0106",
                "sophie.martin@mapleleaf-organics.example.ca",
                "en",
                "America/Vancouver",
                "email",
                False,
            )
        ],
    ),
    dict(
        name="Harbor Auto Parts LLC",
        short="Harbor Auto",
        industry="automotive parts",
        size="medium",
        region="Overseas",
        status="dormant",
        services=["trunk_transport"],
        tags=["at-risk"],
        days=-60,
        credit=300_000,
        pay=45,
        address=("delivery", "500 Port Ave, Savannah, GA", "Savannah", "Georgia", 32.08, -81.09),
        contacts=[
            (
                "Michael Reed",
                "Purchasing Manager",
                "+1 912 555 0107",
                "michael.reed@harborauto.example.com",
                "en",
                "America/New_York",
                "phone",
                False,
            )
        ],
    ),
    dict(
        name="Kiwi Dairy Exports Ltd.",
        short="Kiwi Dairy",
        industry="fresh food",
        size="medium",
        region="Overseas",
        status="active",
        services=["cold_chain", "trunk_transport"],
        tags=["cold-chain", "cross-border"],
        days=12,
        credit=650_000,
        pay=30,
        address=("delivery", "Waigaoqiao Bonded Zone, Shanghai", "Shanghai", "Shanghai", 31.35, 121.60),
        contacts=[
            (
                "James Wilson",
                "Logistics Manager",
                "+64 9 555 0108",
                "james.wilson@kiwidairy.example.nz",
                "en",
                "Pacific/Auckland",
                "email",
                True,
            ),
            ("张悦", "中国区协调", "13816500019", "zhang.yue@kiwidairy.example.nz", "zh-CN", "Asia/Shanghai", "sms", True),
        ],
    ),
    dict(
        name="深圳速达跨境电商有限公司",
        short="速达跨境",
        industry="e-commerce",
        size="medium",
        region="South China",
        status="active",
        services=["express", "warehousing"],
        tags=["e-commerce", "cross-border"],
        days=35,
        credit=350_000,
        pay=15,
        address=("pickup", "深圳市龙岗区平湖物流园B区", "Shenzhen", "Guangdong", 22.69, 114.12),
        contacts=[
            ("罗浩", "运营总监", "13798700020", "luo.hao@suda-ecom.example.cn", "zh-CN", "Asia/Shanghai", "sms", True),
            (
                "Grace Lin",
                "Overseas Account Manager",
                "13798700021",
                "grace.lin@suda-ecom.example.cn",
                "en",
                "Asia/Shanghai",
                "email",
                True,
            ),
        ],
    ),
    dict(
        name="宁波港城家电有限公司",
        short="港城家电",
        industry="home appliances",
        size="large",
        region="East China",
        status="active",
        services=["warehousing", "distribution", "trunk_transport"],
        tags=["key-account"],
        days=180,
        credit=1_600_000,
        pay=60,
        address=("pickup", "宁波市北仑区小港工业区长江路3号", "Ningbo", "Zhejiang", 29.92, 121.72),
        contacts=[
            ("邵明", "储运部经理", "13805800022", "shao.ming@gangcheng-appliance.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)
        ],
    ),
    dict(
        name="西安丝路文创有限公司",
        short="丝路文创",
        industry="retail",
        size="micro",
        region="Northwest",
        status="active",
        services=["express"],
        tags=["price-sensitive"],
        days=70,
        credit=50_000,
        pay=15,
        address=("pickup", "西安市雁塔区曲江文创中心2号楼", "Xi'an", "Shaanxi", 34.20, 108.98),
        contacts=[("田甜", "店长", "13991900023", "tian.tian@silu-culture.example.cn", "zh-CN", "Asia/Shanghai", "sms", True)],
    ),
    dict(
        name="昆明云花鲜切花有限公司",
        short="云花",
        industry="fresh food",
        size="small",
        region="Southwest",
        status="active",
        services=["cold_chain", "express"],
        tags=["cold-chain", "seasonal"],
        days=22,
        credit=120_000,
        pay=15,
        address=("pickup", "昆明市呈贡区斗南花卉市场冷库", "Kunming", "Yunnan", 24.90, 102.80),
        contacts=[("段云", "发货主管", "13908800024", "duan.yun@yunhua-flowers.example.cn", "zh-CN", "Asia/Shanghai", "sms", False)],
    ),
    dict(
        name="长沙湘江工程机械有限公司",
        short="湘江机械",
        industry="machinery",
        size="large",
        region="Central China",
        status="blacklisted",
        services=["trunk_transport"],
        tags=["overdue", "dispute"],
        days=-10,
        credit=0,
        pay=0,
        address=("pickup", "长沙市经开区星沙大道101号", "Changsha", "Hunan", 28.24, 113.08),
        contacts=[
            ("邓刚", "采购经理", "13807300025", "deng.gang@xiangjiang-machinery.example.cn", "zh-CN", "Asia/Shanghai", "phone", False)
        ],
    ),
    dict(
        name="张小红",
        short=None,
        type="individual",
        industry="e-commerce",
        size="micro",
        region="East China",
        status="active",
        services=["express"],
        tags=["taobao-seller"],
        days=None,
        credit=None,
        pay=None,
        address=("pickup", "杭州市滨江区长河街道春波小区", "Hangzhou", "Zhejiang", 30.19, 120.20),
        contacts=[("张小红", "店主", "13967100026", "zhang.xiaohong@mail.example.cn", "zh-CN", "Asia/Shanghai", "sms", True)],
    ),
    dict(
        name="Tom Becker",
        short=None,
        type="individual",
        industry="e-commerce",
        size="micro",
        region="Overseas",
        status="prospect",
        services=[],
        tags=["lead"],
        days=None,
        credit=None,
        pay=None,
        address=None,
        contacts=[("Tom Becker", "Owner", "+44 7911 123127", "tom.becker@mail.example.co.uk", "en", "Europe/London", "email", False)],
    ),
]


def tax_id_for(index: int, overseas: bool) -> str:
    return f"GB{900000000 + index * 1013}" if overseas else f"91{310000 + index * 37:06d}MA{index:04d}X{index % 10}"


def demo_bodies(today: dt.date | None = None) -> list[dict]:
    today = today or dt.date.today()
    bodies = []
    for index, spec in enumerate(CUSTOMERS, start=1):
        overseas = spec["region"] == "Overseas"
        individual = spec.get("type") == "individual"
        body: dict = {
            "name": spec["name"],
            "short_name": spec["short"],
            "customer_type": spec.get("type", "enterprise"),
            "industry": spec["industry"],
            "size_band": spec["size"],
            "region": spec["region"],
            "status": spec["status"],
            "account_manager": AMS[index % len(AMS)],
            "source_channel": ["referral", "exhibition", "website", "tender", "cold_call"][index % 5],
            "service_types": spec["services"],
            "tags": spec["tags"],
            "contacts": [
                {
                    "name": name, "role": role, "phone": phone, "email": email, "language": language, "timezone": tz,
                    "preferred_channel": channel, "marketing_consent": consent,
                    **({"marketing_consent_source": "demo signup form"} if consent else {}),
                    **({"quiet_hours_start": "21:00:00", "quiet_hours_end": "08:00:00"} if language == "zh-CN" else {}),
                }
                for (name, role, phone, email, language, tz, channel, consent) in spec["contacts"]
            ],
        }  # fmt: skip
        if not individual:
            body["tax_id"] = tax_id_for(index, overseas)
            body["registered_address"] = spec["address"][1] if spec["address"] else None
        if spec["days"] is not None:
            end = today + dt.timedelta(days=spec["days"])
            body |= {
                "contract_number": f"3PL-{today.year}-{index:04d}",
                "contract_start": (end - dt.timedelta(days=365)).isoformat(),
                "contract_end": end.isoformat(),
                "first_order_date": (end - dt.timedelta(days=350)).isoformat(),
            }
        if spec["credit"] is not None:
            body["credit_limit"] = spec["credit"]
            body["payment_days"] = spec["pay"]
        if spec["address"]:
            kind, line1, city, province, lat, lon = spec["address"]
            body["addresses"] = [
                {
                    "kind": kind,
                    "line1": line1,
                    "city": city,
                    "province": province,
                    "latitude": lat,
                    "longitude": lon,
                    "country": "CN" if not overseas or city == "Shanghai" else COUNTRY_OF_TIMEZONE[spec["contacts"][0][5]],
                }
            ]
        bodies.append(body)
    return bodies


COUNTRY_OF_TIMEZONE = {
    "America/Los_Angeles": "US", "America/New_York": "US", "America/Vancouver": "CA", "Europe/London": "GB",
    "Europe/Berlin": "DE", "Asia/Singapore": "SG", "Pacific/Auckland": "NZ",
}  # fmt: skip


INTERACTIONS = [
    ("visit", "in_person", "Quarterly business review on site; volume forecast for next quarter up about 10%.", 30),
    ("call", "phone", "Renewal reminder call: customer asked for a revised quotation before the contract ends.", 7),
    ("survey", "email", "Satisfaction survey answered: on-time delivery good, invoice accuracy needs work.", None),
    ("care", "wechat", "Mid-autumn festival greeting and gift sent to the logistics team.", None),
]


async def _create(client: httpx.AsyncClient, body: dict) -> tuple[dict, bool]:
    response = await client.post("/customers", json=body)
    if response.status_code == 201:
        return response.json(), True
    if response.status_code == 409 and "existing_customer_id" in response.json():
        existing = await client.get(f"/customers/{response.json()['existing_customer_id']}")
        existing.raise_for_status()
        return existing.json(), False
    raise RuntimeError(f"seeding {body['name']} failed: {response.status_code} {response.text}")


async def seed(base_url: str, *, client: httpx.AsyncClient | None = None, today: dt.date | None = None) -> list[dict]:
    """Create the demo customers through the API (idempotent); returns them as the API shows them."""
    own = client is None
    client = client or httpx.AsyncClient(
        base_url=base_url, timeout=10.0, auth=caller_auth(ProfileSettings().service_name, caller="demo-seed")
    )
    try:
        customers = []
        for index, body in enumerate(demo_bodies(today)):
            customer, created = await _create(client, body)
            if created and customer["status"] in ("active", "dormant"):
                for kind, channel, summary, follow_up in INTERACTIONS[index % 2 :: 2]:
                    interaction = {"kind": kind, "channel": channel, "author": customer["account_manager"], "summary": summary}
                    if follow_up is not None:
                        interaction["next_follow_up"] = ((today or dt.date.today()) + dt.timedelta(days=follow_up)).isoformat()
                    (await client.post(f"/customers/{customer['id']}/interactions", json=interaction)).raise_for_status()
            customers.append(customer)
        return customers
    finally:
        if own:
            await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seed the demo customers through the customer-profile API.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8001")
    args = parser.parse_args(argv)
    customers = asyncio.run(seed(args.base_url))
    print(json.dumps([{"id": c["id"], "name": c["name"], "status": c["status"]} for c in customers], ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
