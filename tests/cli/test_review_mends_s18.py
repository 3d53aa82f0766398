"""Session 18, review mends (s18-mendB): each test is one finding of the review of s18-limits and s18-dedup; the
docstring says what happened before the fix."""

from __future__ import annotations

import pytest

from stsched.errors import InputError


def test_a_detect_s_of_400_digits_is_bad_input_naming_it_not_an_overflow():
    """`check_real` caught TypeError and ValueError only: `float(10**400)` raised OverflowError through it (a
    traceback from `check_detect(10**400)`, any option read by it).  Now bad input naming the option."""
    from stsched.planning.adapt.detect import check_detect

    with pytest.raises(InputError, match=r"^detect_s .*: expected a finite number, got an integer of about 401 "
                                         r"digits$"):
        check_detect(10 ** 400)
