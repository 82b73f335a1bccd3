"""The texts the worklist generates (each item's `detail`), as a stable message key with parameters.

The console renders an item from its zh-CN and en message tables (`msg.<key>` in the gateway's console/static/i18n.js);
the English text, rendered here from the same key and parameters, stays in the item's `detail` for API clients that do
not translate. Parameters are codes (interaction kind, quota period), numbers, dates, a quarter label or someone's own
words (`text`: the manager's next step; `case_detail`: the win-back case's stored English reason): a reader translates
the codes, never the words. The items are computed on every read, so there is nothing stored to migrate.
"""

from __future__ import annotations

from typing import Any

# key -> English template; parameters in braces. A key is part of the API: change its text, never its meaning.
ENGLISH: dict[str, str] = {
    "work.follow_up_next_step": "{text}",
    "work.follow_up": "Follow up on the {interaction_kind} of {date}",
    "work.visit": "{done} of {required} visits this {period}",
    "work.credit_review_now": "Credit review (grade {grade}: review now)",
    "work.credit_review_every": "Credit review (grade {grade}: every {days} days)",
    "work.win_back_call": "Lost-customer survey call: why they left, what would bring them back ({case_detail})",
    "work.satisfaction_survey": "Satisfaction survey {quarter}: overall score, factors and comment",
    # why a win-back case was opened (winback.py; stored on the case)
    "winback.inactive": "no order since {last_order} ({days} days) and P(alive) {p_alive}% < {p_alive_below}%",
    "winback.terminated": "status set to lost (was {old_status})",
}


def english(key: str, params: dict[str, Any]) -> str:
    """The item's English `detail`, exactly the text the worklist wrote before keys existed."""
    return ENGLISH[key].format(**params)
