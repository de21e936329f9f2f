import json

from common.respond import RespondConfig, respond


def test_responses_cover_each_unique_prompt_once_and_a_greedy_rerun_repeats_them(tmp_path, tiny_llama):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"prompt": "Question: 2+2?\n\nAnswer: "}, {"prompt": "Question: 2+2?\n\nAnswer: "},
            {"prompt": "Question: a colour?\n\nAnswer: "}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RespondConfig(model=tiny_llama, prompts=str(prompts), output_dir=str(tmp_path / "out"), template="plain",
                        max_new_tokens=4)
    assert respond(cfg)["n_prompts"] == 2
    first = (tmp_path / "out" / "responses.jsonl").read_text()
    assert [json.loads(line)["prompt"] for line in first.splitlines()] == [rows[0]["prompt"], rows[2]["prompt"]]
    cfg.overwrite = True
    respond(cfg)
    assert (tmp_path / "out" / "responses.jsonl").read_text() == first
