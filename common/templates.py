"""Chat templates by LLaMA-Factory name, and the prompt/response rendering every stage shares.

A template turns messages into the exact text a chat model was trained on. Stages split that text in two:
``render_prompt`` (everything up to and including the assistant header, what generation starts from) and
``render_response`` (the reply plus the template's end-of-turn text, the part that is trained or scored). The
end-of-turn text must be trained, or the fine-tuned model never learns to stop.

Names and formats follow LLaMA-Factory's ``src/llamafactory/data/template.py`` (the RLLR and RLCHF code bases are
LLaMA-Factory forks), checked against each model card; where LLaMA-Factory and the vendor differ we say which we
follow. Two extra names: ``tokenizer`` (the model's own ``chat_template``) and ``plain`` (no chat format at all,
for data like ``"\\n\\nHuman: ...\\n\\nAssistant:"`` or ``"Question: ...\\n\\nAnswer: "``).

Placeholders in formats: ``{content}`` (the message), ``{eos}`` (the tokenizer's EOS text, ``</s>`` without a
tokenizer). Special tokens are written as text (``<s>``, ``<|eot_id|>``) and tokenised with
``add_special_tokens=False``, so they appear exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.config import UserError

Message = dict[str, str]
_SENTINEL = "\x00RLHF-REPRO-CONTENT\x00"


@dataclass(frozen=True)
class Template:
    """One chat format. A finished assistant turn is ``assistant_format``; the last one also gets ``final_suffix``."""

    name: str
    prefix: str = ""  # once at the start of the text (BOS, ChatGLM's [gMASK]sop)
    system_format: str = "{content}"
    user_format: str = "{content}"  # a user turn followed by the assistant header
    assistant_format: str = "{content}"  # a finished assistant turn, its end-of-turn text included
    final_suffix: str = ""  # LLaMA-Factory's `efficient_eos`: EOS only after the last assistant turn
    separator: str = ""  # LLaMA-Factory's `format_separator`: written before every user turn after the first
    default_system: str = ""
    system_in_first_user: bool = False  # LLaMA-Factory's Llama2Template: system text glued into the first user turn
    stop_words: tuple[str, ...] = ()  # extra strings that end generation, besides the tokenizer's EOS
    source: str = ""  # model card / reference the format was checked against


TEMPLATES: dict[str, Template] = {}
# Names whose rendering is not a fixed format but comes from the tokenizer.
DYNAMIC = ("tokenizer", "plain")


def register_template(t: Template) -> None:
    if t.name in TEMPLATES or t.name in DYNAMIC:
        raise UserError(f"template {t.name!r} is already registered; pick another name")
    TEMPLATES[t.name] = t


def get_template(name: str) -> Template:
    if name in DYNAMIC:
        raise UserError(f"template {name!r} has no fixed format: it needs a tokenizer (use render_* functions)")
    if name not in TEMPLATES:
        raise UserError(
            f"template {name!r} is not registered; known: {sorted([*TEMPLATES, *DYNAMIC])}. "
            "Register it in common/templates.py."
        )
    return TEMPLATES[name]


def template_names() -> list[str]:
    return sorted([*TEMPLATES, *DYNAMIC])


# --- The registry. -------------------------------------------------------------------------------------------

register_template(Template(
    name="llama2",
    prefix="",
    system_format="<<SYS>>\n{content}\n<</SYS>>\n\n",
    user_format="<s>[INST] {content} [/INST]",
    # Meta's reference chat_completion (llama/generation.py) writes f"{B_INST} {q} {E_INST} {a} " + EOS, i.e. a space
    # before the answer and before </s>. LLaMA-Factory encodes the answer separately (sentencepiece adds the space).
    assistant_format=" {content} </s>",
    system_in_first_user=True,
    source="meta-llama/Llama-2-7b-chat-hf model card; LLaMA-Factory `llama2`",
))
register_template(Template(
    name="llama3",
    prefix="<|begin_of_text|>",
    system_format="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
    user_format="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n",
    assistant_format="{content}<|eot_id|>",
    stop_words=("<|eot_id|>", "<|eom_id|>"),
    source="meta-llama/Meta-Llama-3-8B-Instruct model card (prompt format); LLaMA-Factory `llama3`",
))
register_template(Template(
    name="chatglm3",
    prefix="[gMASK]sop",
    system_format="<|system|>\n{content}",
    user_format="<|user|>\n{content}<|assistant|>",
    assistant_format="\n{content}",
    final_suffix="{eos}",
    stop_words=("<|user|>", "<|observation|>"),
    source="THUDM/chatglm3-6b PROMPT.md; LLaMA-Factory `chatglm3` (efficient_eos)",
))
register_template(Template(
    name="qwen",
    system_format="<|im_start|>system\n{content}<|im_end|>\n",
    user_format="<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
    assistant_format="{content}<|im_end|>\n",
    # Qwen1.5/Qwen2 cards; Qwen2.5 uses "You are Qwen, created by Alibaba Cloud. ..." (pass system= for it).
    default_system="You are a helpful assistant.",
    stop_words=("<|im_end|>",),
    source="Qwen/Qwen1.5-7B-Chat tokenizer_config chat_template (ChatML); LLaMA-Factory `qwen`",
))
register_template(Template(
    name="baichuan2",
    # <reserved_106>/<reserved_107> are Baichuan2's user/assistant tokens (generation_config user_token_id 195,
    # assistant_token_id 196); a system message is plain text in front.
    user_format="<reserved_106>{content}<reserved_107>",
    assistant_format="{content}",
    final_suffix="{eos}",
    source="baichuan-inc/Baichuan2-7B-Chat generation_utils.build_chat_input; LLaMA-Factory `baichuan2`",
))
register_template(Template(
    name="mistral",
    prefix="<s>",
    system_format="{content}\n\n",
    user_format="[INST] {content}[/INST]",
    assistant_format=" {content}</s>",
    system_in_first_user=True,
    source="mistralai/Mistral-7B-Instruct-v0.2 model card ([INST] format); LLaMA-Factory `mistral`",
))
register_template(Template(
    name="default",
    system_format="System: {content}{eos}\n",
    user_format="Human: {content}{eos}\nAssistant:",
    assistant_format="{content}{eos}\n",
    source="LLaMA-Factory `default` (used for BLOOM and models without a chat format)",
))
register_template(Template(
    name="default_v0.6",
    # LLaMA-Factory v0.6's `default` (src/llmtuner/data/template.py at tag v0.6.1), the format RLDF's RM, SFT and
    # BBQ predictions were run with (Hunter-Wrynn/RLDF RL/reward-model-training/*.sh, --template default). That
    # version writes no BOS; ours is added as for every template (encode_prompt_response).
    system_format="{content}\n",
    user_format="Human: {content}\nAssistant: ",
    assistant_format="{content}{eos}",
    separator="\n",
    source="LLaMA-Factory v0.6.1 `default` (RLDF's LLaMA-Factory runs)",
))
register_template(Template(
    name="gemma",
    prefix="<bos>",
    system_format="{content}\n\n",
    user_format="<start_of_turn>user\n{content}<end_of_turn>\n<start_of_turn>model\n",
    assistant_format="{content}<end_of_turn>\n",
    system_in_first_user=True,  # Gemma has no system role
    stop_words=("<end_of_turn>",),
    source="google/gemma-3-12b-it model card (turn format); LLaMA-Factory `gemma`",
))


# --- Rendering. ----------------------------------------------------------------------------------------------


def _eos_text(tokenizer: Any) -> str:
    eos = getattr(tokenizer, "eos_token", None) if tokenizer is not None else None
    return eos if eos else "</s>"


def _fill(fmt: str, content: str, tokenizer: Any) -> str:
    # str.replace, not str.format: message text may contain braces.
    return fmt.replace("{eos}", _eos_text(tokenizer)).replace("{content}", content)


def as_messages(prompt: str | list[Message], where: str = "prompt") -> list[Message]:
    """A str prompt is one user turn; a list must be role/content messages ending with a user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise UserError(f"{where}: expected a string or a non-empty list of messages, got {type(prompt).__name__}")
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise UserError(f"{where}[{i}]: expected {{'role': system|user|assistant, 'content': str}}, got {m!r}")
    return list(prompt)


def _check_order(messages: list[Message], where: str) -> None:
    roles = [m["role"] for m in messages]
    body = roles[1:] if roles and roles[0] == "system" else roles
    if "system" in body:
        raise UserError(f"{where}: a system message may only come first (roles: {roles})")
    for i, r in enumerate(body):
        if r != ("user" if i % 2 == 0 else "assistant"):
            raise UserError(f"{where}: turns must alternate user/assistant starting with user (roles: {roles})")


def _render_fixed(t: Template, messages: list[Message], system: str | None, tokenizer: Any,
                  add_final_suffix: bool) -> str:
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    system = t.default_system if system is None else system
    out = [_fill(t.prefix, "", tokenizer)]
    if system and not t.system_in_first_user:
        out.append(_fill(t.system_format, system, tokenizer))
    for i, m in enumerate(messages):
        if m["role"] == "user":
            content = m["content"]
            if i > 0:
                out.append(t.separator)
            if i == 0 and system and t.system_in_first_user:
                content = _fill(t.system_format, system, tokenizer) + content
            out.append(_fill(t.user_format, content, tokenizer))
        else:
            out.append(_fill(t.assistant_format, m["content"], tokenizer))
    if add_final_suffix and messages and messages[-1]["role"] == "assistant":
        out.append(_fill(t.final_suffix, "", tokenizer))
    return "".join(out)


def _need_chat_template(tokenizer: Any) -> None:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise UserError("template 'tokenizer' needs a tokenizer that ships a chat_template; this one has none. "
                        "Set template to one of " + str(sorted(TEMPLATES)))


def _apply(tokenizer: Any, messages: list[Message], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _with_system(messages: list[Message], system: str | None) -> list[Message]:
    if system is None or (messages and messages[0]["role"] == "system"):
        return messages
    return [{"role": "system", "content": system}, *messages]


def render_prompt(prompt: str | list[Message], template: str, tokenizer: Any = None,
                  system: str | None = None) -> str:
    """Text up to and including the assistant header, ready for generation. A list prompt must end with a user turn;
    ``system`` replaces the template's default system message (a leading system message in the list wins)."""
    if template == "plain":
        # Generators always pass conversations; a single user turn is the same thing as the bare prompt text.
        if isinstance(prompt, list) and len(prompt) == 1 and prompt[0].get("role") == "user":
            prompt = prompt[0]["content"]
        if not isinstance(prompt, str) or system is not None:
            raise UserError("template 'plain' takes the prompt text as is: a string or one user turn, no system")
        return prompt
    messages = as_messages(prompt)
    _check_order(messages, "prompt")
    if messages[-1]["role"] != "user":
        raise UserError(f"prompt: the last message must be a user turn, got {messages[-1]['role']!r}")
    if template == "tokenizer":
        _need_chat_template(tokenizer)
        return _apply(tokenizer, _with_system(messages, system), True)
    return _render_fixed(get_template(template), messages, system, tokenizer, add_final_suffix=False)


def response_affixes(template: str, tokenizer: Any = None) -> tuple[str, str]:
    """(text before the reply, end-of-turn text after it) as the template writes the final assistant turn."""
    if template == "plain":
        if tokenizer is None or not getattr(tokenizer, "eos_token", None):
            raise UserError("template 'plain' appends the tokenizer's EOS to responses: pass a tokenizer with one")
        return "", tokenizer.eos_token
    if template == "tokenizer":
        _need_chat_template(tokenizer)
        user = [{"role": "user", "content": "hi"}]
        head = _apply(tokenizer, user, True)
        full = _apply(tokenizer, [*user, {"role": "assistant", "content": _SENTINEL}], False)
        if not full.startswith(head) or _SENTINEL not in full:
            raise UserError("the tokenizer's chat_template does not render a reply after its generation prompt; "
                            "set a named template instead (" + ", ".join(sorted(TEMPLATES)) + ")")
        before, after = full[len(head):].split(_SENTINEL, 1)
        return before, after
    t = get_template(template)
    before, after = _fill(t.assistant_format, _SENTINEL, tokenizer).split(_SENTINEL, 1)
    return before, after + _fill(t.final_suffix, "", tokenizer)


def render_response(response: str, template: str, tokenizer: Any = None) -> str:
    """The reply as the final assistant turn: ``response`` + end-of-turn text (trained, so the model learns to stop)."""
    before, after = response_affixes(template, tokenizer)
    return before + response + after


def end_of_turn(template: str, tokenizer: Any = None) -> str:
    return response_affixes(template, tokenizer)[1]


def render_conversation(messages: list[Message], template: str, tokenizer: Any = None) -> str:
    """A whole conversation. Ending with an assistant turn gives prompt + response; ending with a user turn gives a
    prompt (with the assistant header)."""
    messages = as_messages(messages, "messages")
    if messages[-1]["role"] == "assistant":
        return render_prompt(messages[:-1], template, tokenizer) + render_response(
            messages[-1]["content"], template, tokenizer)
    return render_prompt(messages, template, tokenizer)


def stop_strings(template: str, tokenizer: Any = None) -> list[str]:
    """Strings that end generation for this template (its stop words and the end-of-turn text, stripped)."""
    words = list(TEMPLATES[template].stop_words) if template in TEMPLATES else []
    eot = end_of_turn(template, tokenizer).strip()
    if eot and eot not in words:
        words.append(eot)
    return words


# --- Tokenisation with the prompt masked. ------------------------------------------------------------------------


def _adds_bos(tokenizer: Any) -> bool:
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids two encoded sequences share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def encode_prompt_response(tokenizer: Any, prompt: str | list[Message], response: str, template: str,
                           max_length: int, system: str | None = None) -> dict[str, list[int]]:
    """Token ids of prompt + response with the prompt masked out of the labels (-100).

    Prompt and response are tokenised separately (so the boundary is exact) without special tokens; a BOS is put in
    front when the tokenizer normally adds one and the template did not write it. The response's end-of-turn text,
    EOS included, is labelled (trained) even when EOS is also the pad token.

    Truncation, when prompt + response exceed ``max_length``: the response keeps
    ``max(max_length - len(prompt), min(len(response), max_length // 2))`` tokens and the prompt the rest; each is
    cut at its end, so the prompt's start (system message, instruction) survives. A cut response loses its
    end-of-turn text, as it should: the reply did not end there.
    """
    if max_length < 2:
        raise UserError(f"max_length must be at least 2, got {max_length}")
    prompt_text = render_prompt(prompt, template, tokenizer, system)
    response_text = render_response(response, template, tokenizer)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response_text, add_special_tokens=False)["input_ids"]
    if _adds_bos(tokenizer) and (not prompt_ids or prompt_ids[0] != tokenizer.bos_token_id):
        prompt_ids = [tokenizer.bos_token_id, *prompt_ids]
    if len(prompt_ids) + len(response_ids) > max_length:
        keep_response = max(max_length - len(prompt_ids), min(len(response_ids), max_length // 2))
        prompt_ids = prompt_ids[: max_length - keep_response]
        response_ids = response_ids[:keep_response]
    input_ids = prompt_ids + response_ids
    return {
        "input_ids": input_ids,
        "attention_mask": [1] * len(input_ids),
        "labels": [-100] * len(prompt_ids) + list(response_ids),
    }
