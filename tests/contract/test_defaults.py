"""A token's defaults (/v2/settings) are appended only where the prompt says nothing itself."""

from __future__ import annotations

import pytest

from imagine.errors import ServiceError
from imagine.service.defaults import toggled, with_defaults


def test_defaults_fill_in_what_the_prompt_does_not_set() -> None:
    settings = {"speed": "relax", "version": "6.1", "raw": True, "stylize": "high"}
    assert with_defaults("a cat", settings) == "a cat --relax --v 6.1 --style raw --s 250"
    assert with_defaults("a cat --fast --s 20 --niji 6", settings) == (
        "a cat --fast --s 20 --niji 6 --style raw"
    )
    assert with_defaults("a cat", {}) == "a cat"


def test_toggles_turn_on_and_off_and_unknown_ones_are_refused() -> None:
    on = toggled({}, "Relax mode")
    assert on == {"speed": "relax"}
    assert toggled(on, "relax") == {}
    assert toggled(on, "turbo") == {"speed": "turbo"}
    assert toggled({}, "remix") == {"remix": True}
    assert toggled({"remix": True}, "Remix mode") == {"remix": False}
    assert toggled({}, "version 6.1") == {"version": "6.1"}
    assert toggled({}, "stylize very high") == {"stylize": "very high"}
    assert toggled({"raw": True, "speed": "fast"}, "reset") == {}
    with pytest.raises(ServiceError, match="not a setting; use one of"):
        toggled({}, "make it pretty")
