"""Tests for reading what an environment name serves from an output directory."""

import pytest

from tasks.runtime.targets import named_confirm_tools


def test_confirmation_tools_of_a_fused_environment_are_named_per_member():
    """`Server.tool` and `Server__tool` both pick a member's tool; a single
    server takes plain names."""
    names = ["A.pay", "B__book", "A__cancel"]
    assert named_confirm_tools("A_B", "A", names) == {"pay", "cancel"}
    assert named_confirm_tools("A_B", "B", names) == {"book"}
    assert named_confirm_tools("A", "A", ["pay"]) == {"pay"}
    with pytest.raises(ValueError, match=r"\['pay'\] of A_B must be named"):
        named_confirm_tools("A_B", "A", ["pay"])
