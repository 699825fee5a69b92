"""--loss and --loss_options syntax."""

from __future__ import annotations

import pytest

from deeplab.train.loss_syntax import parse_loss_options, parse_loss_weights


def test_weights_default_to_one_and_keep_their_order():
    assert parse_loss_weights("softmax_cross_entropy") == (("softmax_cross_entropy", 1.0),)
    assert parse_loss_weights("softmax_cross_entropy:1, dice:0.5") == (
        ("softmax_cross_entropy", 1.0), ("dice", 0.5))


@pytest.mark.parametrize("text,match", [
    ("dice:x", "weight 'x' of 'dice' is not a number"), ("dice:-1", "must be >= 0"),
    ("dice,,a", "empty entry"), ("dice,dice:2", "'dice' given twice")])
def test_bad_weights_are_named(text, match):
    with pytest.raises(ValueError, match=match):
        parse_loss_weights(text)


def test_options_group_by_loss():
    assert parse_loss_options(["dice.smooth=0.1", "lovasz_softmax.per_image=true",
                               "dice.classes=all"]) == {
        "dice": {"smooth": "0.1", "classes": "all"},
        "lovasz_softmax": {"per_image": "true"}}
    assert parse_loss_options(()) == {}
    with pytest.raises(ValueError, match="'smooth=0.1' is not NAME.FIELD=VALUE"):
        parse_loss_options(["smooth=0.1"])
