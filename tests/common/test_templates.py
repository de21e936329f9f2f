"""Chat templates: each rendering pinned to a hand-written string, parity with SmolLM2's own chat template, and the
end-of-turn token inside the trained (label != -100) part of an encoded example."""

from __future__ import annotations

import pytest

from common.config import UserError
from common.models import load_tokenizer
from common.templates import (
    TEMPLATES,
    Template,
    encode_prompt_response,
    end_of_turn,
    get_template,
    register_template,
    render_conversation,
    render_prompt,
    render_response,
)

# (prompt with system "S" and user "Q", response "A"), written by hand from each model card / LLaMA-Factory.
LLAMA3_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)
EXPECTED = {
    "llama2": ("<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ [/INST]", " A </s>"),
    "llama3": (
        LLAMA3_PROMPT,
        "A<|eot_id|>",
    ),
    "chatglm3": ("[gMASK]sop<|system|>\nS<|user|>\nQ<|assistant|>", "\nA</s>"),
    "qwen": ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", "A<|im_end|>\n"),
    "baichuan2": ("S<reserved_106>Q<reserved_107>", "A</s>"),
    "mistral": ("<s>[INST] S\n\nQ[/INST]", " A</s>"),
    "default": ("System: S</s>\nHuman: Q</s>\nAssistant:", "A</s>\n"),
    "default_v0.6": ("S\nHuman: Q\nAssistant: ", "A</s>"),
    "gemma": ("<bos><start_of_turn>user\nS\n\nQ<end_of_turn>\n<start_of_turn>model\n", "A<end_of_turn>\n"),
}


@pytest.fixture(scope="module")
def tok(tiny_llama):
    return load_tokenizer(tiny_llama)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rendering_matches_hand_written_string(name):
    prompt, response = EXPECTED[name]
    assert render_prompt("Q", name, system="S") == prompt
    assert render_response("A", name) == response
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "A"}]
    assert render_conversation(messages, name) == prompt + response


def test_llama2_multi_turn_follows_meta_reference_format():
    messages = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "Q2"}]
    assert render_prompt(messages, "llama2") == "<s>[INST] Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]"


def test_separator_comes_before_every_later_user_turn():
    # LLaMA-Factory v0.6: turn 0 = system + query, turn t = separator + query (Template._encode)
    messages = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "Q2"}]
    assert render_prompt(messages, "default_v0.6") == "Human: Q1\nAssistant: A1</s>\nHuman: Q2\nAssistant: "


def test_efficient_eos_templates_end_only_the_last_turn_with_eos():
    messages = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]
    expected = "[gMASK]sop<|user|>\nQ1<|assistant|>\nA1<|user|>\nQ2<|assistant|>\nA2</s>"
    assert render_conversation(messages, "chatglm3") == expected


def test_qwen_default_system_is_used_when_none_given():
    assert render_prompt("Q", "qwen").startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert render_prompt("Q", "qwen", system="").startswith("<|im_start|>user\n")


def test_chatml_matches_smollm2_chat_template_as_text_and_ids(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."}]
    own = tok.apply_chat_template(messages, tokenize=False)
    for name in ("qwen", "tokenizer"):
        text = render_conversation(messages, name, tok)
        assert text == own
        assert tok(text, add_special_tokens=False)["input_ids"] == tok(own, add_special_tokens=False)["input_ids"]
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert render_prompt(messages[:2], "tokenizer", tok) == prompt
    assert render_prompt("Hi there", "tokenizer", tok) == tok.apply_chat_template(
        [{"role": "user", "content": "Hi there"}], tokenize=False, add_generation_prompt=True)


@pytest.mark.parametrize("name", ["qwen", "tokenizer", "default", "plain", "chatglm3"])
def test_end_of_turn_token_is_trained(tok, name):
    # SmolLM2's pad token is its EOS (<|im_end|>): a collator that masks pad ids would untrain it.
    assert tok.pad_token_id == tok.eos_token_id
    enc = encode_prompt_response(tok, "What is 2+2?", "4", name, max_length=128)
    trained = [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != -100]
    assert trained[0] != tok.eos_token_id and tok.eos_token_id in trained
    assert tok.decode(trained).startswith(render_response("4", name, tok).split("4")[0] + "4")
    assert end_of_turn(name, tok).strip() in tok.decode(trained)
    n_prompt = len(tok(render_prompt("What is 2+2?", name, tok), add_special_tokens=False)["input_ids"])
    assert enc["labels"][:n_prompt] == [-100] * n_prompt


def test_plain_keeps_prompt_text_and_appends_eos(tok):
    text = "\n\nHuman: hi\n\nAssistant:"
    assert render_prompt(text, "plain", tok) == text
    assert render_response(" hello", "plain", tok) == " hello<|im_end|>"
    assert render_prompt([{"role": "user", "content": text}], "plain", tok) == text
    with pytest.raises(UserError, match="plain"):
        render_prompt([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                       {"role": "user", "content": "again"}], "plain", tok)
    with pytest.raises(UserError, match="plain"):
        render_prompt(text, "plain", tok, system="be brief")


def test_truncation_keeps_prompt_start_and_cuts_response_end(tok):
    prompt = "one two three four five six seven eight nine ten"
    enc = encode_prompt_response(tok, prompt, "alpha beta gamma delta epsilon zeta eta theta", "plain", max_length=12)
    assert len(enc["input_ids"]) == 12
    n_resp = sum(lab != -100 for lab in enc["labels"])
    assert n_resp == 6  # response gets max_length // 2 when both are long
    assert tok.decode(enc["input_ids"][:3]) == "one two three"
    assert tok.eos_token_id not in enc["input_ids"]  # the cut reply did not end


def test_registry_refuses_duplicates_and_names_known_templates():
    with pytest.raises(UserError, match="already registered"):
        register_template(Template(name="qwen"))
    with pytest.raises(UserError, match=r"not registered; known: .*'llama2'.*'tokenizer'"):
        get_template("lama2")
    assert set(EXPECTED) <= set(TEMPLATES)


def test_tokenizer_template_needs_a_chat_template(tok):
    import copy

    bare = copy.copy(tok)
    bare.chat_template = None
    with pytest.raises(UserError, match="chat_template"):
        render_prompt("Q", "tokenizer", bare)


def test_prompt_must_end_with_user_turn():
    with pytest.raises(UserError, match="last message must be a user turn"):
        render_prompt([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "qwen")
