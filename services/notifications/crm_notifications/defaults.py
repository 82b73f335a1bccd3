"""Default templates and rules so that a fresh installation notifies out of the box.

Seeded at start-up (idempotent: only what is missing by key/language or rule name is added);
admins change them later through /templates and /rules.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_notifications.rules import service as rules
from crm_notifications.rules.models import Rule
from crm_notifications.rules.schemas import RuleIn
from crm_notifications.templates import service as templates

log = logging.getLogger(__name__)

# key -> (variables, {language: (subject, body)})
TEMPLATES: dict[str, tuple[list[str], dict[str, tuple[str, str]]]] = {
    "complaint_ack": (
        ["complaint_number", "contact_name", "category"],
        {
            "zh-CN": (
                "您的投诉已受理（编号 {{ complaint_number }}）",
                "{{ contact_name }} 您好：\n\n我们已收到您的投诉，编号 {{ complaint_number }}（类别：{{ category }}）。"
                "专人将尽快处理并回复您。\n",
            ),
            "en": (
                "We received your complaint {{ complaint_number }}",
                "Dear {{ contact_name }},\n\nWe have received your complaint {{ complaint_number }} ({{ category }}). "
                "A dedicated agent will handle it and get back to you shortly.\n",
            ),
        },
    ),
    "complaint_resolved": (
        ["complaint_number", "contact_name", "outcome", "survey_url"],
        {
            "zh-CN": (
                "投诉 {{ complaint_number }} 已处理完毕",
                "{{ contact_name }} 您好：\n\n您的投诉 {{ complaint_number }} 已处理：{{ outcome }}。\n"
                "请花一分钟评价我们的处理：{{ survey_url }}\n",
            ),
            "en": (
                "Your complaint {{ complaint_number }} is resolved",
                "Dear {{ contact_name }},\n\nYour complaint {{ complaint_number }} has been resolved: {{ outcome }}.\n"
                "Please tell us how we did: {{ survey_url }}\n",
            ),
        },
    ),
    "complaint_escalated_alert": (
        ["complaint_number", "customer_name", "level", "reason", "clock"],
        {
            "zh-CN": (
                "【升级 L{{ level }}】投诉 {{ complaint_number }}（{{ customer_name }}）",
                "投诉 {{ complaint_number }} 已升级到第 {{ level }} 级（{{ clock }}，原因：{{ reason }}）。请立即处理。\n",
            ),
            "en": (
                "[Escalated L{{ level }}] complaint {{ complaint_number }} ({{ customer_name }})",
                "Complaint {{ complaint_number }} escalated to level {{ level }} ({{ clock }}, {{ reason }}). Please act now.\n",
            ),
        },
    ),
    "shipment_delayed": (
        ["contact_name", "items", "item_count"],
        {
            "zh-CN": (
                "{{ item_count }} 票货物运输延误通知",
                "{{ contact_name }} 您好：\n\n以下 {{ item_count }} 票货物将延误送达：\n"
                "{% for item in items %}- 订单 {{ item.order_id }}{% if item.tracking_number %}（运单 "
                "{{ item.tracking_number }}）{% endif %}"
                "：预计延误 {{ item.delay_minutes }} 分钟{% if item.new_eta %}，新的预计到达时间 "
                "{{ item.new_eta }}{% endif %}\n{% endfor %}"
                "给您带来不便，敬请谅解。\n",
            ),
            "en": (
                "Delay notice for {{ item_count }} shipment(s)",
                "Dear {{ contact_name }},\n\nThe following {{ item_count }} shipment(s) are delayed:\n"
                "{% for item in items %}- order {{ item.order_id }}{% if item.tracking_number %} (tracking "
                "{{ item.tracking_number }}){% endif %}"
                ": {{ item.delay_minutes }} min late{% if item.new_eta %}, new ETA {{ item.new_eta }}{% endif %}\n{% endfor %}"
                "We apologise for the inconvenience.\n",
            ),
        },
    ),
    "shipment_lost": (
        ["contact_name", "order_id", "tracking_number", "account_manager"],
        {
            "zh-CN": (
                "重要：订单 {{ order_id }} 货物丢失",
                "{{ contact_name }} 您好：\n\n订单 {{ order_id }}（运单 {{ tracking_number }}）的货物已确认丢失。"
                "您的客户经理 {{ account_manager }} 将立即与您联系处理赔付。\n",
            ),
            "en": (
                "Important: shipment of order {{ order_id }} lost",
                "Dear {{ contact_name }},\n\nThe shipment of order {{ order_id }} "
                "(tracking {{ tracking_number }}) is confirmed lost. Your account manager {{ account_manager }} will contact you about "
                "compensation.\n",
            ),
        },
    ),
    "order_delivered": (
        ["contact_name", "order_id", "delivered_at"],
        {
            "zh-CN": ("订单 {{ order_id }} 已送达", "{{ contact_name }} 您好：订单 {{ order_id }} 已于 {{ delivered_at }} 送达。\n"),
            "en": (
                "Order {{ order_id }} delivered",
                "Dear {{ contact_name }}, order {{ order_id }} was delivered at {{ delivered_at }}.\n",
            ),
        },
    ),
    "key_account_welcome": (
        ["contact_name", "customer_name", "account_manager"],
        {
            "zh-CN": (
                "欢迎成为我们的大客户",
                "{{ contact_name }} 您好：\n\n{{ customer_name }} 已升级为我们的大客户。"
                "您的专属客户经理是 {{ account_manager }}，将为您制定个性化服务方案并定期拜访。\n",
            ),
            "en": (
                "Welcome to key-account service",
                "Dear {{ contact_name }},\n\n{{ customer_name }} is now one of our key accounts. "
                "Your named account manager is {{ account_manager }}, who will agree a personal service plan with you.\n",
            ),
        },
    ),
    "churn_task": (
        ["customer_name", "risk_level", "signals"],
        {
            "zh-CN": (
                "流失风险（{{ risk_level }}）：{{ customer_name }}",
                "请在两个工作日内联系 {{ customer_name }}。信号：{{ signals | join('、') }}\n",
            ),
            "en": (
                "Churn risk ({{ risk_level }}): {{ customer_name }}",
                "Please contact {{ customer_name }} within two working days. Signals: {{ signals | join(', ') }}\n",
            ),
        },
    ),
    "credit_grade_falling": (
        ["customer_name", "old_grade", "new_grade", "reason", "account_manager"],
        {
            "zh-CN": (
                "【信用下降】{{ customer_name }}：{{ old_grade }} → {{ new_grade }}",
                "{{ customer_name }} 的信用等级由 {{ old_grade }} 降为 "
                "{{ new_grade }}（{{ reason }}）。客户经理：{{ account_manager }}。请立即跟进。\n",
            ),
            "en": (
                "[Credit falling] {{ customer_name }}: {{ old_grade }} -> {{ new_grade }}",
                "The credit grade of {{ customer_name }} fell from {{ old_grade }} to {{ new_grade }} ({{ reason }}). "
                "Account manager: {{ account_manager }}. Please follow up now.\n",
            ),
        },
    ),
    "win_back_offer": (
        ["contact_name", "customer_name", "summary", "discount_percent", "valid_until", "account_manager", "unsubscribe_url"],
        {
            "zh-CN": (
                "{{ customer_name }}：我们为您准备了一份专属方案",
                "{{ contact_name }} 您好：\n\n感谢您告诉我们离开的原因。我们希望重新为您服务：{{ summary }}"
                "{% if discount_percent %}（优惠 {{ discount_percent }}%）{% endif %}。本方案有效期至 {{ valid_until }}。\n"
                "如有兴趣，请联系您的客户经理 {{ account_manager }}。\n\n退订：{{ unsubscribe_url }}\n",
            ),
            "en": (
                "{{ customer_name }}: an offer for you",
                "Dear {{ contact_name }},\n\nThank you for telling us why you left. We would like to serve you again: {{ summary }}"
                "{% if discount_percent %} ({{ discount_percent }}% off){% endif %}. The offer holds until {{ valid_until }}.\n"
                "If it interests you, please contact your account manager {{ account_manager }}.\n\nUnsubscribe: {{ unsubscribe_url }}\n",
            ),
        },
    ),
    "satisfaction_survey_invite": (
        ["contact_name", "customer_name", "campaign_name", "survey_url", "expires_at", "unsubscribe_url"],
        {
            "zh-CN": (
                "{{ campaign_name }}：请评价我们的服务",
                "{{ contact_name }} 您好：\n\n感谢贵司（{{ customer_name }}）一直以来的支持。"
                "请花两分钟告诉我们您对准时送达、货物完好、价格、服务人员和投诉处理的满意程度：{{ survey_url }}\n"
                "此链接仅供您本人使用一次，有效期至 {{ expires_at }}。\n\n退订：{{ unsubscribe_url }}\n",
            ),
            "en": (
                "{{ campaign_name }}: how are we doing?",
                "Dear {{ contact_name }},\n\nThank you for working with us ({{ customer_name }}). "
                "Please take two minutes to tell us how satisfied you are with our on-time delivery, "
                "the condition of your goods, our prices, our staff and our complaint handling: "
                "{{ survey_url }}\nThis link is yours, for one answer, until {{ expires_at }}.\n\nUnsubscribe: {{ unsubscribe_url }}\n",
            ),
        },
    ),
    "key_account_report_ready": (
        ["customer_name", "month", "summary"],
        {
            "zh-CN": (
                "重点客户月度服务报告 {{ month }}：{{ customer_name }}",
                "{{ customer_name }} 的 {{ month }} 月度服务报告已生成：{{ summary }}。请在客户经理工作台查看或下载。\n",
            ),
            "en": (
                "Key-account service report {{ month }}: {{ customer_name }}",
                "The {{ month }} service report of {{ customer_name }} is ready: {{ summary }}. Read or download it in the "
                "account manager's workspace.\n",
            ),
        },
    ),
    "key_account_report_customer": (
        ["contact_name", "customer_name", "month", "summary", "account_manager", "unsubscribe_url"],
        {
            "zh-CN": (
                "{{ customer_name }} {{ month }} 月度服务报告",
                "{{ contact_name }} 您好：\n\n贵司 {{ month }} 的月度服务报告已生成：{{ summary }}。您可以在客户门户查看和下载完整报告；"
                "如有问题请联系您的客户经理 {{ account_manager }}。\n\n退订：{{ unsubscribe_url }}\n",
            ),
            "en": (
                "{{ customer_name }}: your service report for {{ month }}",
                "Dear {{ contact_name }},\n\nYour service report for {{ month }} is ready: {{ summary }}. The full report can be read and "
                "downloaded in the customer portal; your account manager {{ account_manager }} is happy to go through it with you.\n\n"
                "Unsubscribe: {{ unsubscribe_url }}\n",
            ),
        },
    ),
    "credit_grade_alert": (
        ["customer_name", "new_grade", "reason"],
        {
            "zh-CN": (
                "信用等级 {{ new_grade }}：{{ customer_name }}",
                "{{ customer_name }} 的信用等级为 {{ new_grade }}（{{ reason }}）。\n",
            ),
            "en": (
                "Credit grade {{ new_grade }}: {{ customer_name }}",
                "{{ customer_name }} has credit grade {{ new_grade }} ({{ reason }}).\n",
            ),
        },
    ),
    "credit_payment_cycle": (
        ["customer_name", "new_grade"],
        {
            "zh-CN": (
                "缩短付款周期：{{ customer_name }}",
                "{{ customer_name }} 的信用等级为 {{ new_grade }}：请与客户商定更短的付款周期，并提醒按期付款。\n",
            ),
            "en": (
                "Shorter payment cycle: {{ customer_name }}",
                "{{ customer_name }} has credit grade {{ new_grade }}: agree a shorter payment cycle "
                "with the customer and remind them to pay on time.\n",
            ),
        },
    ),
    "credit_review_task": (
        ["customer_name", "new_grade", "reason", "review_every_days"],
        {
            "zh-CN": (
                "信用审查：{{ customer_name }}",
                "{{ customer_name }} 的信用等级为 {{ new_grade }}（{{ reason }}）。请立即进行信用审查；"
                "此后每 {{ review_every_days }} 天审查一次。\n",
            ),
            "en": (
                "Credit review: {{ customer_name }}",
                "{{ customer_name }} has credit grade {{ new_grade }} ({{ reason }}). Review the credit now, "
                "then every {{ review_every_days }} days.\n",
            ),
        },
    ),
    "retention_offer": (
        ["contact_name", "account_manager", "unsubscribe_url"],
        {
            "zh-CN": (
                "我们想听听您的意见",
                "{{ contact_name }} 您好：\n\n我们希望了解如何更好地为您服务，您的客户经理 {{ account_manager }} 会与您联系。\n"
                "\n退订：{{ unsubscribe_url }}\n",
            ),
            "en": (
                "We would like to hear from you",
                "Dear {{ contact_name }},\n\nWe would like to know how we can serve you better; "
                "your account manager {{ account_manager }} will get in touch.\n\nUnsubscribe: {{ unsubscribe_url }}\n",
            ),
        },
    ),
    "payment_reminder": (
        ["contact_name", "invoice_id", "amount", "currency", "due_date", "days_overdue"],
        {
            "zh-CN": (
                "付款提醒：发票 {{ invoice_id }}",
                "{{ contact_name }} 您好：\n\n发票 {{ invoice_id }}（{{ amount }} {{ currency }}）已于 {{ due_date }} 到期，"
                "逾期 {{ days_overdue }} 天，请尽快安排付款。\n",
            ),
            "en": (
                "Payment reminder: invoice {{ invoice_id }}",
                "Dear {{ contact_name }},\n\nInvoice {{ invoice_id }} ({{ amount }} {{ currency }}) was due on "
                "{{ due_date }} and is {{ days_overdue }} day(s) overdue. Please arrange payment.\n",
            ),
        },
    ),
    "contract_renewal": (
        ["contact_name", "customer_name", "contract_end", "days_to_contract_end", "account_manager"],
        {
            "zh-CN": (
                "合同续约提醒",
                "{{ contact_name }} 您好：\n\n{{ customer_name }} 的合同将于 {{ contract_end }} 到期（还有 {{ days_to_contract_end }} "
                "天）。"
                "客户经理 {{ account_manager }} 将与您商谈续约。\n",
            ),
            "en": (
                "Contract renewal reminder",
                "Dear {{ contact_name }},\n\nThe contract of {{ customer_name }} ends on {{ contract_end }} "
                "(in {{ days_to_contract_end }} days). {{ account_manager }} will contact you about renewal.\n",
            ),
        },
    ),
    "win_back": (
        ["contact_name", "unsubscribe_url"],
        {
            "zh-CN": (
                "好久不见，我们想念您",
                "{{ contact_name }} 您好：\n\n我们注意到您已有一段时间没有使用我们的服务。能否告诉我们原因，"
                "以及什么能让您再次选择我们？\n\n退订：{{ unsubscribe_url }}\n",
            ),
            "en": (
                "We miss you",
                "Dear {{ contact_name }},\n\nWe noticed you have not shipped with us for a while. Could you tell us why, "
                "and what would bring you back?\n\nUnsubscribe: {{ unsubscribe_url }}\n",
            ),
        },
    ),
    "service_level_breach": (
        ["customer_name", "month", "summary"],
        {
            "zh-CN": (
                "服务水平未达标（{{ month }}）：{{ customer_name }}",
                "{{ customer_name }} 在 {{ month }} 未达到约定的服务水平：{{ summary }}。请与客户沟通并制定改进措施。\n",
            ),
            "en": (
                "Service level missed ({{ month }}): {{ customer_name }}",
                "{{ customer_name }} missed its agreed service levels in {{ month }}: "
                "{{ summary }}. Please talk to the customer and agree on corrective action.\n",
            ),
        },
    ),
}

RULES: list[dict] = [
    dict(
        name="complaint-filed-ack",
        event_type="ComplaintFiled",
        template_key="complaint_ack",
        audience="event_contact",
        channel="preferred",
        category="complaint_updates",
    ),
    dict(
        name="complaint-resolved",
        event_type="ComplaintResolved",
        template_key="complaint_resolved",
        audience="event_contact",
        channel="preferred",
        category="complaint_updates",
    ),
    dict(
        name="complaint-escalated-alert",
        event_type="ComplaintEscalated",
        template_key="complaint_escalated_alert",
        audience="escalation_owner",
        channel="inbox",
        category="internal_alerts",
        urgency="critical",
    ),
    dict(
        name="shipment-delayed-notice",
        event_type="ShipmentDelayed",
        template_key="shipment_delayed",
        audience="customer_contacts",
        channel="email",
        category="shipment_status",
        digest_window_s=900,
        digest_key="customer_id",
    ),
    dict(
        name="shipment-lost-alert",
        event_type="ShipmentLost",
        template_key="shipment_lost",
        audience="customer_contacts",
        channel="preferred",
        category="shipment_status",
        urgency="critical",
    ),
    dict(
        name="order-delivered-key-accounts",
        event_type="OrderDelivered",
        template_key="order_delivered",
        audience="customer_contacts",
        channel="email",
        category="delivery_confirmations",
        conditions=[{"field": "customer.tier", "op": "eq", "value": "key_account"}],
        digest_window_s=3600,
        digest_key="customer_id",
    ),
    dict(
        name="key-account-welcome",
        event_type="CustomerTierChanged",
        template_key="key_account_welcome",
        audience="customer_contacts",
        channel="email",
        category="account_service",
        conditions=[{"field": "new_tier", "op": "eq", "value": "key_account"}, {"field": "new_tier", "op": "tier_up", "value": "old_tier"}],
    ),
    dict(
        name="churn-risk-task",
        event_type="ChurnRiskRaised",
        template_key="churn_task",
        audience="account_manager",
        channel="inbox",
        category="internal_tasks",
    ),
    # credit actions per grade: scoring's SCORING_CREDIT_POLICY decides which grade calls for which action; these rules
    # say who hears of it. A falling grade warns the account manager and finance at once (the other alerts then stay quiet).
    dict(
        name="credit-falling-account-manager",
        event_type="CreditGradeChanged",
        template_key="credit_grade_falling",
        audience="account_manager",
        channel="inbox",
        category="internal_alerts",
        urgency="critical",
        conditions=[{"field": "falling", "op": "eq", "value": True}],
    ),
    dict(
        name="credit-falling-finance",
        event_type="CreditGradeChanged",
        template_key="credit_grade_falling",
        audience="finance",
        channel="inbox",
        category="internal_alerts",
        urgency="critical",
        conditions=[{"field": "falling", "op": "eq", "value": True}],
    ),
    dict(
        name="credit-alert-account-manager",
        event_type="CreditGradeChanged",
        template_key="credit_grade_alert",
        audience="account_manager",
        channel="inbox",
        category="internal_alerts",
        conditions=[
            {"field": "actions", "op": "contains", "value": "alert_account_manager"},
            {"field": "falling", "op": "eq", "value": False},
        ],
    ),
    dict(
        name="credit-alert-finance",
        event_type="CreditGradeChanged",
        template_key="credit_grade_alert",
        audience="finance",
        channel="inbox",
        category="internal_alerts",
        conditions=[{"field": "actions", "op": "contains", "value": "alert_finance"}, {"field": "falling", "op": "eq", "value": False}],
    ),
    dict(
        name="credit-payment-cycle-task",
        event_type="CreditGradeChanged",
        template_key="credit_payment_cycle",
        audience="account_manager",
        channel="inbox",
        category="internal_tasks",
        conditions=[{"field": "actions", "op": "contains", "value": "payment_cycle_reminder"}],
    ),
    dict(
        name="credit-review-task",
        event_type="CreditGradeChanged",
        template_key="credit_review_task",
        audience="account_manager",
        channel="inbox",
        category="internal_tasks",
        conditions=[{"field": "actions", "op": "contains", "value": "credit_review_task"}],
    ),
    dict(
        name="churn-risk-retention",
        event_type="ChurnRiskRaised",
        template_key="retention_offer",
        audience="customer_contacts",
        channel="email",
        category="retention",
    ),
    dict(
        name="payment-overdue-reminder",
        event_type="PaymentOverdue",
        template_key="payment_reminder",
        audience="customer_contacts",
        channel="preferred",
        category="payment_reminders",
    ),
    dict(
        name="contract-renewal-reminder",
        event_type="ContractRenewalDue",
        template_key="contract_renewal",
        audience="customer_contacts",
        channel="email",
        category="contract_renewal",
    ),
    dict(
        name="win-back",
        event_type="CustomerWinBack",
        template_key="win_back",
        audience="customer_contacts",
        channel="email",
        category="win_back",
    ),
    # a satisfaction survey campaign (customer-profile): each contact gets its own signed single-use link, in its language
    dict(
        name="satisfaction-survey-invite",
        event_type="SatisfactionSurveyInvited",
        template_key="satisfaction_survey_invite",
        audience="event_contact",
        channel="email",
        category="account_service",
    ),
    # an offer sent from a win-back case (customer-profile): to the lost customer's contacts, each in their own language
    dict(
        name="win-back-offer",
        event_type="WinBackOfferMade",
        template_key="win_back_offer",
        audience="customer_contacts",
        channel="email",
        category="win_back",
    ),
    # key-account monthly service reports (customer-profile): the account manager always; the customer's contacts when the
    # customer asked for its reports (customer_opted_in) and the contact subscribes to monthly_service_report (default off)
    dict(
        name="key-account-report-account-manager",
        event_type="KeyAccountReportReady",
        template_key="key_account_report_ready",
        audience="account_manager",
        channel="inbox",
        category="internal_tasks",
    ),
    dict(
        name="key-account-report-customer",
        event_type="KeyAccountReportReady",
        template_key="key_account_report_customer",
        audience="customer_contacts",
        channel="email",
        category="monthly_service_report",
        conditions=[{"field": "customer_opted_in", "op": "eq", "value": True}],
    ),
    dict(
        name="service-level-breach-account-manager",
        event_type="ServiceLevelBreached",
        template_key="service_level_breach",
        audience="account_manager",
        channel="inbox",
        category="internal_tasks",
    ),
]


async def seed(session: AsyncSession) -> tuple[int, int]:
    """Add missing default templates and rules. Returns (templates added, rules added)."""
    added_templates = added_rules = 0
    for key, (variables, languages) in TEMPLATES.items():
        for language, (subject, body) in languages.items():
            if await templates.current(session, key, language, fallback=False) is None:
                await templates.save_version(
                    session, key=key, language=language, subject=subject, body=body, variables=variables, description="default"
                )
                added_templates += 1
    for spec in RULES:
        if await session.scalar(select(Rule.id).where(Rule.name == spec["name"])) is None:
            await rules.create(session, RuleIn.model_validate(spec))
            added_rules += 1
    return added_templates, added_rules
