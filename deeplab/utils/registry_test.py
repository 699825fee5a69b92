"""Registry: registration order, one entry per name, errors that list the choices, loading."""

from __future__ import annotations

import pytest

from deeplab.utils.registry import Registry


class _Missing(LookupError):
    pass


def test_lookup_iterate_and_refuse_twice():
    registry = Registry("colour", _Missing)
    assert registry.register("red", 1) == 1
    registry.register("blue", 2)
    assert registry.names() == ("red", "blue") and list(registry.items()) == [("red", 1),
                                                                             ("blue", 2)]
    assert registry.lookup("blue") == 2 and "red" in registry and len(registry) == 2
    with pytest.raises(_Missing, match="unknown colour 'green'; registered: red, blue"):
        registry.lookup("green")
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        registry.register("red", 3)
    registry.register("red", 4, replace=True)
    assert list(registry.items()) == [("red", 4), ("blue", 2)]
    registry.unregister("red")
    assert registry.names() == ("blue",)
    registry["green"] = 5  # as pytest's monkeypatch.setitem does, then undoes
    del registry["green"]
    with pytest.raises(ValueError, match="registered twice"):
        registry["blue"] = 6


def test_load_runs_once_on_first_use_and_may_register():
    calls = []

    def load(registry):
        calls.append(1)
        registry.register("builtin", 0)

    registry = Registry("thing", load=load)
    assert not calls
    registry.register("plugin", 1)
    assert registry.names() == ("builtin", "plugin") and registry.lookup("plugin") == 1
    assert calls == [1]
