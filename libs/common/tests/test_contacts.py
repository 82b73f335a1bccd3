"""crm_common.contacts: the strict normal forms and the keys that never refuse agree wherever both answer."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_common.contacts import email_key, normalize_email, normalize_phone, phone_key, try_normalize_phone

mobile = st.builds(
    lambda prefix, rest: f"1{prefix}{rest:08d}", st.sampled_from(["30", "35", "38", "39", "58", "86", "89"]), st.integers(0, 10**8 - 1)
)
spellings = st.sampled_from(["{n}", "+86{n}", "+86 {a} {b} {c}", "0086-{a}-{b}-{c}", "{a}-{b}-{c}", "(+86) {a} {b} {c}", "+86 {n}"])


@settings(max_examples=200, deadline=None)
@given(mobile, spellings)
def test_every_spelling_of_a_mobile_has_one_key_equal_to_its_normal_form(national, spelling):
    written = spelling.format(n=national, a=national[:3], b=national[3:7], c=national[7:])
    assert phone_key(written) == normalize_phone(written) == "+86" + national


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_keys_never_refuse_and_agree_with_the_strict_form_when_it_answers(text):
    key = phone_key(text)
    assert key is None or key.strip()
    strict = try_normalize_phone(text)
    if strict is not None:
        assert key == strict
    address = email_key(text)
    try:
        assert address == normalize_email(text)
    except ValueError:
        assert address == (text.strip().lower() or None)


def test_what_the_keys_keep_when_the_strict_form_refuses():
    assert phone_key("12-34") == "1234"  # not a possible number: its digits as written
    assert phone_key("call me") is None and phone_key("") is None and phone_key(None) is None
    assert email_key("  Not-An-Address ") == "not-an-address"
    assert email_key("Li.Wei@Example.COM") == "li.wei@example.com"
    with pytest.raises(ValueError):
        normalize_phone("12345")
    with pytest.raises(ValueError):
        normalize_email("not-an-address")


def test_landlines_and_foreign_numbers():
    assert phone_key("021-6234 5678") == normalize_phone("021-6234 5678") == "+862162345678"
    assert phone_key("+44 20 7946 0958") == "+442079460958"
