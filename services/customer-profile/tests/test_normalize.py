"""Normal forms (no database): every way of writing one number or address gives one stored value."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_common.contacts import normalize_email, normalize_phone, phone_variants
from crm_profile.customers.normalize import normalize_tax_id
from crm_profile.customers.privacy import scrub_text

mobile = st.builds(
    lambda prefix, rest: f"1{prefix}{rest:08d}", st.sampled_from(["30", "35", "38", "39", "58", "86", "89"]), st.integers(0, 10**8 - 1)
)


@st.composite
def spelled(draw, national: str) -> str:
    """A Chinese mobile number as people type it: country prefix or not, spaces, dashes, brackets."""
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "(+86) ", "86 "]))
    sep = draw(st.sampled_from(["", " ", "-"]))
    body = f"{national[:3]}{sep}{national[3:7]}{sep}{national[7:]}"
    return prefix + body if prefix != "86 " else "+" + prefix + body


@settings(max_examples=200, deadline=None)
@given(st.data(), mobile)
def test_every_spelling_of_a_mobile_number_normalises_to_one_e164(data, national):
    assert normalize_phone(data.draw(spelled(national))) == "+86" + national


@settings(max_examples=200, deadline=None)
@given(st.data(), mobile, st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=30))
def test_scrubbing_removes_the_number_however_it_was_written(data, national, filler):
    spelling = data.draw(spelled(national)).lstrip("(")
    text = f"{filler} call {spelling} {filler}"
    cleaned = scrub_text(text, phone_variants("+86" + national))
    assert national not in cleaned.replace(" ", "").replace("-", "")


@pytest.mark.parametrize("raw", ["12345", "call me", "+86 123", "", "+999 1234 5678"])
def test_impossible_numbers_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_landlines_and_foreign_numbers():
    assert normalize_phone("021-6234 5678") == "+862162345678"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


@settings(max_examples=100, deadline=None)
@given(
    st.from_regex(r"[a-z][a-z0-9.]{0,15}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s),
    st.sampled_from(["example.com", "jade-example.cn"]),
)
def test_emails_are_compared_lower_case(local, domain):
    assert normalize_email(f"{local.upper()}@{domain.upper()}") == f"{local}@{domain}"


def test_tax_ids_drop_separators_and_case():
    assert normalize_tax_id("9131 0000-ma1k.4abc/12") == "91310000MA1K4ABC12"
    with pytest.raises(ValueError):
        normalize_tax_id("#?")
