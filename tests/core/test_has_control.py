"""`has_control`'s fast path (a printable name holds no refused character) agrees with the per-character rule."""

import unicodedata

from hypothesis import given, settings, strategies as st

from stsched.errors import CONTROL_CATEGORIES, has_control


def _by_category(text: str) -> bool:
    return any(unicodedata.category(c) in CONTROL_CATEGORIES for c in text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=12))
def test_the_fast_path_agrees_with_the_categories(text):
    assert has_control(text) == _by_category(text)


def test_each_refused_category_is_seen():
    for c in ("\x00", "\n", "\x7f", "\u202e", "\u200b", "\u2028", "\u2029", "\u00ad"):
        assert has_control(f"s{c}0") == _by_category(f"s{c}0") == True  # noqa: E712
    for ok in ("s0", "café", "ｓ０", "a b", "模型"):
        assert not has_control(ok)
