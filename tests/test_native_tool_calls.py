"""Native tool calling: the model families' call formats are read, and the tool envs hand their
specs to a chat template (``tool_prompt="template"``), rendered by CausalLMPolicy with
``tools=``. The templates are the project's own, in tests/fixtures/chat_templates/, modelled on
the public Qwen2.5/Hermes, Llama 3.1 and Mistral templates (no hub download)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_envs import Task
from grpo_envs.envs.tool_call import ToolCallEnv
from grpo_envs.tasks.tool_format import ToolPrompt, as_tool_prompt, chat_template_tools, prompt_request
from grpo_envs.verify.tool_call import CALL_FORMATS, MAX_JSON_DEPTH, ToolCallParseError, parse_tool_calls

TEMPLATES = Path(__file__).parent / "fixtures" / "chat_templates"
TEMPLATE_NAMES = ("qwen2_5", "llama3_1", "mistral")
DIFF = {"start": "2024-09-04", "end": "2025-10-30"}  # ToolCall-v0's simple task 0 (seed 0, level 1)


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text()


# -- parsing: every native format ------------------------------------------------------------------

NATIVE = [
    ('<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>', "hermes", [("f", {"x": 1})]),
    (
        '[TOOL_CALLS][{"name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": {}}]',
        "mistral",
        [("f", {"x": 1}), ("g", {})],
    ),
    ('[TOOL_CALLS] [{"name": "f", "arguments": {"x": 1}, "id": "abc123DEF"}]</s>', "mistral", [("f", {"x": 1})]),
    ('[TOOL_CALLS]f[ARGS]{"x": 1}', "mistral_args", [("f", {"x": 1})]),
    (
        '[TOOL_CALLS]f[ARGS]{"x": 1}[TOOL_CALLS]g[CALL_ID]a1b2c3d4e[ARGS] {"y": [1, 2]}',
        "mistral_args",
        [("f", {"x": 1}), ("g", {"y": [1, 2]})],
    ),
    ('<|python_tag|>{"name": "f", "parameters": {"x": 1}}<|eom_id|>', "llama_python_tag", [("f", {"x": 1})]),
    (
        '<|python_tag|>{"name": "f", "parameters": {"x": 1}}; {"name": "g", "parameters": {}}',
        "llama_python_tag",
        [("f", {"x": 1}), ("g", {})],
    ),
    ('{"name": "f", "parameters": {"x": 1}}', "llama3_json", [("f", {"x": 1})]),
    ('{"name": "f", "arguments": {"x": 1}}', "json", [("f", {"x": 1})]),
    ('```json\n{"name": "f", "arguments": {"x": 1}}\n```', "code_fence", [("f", {"x": 1})]),
    ('Sure: {"name": "f", "arguments": {"x": 1}}', "embedded", [("f", {"x": 1})]),
]


@pytest.mark.parametrize(("text", "call_format", "calls"), NATIVE)
def test_every_native_format_is_read_and_named(text: str, call_format: str, calls: list[Any]) -> None:
    parsed = parse_tool_calls(text)
    assert parsed.format == call_format and call_format in CALL_FORMATS
    assert [(c.name, c.arguments) for c in parsed.calls] == calls
    assert parsed.explicit


def test_plain_text_has_no_format() -> None:
    parsed = parse_tool_calls("No tool is needed; the answer is 4.")
    assert parsed.format is None and not parsed.explicit and parsed.calls == []


BROKEN = [
    ('<tool_call>{"name": "f", "arguments": {}}</tool_call>[TOOL_CALLS][{"name": "g"}]', "more than one format"),
    ('[TOOL_CALLS][{"name": "f"}] <|python_tag|>{"name": "g", "parameters": {}}', "more than one format"),
    ("[TOOL_CALLS]", "nothing readable after"),
    ("[TOOL_CALLS] I would call f", "nothing readable after"),
    ('[TOOL_CALLS]f{"x": 1}', "nothing readable after"),
    ('[TOOL_CALLS]f[ARGS]{"x": ', "malformed JSON after [ARGS]"),
    ('[TOOL_CALLS][{"name": "f", "arguments": ', "malformed JSON"),
    ("[TOOL_CALLS]" + "[" * (MAX_JSON_DEPTH + 1), "deeper than"),
    ("[TOOL_CALLS]f[ARGS]" + '{"a":' * (MAX_JSON_DEPTH + 1), "deeper than"),
    ("<|python_tag|>", "nothing after"),
    ("<|python_tag|>print(1)", "malformed JSON"),
    ('<|python_tag|>{"parameters": {}}', '"name"'),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_or_hedged_native_calls_are_refused(text: str, message: str) -> None:
    with pytest.raises(ToolCallParseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_tool_calls(text)


def test_native_limits_hold_before_decoding() -> None:
    with pytest.raises(ToolCallParseError, match="characters"):
        parse_tool_calls("[TOOL_CALLS]" + " " * 200, max_chars=100)
    with pytest.raises(ToolCallParseError, match="more than 3 calls"):
        parse_tool_calls("[TOOL_CALLS]" + 'f[ARGS]{"x": 1}' * 10, max_calls=3)
    with pytest.raises(ToolCallParseError, match="more than 2 calls"):
        parse_tool_calls("<|python_tag|>" + '{"name": "f", "parameters": {}};' * 5, max_calls=2)


# -- ToolCall-v0: every format scores, hedging scores 0 with a reason ------------------------------


def _step(env: gym.Env, action: str) -> tuple[float, dict[str, Any]]:
    env.reset(options={"task_id": 0})
    _, reward, _, _, info = env.step(action)
    return float(reward), info


@pytest.mark.parametrize(
    ("action", "call_format"),
    [
        (f"<tool_call>{json.dumps({'name': 'date_diff', 'arguments': DIFF})}</tool_call>", "hermes"),
        (f"<|python_tag|>{json.dumps({'name': 'date_diff', 'parameters': DIFF})}", "llama_python_tag"),
        (json.dumps({"name": "date_diff", "parameters": DIFF}), "llama3_json"),
        (f"[TOOL_CALLS]{json.dumps([{'name': 'date_diff', 'arguments': DIFF}])}", "mistral"),
        (f"[TOOL_CALLS]date_diff[ARGS]{json.dumps(DIFF)}", "mistral_args"),
    ],
)
def test_tool_call_env_scores_every_native_format(action: str, call_format: str) -> None:
    env = gym.make("grpo/ToolCall-v0", categories=["simple"])
    reward, info = _step(env, action)
    assert (reward, info["reason"], info["call_format"]) == (1.0, "correct", call_format)


def test_hedging_across_formats_scores_zero_with_a_reason() -> None:
    env = gym.make("grpo/ToolCall-v0", categories=["simple"])
    right = json.dumps({"name": "date_diff", "arguments": DIFF})
    wrong = json.dumps([{"name": "date_diff", "arguments": {**DIFF, "end": "2025-10-31"}}])
    reward, info = _step(env, f"<tool_call>{right}</tool_call>\n[TOOL_CALLS]{wrong}")
    assert (reward, info["reason"], info["call_format"]) == (0.0, "parse_failed", None)
    assert "more than one format" in info["message"]
    # two answers in one format are two calls: the count is wrong
    reward, info = _step(env, f"[TOOL_CALLS][{right}, {wrong[1:-1]}]")
    assert (reward, info["reason"], info["call_format"]) == (0.0, "wrong_count", "mistral")


# -- the envs hand their specs over in structured form ---------------------------------------------


def test_default_prompt_is_unchanged_plain_text() -> None:
    for env_id in ("grpo/ToolCall-v0", "grpo/ToolUse-v0"):
        text, text_info = gym.make(env_id).reset(seed=3)
        templated, info = gym.make(env_id, tool_prompt="template").reset(seed=3)
        assert type(text) is str and "tools" not in text_info
        assert isinstance(templated, ToolPrompt) and templated == text  # the same text, plus the chat form
        assert info["tools"] == list(templated.tools)


def test_template_prompt_carries_request_protocol_and_specs() -> None:
    env = gym.make("grpo/ToolCall-v0", tool_prompt="template", abstain="plain_text", categories=["simple"])
    prompt, info = env.reset(options={"task_id": 0})
    system, user = prompt.messages
    assert system["role"] == "system" and "reply in plain text" in system["content"]
    assert user == {"role": "user", "content": "How many days are there from 2024-09-04 to 2025-10-30?"}
    assert "date_diff" not in user["content"]  # the specs travel in tools=, not in the messages
    task = env.unwrapped.task
    assert info["tools"] == env.unwrapped.tools_for(task) == chat_template_tools(task.reference["tools"])
    (tool,) = info["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "date_diff"
    assert tool["function"]["parameters"]["required"] == ["start", "end"]


def test_bfcl_types_are_json_schema_in_the_template_specs() -> None:
    env = gym.make("grpo/ToolCall-v0", bfcl="tests/fixtures/bfcl/BFCL_v4_simple_python.json", tool_prompt="template")
    prompt, info = env.reset(options={"task_id": 0})
    assert prompt.messages[-1]["content"] == prompt_request(str(prompt))
    assert all(t["function"]["parameters"]["type"] == "object" for t in info["tools"])  # BFCL says "dict"


def test_a_task_written_another_way_keeps_its_whole_prompt() -> None:
    specs = [{"name": "f", "description": "f", "parameters": {"type": "object", "properties": {}}}]
    task = Task(prompt="Call f, please.", reference={"tools": specs, "ground_truth": [{"f": {}}]}, id="t")
    env = ToolCallEnv([task], tool_prompt="template")
    prompt, _ = env.reset(seed=0)
    assert prompt.messages == ({"role": "user", "content": "Call f, please."},)
    assert env.step("[TOOL_CALLS]f[ARGS]{}")[1] == 1.0


def test_template_prompts_pass_check_env_and_survive_pickling() -> None:
    for env_id in ("grpo/ToolCall-v0", "grpo/ToolUse-v0"):
        env = gym.make(env_id, tool_prompt="template")
        check_env(env.unwrapped, skip_render_check=True)
        prompt, _ = env.reset(seed=1)
        again = pickle.loads(pickle.dumps(prompt))
        assert type(again) is ToolPrompt and again == prompt
        assert (again.messages, again.tools) == (prompt.messages, prompt.tools)


def test_unknown_tool_prompt_is_a_user_error() -> None:
    for env_id in ("grpo/ToolCall-v0", "grpo/ToolUse-v0"):
        with pytest.raises(ValueError, match="tool_prompt='html' is not supported"):
            gym.make(env_id, tool_prompt="html")


def test_tool_use_template_mode_conversation() -> None:
    env = gym.make("grpo/ToolUse-v0", tool_prompt="template", isolate_tools=False)
    prompt, info = env.reset(options={"task_id": 0})
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert {t["function"]["name"] for t in info["tools"]} == {
        t["function"]["name"] for t in env.unwrapped.tools_for(env.unwrapped.task)
    }
    calls = [{"name": "calculate", "arguments": {"expression": "16 - 33 - 46"}}]
    obs, _, terminated, _, info = env.step("[TOOL_CALLS]" + json.dumps(calls))
    assert (obs, terminated, info["reason"]) == ("-63", False, "tool_call")  # bare: the template marks it
    assert info["call_format"] == "mistral"
    both = [*calls, {"name": "calculate", "arguments": {"expression": "1/0"}}]
    obs, _, _, _, info = env.step("[TOOL_CALLS]" + json.dumps(both))
    assert obs.splitlines() == ["calculate: -63", "calculate: Error: division by zero"]
    obs, _, terminated, _, info = env.step('<|python_tag|>{"name": "calculate", "parameters": {"expression": "2*3"}}')
    assert (obs, terminated, info["call_format"]) == ("6", False, "llama_python_tag")
    obs, _, terminated, _, info = env.step("[TOOL_CALLS] calculate(2)")  # a broken native call is a failed call
    assert (terminated, info["reason"]) == (False, "parse_failed") and obs.startswith("Error: ")
    _, reward, terminated, _, info = env.step("Answer: -63")
    assert (reward, terminated) == (1.0, True)
    assert [m["role"] for m in info["messages"][:3]] == ["system", "user", "assistant"]


# -- the chat templates: specs rendered natively, calls they write read back -----------------------


@pytest.fixture
def policy() -> Any:
    pytest.importorskip("torch")
    from grpo_agent.policies.causal_lm import CausalLMPolicy
    from grpo_agent.policies.tiny import TinyConfig, build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    small = TinyConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=4096
    )
    return CausalLMPolicy(None, None, build_tiny_model(tok, small, seed=0), tok, device="cpu", max_new_tokens=3)


def _template_prompt() -> ToolPrompt:
    prompt, _ = gym.make("grpo/ToolCall-v0", tool_prompt="template", categories=["simple"]).reset(
        options={"task_id": 0}
    )
    assert isinstance(prompt, ToolPrompt)
    return prompt


MARKS = {"qwen2_5": "<tools>", "llama3_1": "Environment: ipython", "mistral": "[AVAILABLE_TOOLS]"}


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_policy_renders_specs_through_a_tool_template(policy: Any, name: str) -> None:
    policy.tokenizer.chat_template = template(name)
    prompt = _template_prompt()
    text = policy.render(prompt)
    assert MARKS[name] in text and '"name": "date_diff"' in text
    assert "How many days are there from 2024-09-04 to 2025-10-30?" in text
    assert "You can call these tools" not in text  # not the pasted-in text prompt
    assert text == policy.tokenizer.apply_chat_template(
        list(prompt.messages), tools=list(prompt.tools), tokenize=False, add_generation_prompt=True
    )
    assert policy.encode_context(prompt) == policy.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_policy_falls_back_to_the_text_prompt_without_tool_support(policy: Any) -> None:
    prompt = _template_prompt()
    plain = str(prompt)
    assert policy.render(prompt) == policy.render(plain)  # the tiny template ignores tools=
    assert "You can call these tools" in policy.render(prompt)
    policy.tokenizer.chat_template = "{{ raise_exception('no tools here') if tools else '' }}{{ messages[0].content }}"
    assert policy.render(prompt) == plain  # a template that fails on tools is one without them
    policy.tokenizer.chat_template = None
    assert policy.render(prompt) == plain + "\n"
    policy.tokenizer.chat_template = template("qwen2_5")  # the probe is redone for a new template
    assert "<tools>" in policy.render(prompt)


def test_sampling_and_env_turns_with_a_tool_template(policy: Any) -> None:
    policy.tokenizer.chat_template = template("mistral")
    batch = policy.sample([_template_prompt()], n=2)
    assert len(batch.actions) == 2
    # Mistral's template needs a call id on tool results: the env turn falls back to a user turn
    assert "[INST] 42[/INST]" in policy.tokenizer.decode(policy.encode_env_turn("42"))
    policy.tokenizer.chat_template = template("qwen2_5")
    assert "<tool_response>\n42\n</tool_response>" in policy.tokenizer.decode(policy.encode_env_turn("42"))


@pytest.mark.parametrize(
    ("name", "call_format"), [("qwen2_5", "hermes"), ("llama3_1", "llama3_json"), ("mistral", "mistral")]
)
def test_calls_written_by_each_template_are_read_back(name: str, call_format: str) -> None:
    """What a fine-tuned model learned to write is what its template writes for an assistant's
    tool call: render one, cut out the assistant's part, and score it."""
    from grpo_agent.policies.tiny import build_char_tokenizer

    tok = build_char_tokenizer()
    tok.chat_template = template(name)
    prompt = _template_prompt()
    call = {"id": "abc123DEF", "type": "function", "function": {"name": "date_diff", "arguments": DIFF}}
    head = list(prompt.messages)
    before = tok.apply_chat_template(head, tools=list(prompt.tools), tokenize=False, add_generation_prompt=True)
    after = tok.apply_chat_template(
        [*head, {"role": "assistant", "content": "", "tool_calls": [call]}], tools=list(prompt.tools), tokenize=False
    )
    if name == "mistral":  # its system message joins the *last* user turn, so the heads differ
        completion = after.rsplit("[/INST]", 1)[1]
    else:
        assert after.startswith(before)
        completion = after[len(before) :]
    env = gym.make("grpo/ToolCall-v0", categories=["simple"])
    reward, info = _step(env, completion)
    assert (reward, info["call_format"]) == (1.0, call_format), completion


def test_the_request_is_recovered_from_every_generated_prompt() -> None:
    """The template form rests on reading the request back out of the text prompt: check it
    over every category and level of both generators (the prompt is rebuilt exactly)."""
    from grpo_envs.tasks.tool_call import ToolCallTasks, ToolUseTasks
    from grpo_envs.tasks.tool_format import TOOL_USE_PROTOCOL, format_tool_prompt, tool_call_protocol

    calls = ToolCallTasks(60, seed=5, level=[1, 2, 3])
    uses = ToolUseTasks(30, seed=5, level=[1, 2, 3])
    for task in [calls[i] for i in range(len(calls))]:
        request = prompt_request(task.prompt)
        assert request is not None
        assert format_tool_prompt(request, task.reference["tools"], tool_call_protocol()) == task.prompt
    for task in [uses[i] for i in range(len(uses))]:
        request = prompt_request(task.prompt)
        assert request is not None and task.prompt.endswith(request)
        assert TOOL_USE_PROTOCOL in task.prompt and TOOL_USE_PROTOCOL not in request
    assert prompt_request("Just a question?") is None
    assert as_tool_prompt("Just a question?", [], "sys").messages == ({"role": "user", "content": "Just a question?"},)


def test_completion_text_keeps_tool_call_markers_and_drops_the_framing_tokens() -> None:
    from grpo_agent.policies.causal_lm import CausalLMPolicy
    from grpo_agent.policies.tiny import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["[TOOL_CALLS]"]})
    policy = CausalLMPolicy.from_pretrained(build_tiny_model(tok), tokenizer=tok, max_new_tokens=4)
    marker = tok.convert_tokens_to_ids("[TOOL_CALLS]")
    body = tok('[{"name": "f", "arguments": {}}]', add_special_tokens=False)["input_ids"]
    ids = [tok.bos_token_id, marker, *body, tok.eos_token_id, tok.pad_token_id]
    assert policy.completion_text(ids) == '[TOOL_CALLS][{"name": "f", "arguments": {}}]'
