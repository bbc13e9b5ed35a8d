"""The pure parts of the settings features: client address resolution and the IP filter
rules, the system prompt injection per client format, the thinking budget per wire format."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.options.netfilter import Ban, NetSet, NetworkRules, parse_network
from gateway.options.system_prompt import inject_system_prompt
from gateway.options.thinking import ThinkingPolicy, apply_thinking, request_tier

PROXY = NetSet.of(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # trusted peer: its hop is believed
        ("203.0.113.1", "198.51.100.7", "203.0.113.1"),  # untrusted peer: spoofable, ignored
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # right-most untrusted hop wins
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", "198.51.100.7"),  # trusted hops are skipped
        ("127.0.0.1", "garbage, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "198.51.100.7, garbage", "127.0.0.1"),  # a malformed hop stops the walk
        ("127.0.0.1", "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # all trusted: the left-most
        ("127.0.0.1", "2001:db8::5", "2001:db8::5"),
        (None, "198.51.100.7", "198.51.100.7"),  # a Unix socket counts as 127.0.0.1
    ],
)
def test_client_ip(peer: str | None, xff: str, expected: str) -> None:
    assert NetworkRules(trusted=PROXY).client_ip(peer, xff) == expected


def test_no_trusted_proxy_means_the_peer() -> None:
    assert NetworkRules().client_ip("203.0.113.1", "198.51.100.7") == "203.0.113.1"


def test_networks_v4_v6_and_mapped() -> None:
    nets = NetSet.of(["192.0.2.1", "198.51.100.0/24", "2001:db8::/32", "::ffff:203.0.113.0/120"])
    rules = NetworkRules(enabled=True, mode="blocklist", block=nets)
    for ip in ("192.0.2.1", "198.51.100.200", "2001:db8:1::9", "203.0.113.4", "::ffff:198.51.100.3"):
        assert rules.denial(ip, management=False), ip
    for ip in ("192.0.2.2", "2001:db9::1", "::1"):
        assert rules.denial(ip, management=False) is None, ip
    with pytest.raises(ValueError):
        parse_network("10.0.0.0/33")
    with pytest.raises(ValueError):
        parse_network("example.com")


def test_allowlist_and_loopback_on_the_management_plane() -> None:
    rules = NetworkRules(enabled=True, mode="allowlist", allow=NetSet.of(["198.51.100.0/24"]))
    assert rules.denial("198.51.100.9", management=False) is None
    assert "not in the IP allowlist" in (rules.denial("127.0.0.1", management=False) or "")
    assert rules.denial("127.0.0.1", management=True) is None
    assert rules.denial("::1", management=True) is None
    assert rules.denial("203.0.113.1", management=True)
    assert NetworkRules(enabled=False, mode="allowlist").denial("203.0.113.1", management=False) is None


def test_temporary_bans_expire() -> None:
    now = time.time()
    bans = (Ban(parse_network("203.0.113.9"), now + 60, "abuse"), Ban(parse_network("198.51.100.0/24"), now - 1, ""))
    rules = NetworkRules(enabled=True, bans=bans)
    assert "temporarily banned" in (rules.denial("203.0.113.9", management=False) or "")
    assert "abuse" in (rules.denial("203.0.113.9", management=True) or "")
    assert rules.denial("198.51.100.1", management=False) is None


# -- system prompt ----------------------------------------------------------------------------

P = "GLOBAL"


@pytest.mark.parametrize(
    ("client", "payload", "expected"),
    [
        (
            "openai",
            {"messages": [{"role": "user", "content": "hi"}]},
            {"messages": [{"role": "system", "content": P}, {"role": "user", "content": "hi"}]},
        ),
        (
            "openai",
            {"messages": [{"role": "developer", "content": "own"}]},
            {"messages": [{"role": "developer", "content": f"{P}\n\nown"}]},
        ),
        (
            "openai",
            {"messages": [{"role": "system", "content": [{"type": "text", "text": "own"}]}]},
            {
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": P}, {"type": "text", "text": "own"}]}
                ]
            },
        ),
        (
            "ollama",
            {"messages": [{"role": "system", "content": "own"}]},
            {"messages": [{"role": "system", "content": f"{P}\n\nown"}]},
        ),
        ("anthropic", {"system": "own"}, {"system": f"{P}\n\nown"}),
        ("anthropic", {}, {"system": P}),
        (
            "anthropic",
            {"system": [{"type": "text", "text": "own"}]},
            {"system": [{"type": "text", "text": P}, {"type": "text", "text": "own"}]},
        ),
        ("responses", {"instructions": "own"}, {"instructions": f"{P}\n\nown"}),
        ("responses", {}, {"instructions": P}),
        ("gemini", {}, {"systemInstruction": {"parts": [{"text": P}]}}),
        (
            "gemini_array",
            {"system_instruction": {"parts": [{"text": "own"}]}},
            {"system_instruction": {"parts": [{"text": P}, {"text": "own"}]}},
        ),
        ("openai", {"messages": "not a list"}, {"messages": "not a list"}),  # left for validation's 400
    ],
)
def test_system_prompt_per_client_format(client: str, payload: dict[str, Any], expected: dict[str, Any]) -> None:
    before = repr(payload)
    assert inject_system_prompt(client, payload, P) == expected
    assert repr(payload) == before  # the client's dict is not changed


# -- thinking budget -----------------------------------------------------------------------------

CUSTOM = ThinkingPolicy("custom", 5000, "high")
AUTO = ThinkingPolicy("auto", 5000, "low")
ADAPTIVE = ThinkingPolicy("adaptive", 8000, "medium")


def thinking(
    policy: ThinkingPolicy, body: dict[str, Any], fmt: str, provider: str = "", reasoning: bool | None = True
) -> dict[str, Any]:
    return apply_thinking(policy, body, fmt=fmt, provider_format=provider or fmt, reasoning=reasoning)


def test_custom_per_native_format() -> None:
    assert thinking(CUSTOM, {}, "openai")["reasoning_effort"] == "high"
    assert thinking(CUSTOM, {"reasoning": {"summary": "auto"}}, "responses")["reasoning"] == {
        "summary": "auto",
        "effort": "high",
    }
    out = thinking(CUSTOM, {"max_tokens": 20000, "temperature": 0.2}, "anthropic")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 5000} and "temperature" not in out
    gen = thinking(
        CUSTOM, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "low", "includeThoughts": True}}}, "gemini"
    )
    assert gen["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 5000}
    snake = thinking(CUSTOM, {"generation_config": {"thinking_config": {"thinking_budget": 1}}}, "gemini")
    assert snake["generation_config"] == {"thinkingConfig": {"thinkingBudget": 5000}}


def test_anthropic_max_tokens_rule() -> None:
    assert thinking(CUSTOM, {"max_tokens": 3000}, "anthropic")["thinking"]["budget_tokens"] == 2999
    small = thinking(CUSTOM, {"max_tokens": 500, "thinking": {"type": "enabled", "budget_tokens": 2000}}, "anthropic")
    assert "thinking" not in small  # below Anthropic's 1024 minimum: thinking off
    forced = thinking(CUSTOM, {"max_tokens": 9000, "tool_choice": {"type": "any"}}, "anthropic")
    assert "thinking" not in forced
    canonical = thinking(CUSTOM, {"max_tokens": 300, "temperature": 0}, "canonical", "anthropic")
    assert canonical["thinking_budget"] == 0 and canonical["temperature"] == 0


def test_canonical_carries_both_controls() -> None:
    out = thinking(CUSTOM, {"messages": []}, "canonical", "gemini")
    assert (out["reasoning_effort"], out["thinking_budget"]) == ("high", 5000)


def test_auto_keeps_the_clients_request_else_the_effort_level() -> None:
    own = {"reasoning_effort": "minimal"}
    assert thinking(AUTO, own, "openai") is own
    assert thinking(AUTO, {}, "openai")["reasoning_effort"] == "low"
    assert thinking(AUTO, {"max_tokens": 9000}, "anthropic")["thinking"]["budget_tokens"] == 2048
    assert thinking(AUTO, {"thinking": {"type": "disabled"}}, "anthropic") == {"thinking": {"type": "disabled"}}


def test_adaptive_scales_with_the_request() -> None:
    small = {"messages": [{"role": "user", "content": "hi"}]}
    medium = {"messages": [{"role": "user", "content": "x" * 5000}]}
    large = {"messages": [{"role": "user", "content": "x"}] * 21}
    assert [request_tier(b) for b in (small, medium, large)] == ["small", "medium", "large"]
    budgets = [thinking(ADAPTIVE, b, "canonical", "anthropic")["thinking_budget"] for b in (small, medium, large)]
    assert budgets == [2000, 8000, 16000]
    efforts = [thinking(ADAPTIVE, b, "openai")["reasoning_effort"] for b in (small, medium, large)]
    assert efforts == ["low", "medium", "high"]


def test_models_that_cannot_reason_lose_every_reasoning_field() -> None:
    assert thinking(CUSTOM, {"reasoning_effort": "high", "x": 1}, "openai", reasoning=False) == {"x": 1}
    assert (
        thinking(CUSTOM, {"thinking_budget": 9, "reasoning_effort": "low"}, "canonical", "openai", reasoning=False)
        == {}
    )
    assert thinking(CUSTOM, {"thinking": {}}, "anthropic", reasoning=False) == {}
    assert thinking(CUSTOM, {"reasoning": {}}, "responses", reasoning=False) == {}
    gen = thinking(CUSTOM, {"generationConfig": {"thinkingConfig": {}, "temperature": 1}}, "gemini", reasoning=False)
    assert gen == {"generationConfig": {"temperature": 1}}
