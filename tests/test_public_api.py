"""Every name in ``elim.__all__`` resolves to a real object."""

from __future__ import annotations

import pytest

import elim


@pytest.mark.parametrize("name", elim.__all__)
def test_public_name_resolves(name):
    assert getattr(elim, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        elim.not_a_thing  # noqa: B018
