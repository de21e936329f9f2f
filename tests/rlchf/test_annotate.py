"""The annotation app: task files, answer validation, every route and error page, escaping, export and comparison."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from common.artifacts import read_jsonl, write_jsonl
from common.config import UserError
from rlchf.aggregate import AggregateConfig, run_aggregate
from rlchf.annotate import store
from rlchf.annotate.__main__ import main as annotate_main
from rlchf.annotate.app import TOKEN_IN_PATH, create_app
from rlchf.annotate.export import compare_panels, export_answers, pairwise_records, win_rates
from rlchf.rank import judge_rng

XSS = "<script>alert('pwned')</script>"
RANK_TASKS = [
    {"prompt_id": "p1", "prompt": "How do I boil an egg?", "chosen_id": "chosen", "rejected_id": "rejected",
     "candidates": [{"id": "chosen", "text": "Simmer it for 8 minutes."}, {"id": "rejected", "text": XSS},
                    {"id": "s0", "text": "Microwave it whole."}]},
    {"prompt_id": "p2", "prompt": [{"role": "user", "content": f"Say {XSS}"}], "chosen_id": "chosen",
     "rejected_id": "rejected", "candidates": [{"id": "chosen", "text": "No."}, {"id": "rejected", "text": "Sure"},
                                               {"id": "s0", "text": "Maybe"}]},
]
PAIRWISE_TASKS = [{"prompt_id": "q1", "prompt": "Hi", "a": {"system": "sft", "text": "Hello!"},
                   "b": {"system": "dpo", "text": "Hey, how can I help?"}}]


@pytest.fixture
def project(tmp_path):
    """A database with 2 rank tasks, 1 pairwise task and 3 annotators; yields (db path, tokens, admin token)."""
    write_jsonl(tmp_path / "rank.jsonl", RANK_TASKS)
    write_jsonl(tmp_path / "pairwise.jsonl", PAIRWISE_TASKS)
    db = tmp_path / "annotate.db"
    conn = store.connect(db)
    store.load_tasks(conn, tmp_path / "rank.jsonl", "rank")
    store.load_tasks(conn, tmp_path / "pairwise.jsonl", "pairwise")
    tokens = dict(store.create_annotators(conn, 3))
    admin = store.new_admin_token(conn)
    conn.close()
    return db, tokens, admin


@pytest.fixture
def client(project):
    app = create_app(project[0])
    app.config["TESTING"] = True
    return app.test_client()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def position_of(db, token: str, kind: str, prompt_id: str = "p1") -> int:
    conn = store.connect(db)
    me = store.annotator_for(conn, token)
    return next(t["position"] for t in store.assigned_tasks(conn, me["id"])
                if t["kind"] == kind and t["prompt_id"] == prompt_id)


def labels_of(db, token: str, prompt_id: str = "p1") -> dict[str, str]:
    """candidate id -> the label (A, B, C) this annotator sees it under."""
    conn = store.connect(db)
    me = store.annotator_for(conn, token)
    task = next(t for t in RANK_TASKS if t["prompt_id"] == prompt_id)
    return {cid: "ABC"[i] for i, cid in enumerate(store.shown_order(task, "rank", me["annotator_id"], 0))}


def submit_rank(client, db, token, ranks: dict[str, int], prompt_id: str = "p1"):
    pos = position_of(db, token, "rank", prompt_id)
    page = client.get(f"/a/{token}/task/{pos}").get_data(as_text=True)
    labels = labels_of(db, token, prompt_id)
    form = {f"rank_{labels[cid]}": str(r) for cid, r in ranks.items()}
    return client.post(f"/a/{token}/task/{pos}", data={**form, "csrf_token": csrf_of(page)})


def n_answers(db) -> int:
    return sqlite3.connect(db).execute("SELECT COUNT(*) FROM answers").fetchone()[0]


# --- task files and answer validation ---------------------------------------------------------------------------


def test_load_refuses_malformed_or_changed_tasks_naming_file_and_line(tmp_path):
    conn = store.connect(tmp_path / "x.db")
    bad = {"prompt_id": "p", "prompt": "Q", "candidates": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}
    write_jsonl(tmp_path / "dup.jsonl", [RANK_TASKS[0], bad])
    with pytest.raises(UserError, match=r"dup.jsonl:2.candidates: .*unique"):
        store.load_tasks(conn, tmp_path / "dup.jsonl", "rank")
    same = {**PAIRWISE_TASKS[0], "b": {"system": "sft", "text": "x"}}
    write_jsonl(tmp_path / "same.jsonl", [same])
    with pytest.raises(UserError, match="both 'sft'"):
        store.load_tasks(conn, tmp_path / "same.jsonl", "pairwise")
    write_jsonl(tmp_path / "ok.jsonl", RANK_TASKS)
    assert store.load_tasks(conn, tmp_path / "ok.jsonl", "rank") == {"added": 2, "already_loaded": 0}
    assert store.load_tasks(conn, tmp_path / "ok.jsonl", "rank") == {"added": 0, "already_loaded": 2}
    changed = [{**RANK_TASKS[0], "prompt": "another question"}]
    write_jsonl(tmp_path / "changed.jsonl", changed)
    with pytest.raises(UserError, match="already loaded"):
        store.load_tasks(conn, tmp_path / "changed.jsonl", "rank")


def test_rank_form_turns_equal_numbers_into_ties_and_refuses_non_rankings():
    shown = ["s0", "chosen", "rejected"]
    got = store.parse_rank_form({"rank_A": "2", "rank_B": "1", "rank_C": "2"}, shown)
    assert got["ranking"] == [["chosen"], ["s0", "rejected"]]
    assert store.parse_rank_form({"rank_A": "3", "rank_B": "1", "rank_C": "1"}, shown)["ranking"] == \
        [["chosen", "rejected"], ["s0"]]
    refusals = [({"rank_A": "1", "rank_B": "2"}, "Response C has no rank"),
                ({"rank_A": "1", "rank_B": "2", "rank_C": "4"}, "not a whole number from 1 to 3"),
                ({"rank_A": "1", "rank_B": "2", "rank_C": "x"}, "not a whole number"),
                ({"rank_A": "1", "rank_B": "2", "rank_C": "3", "rank_D": "4"}, "rank_D does not name a response"),
                ({"rank_A": "2", "rank_B": "2", "rank_C": "2"}, "same rank")]
    for form, message in refusals:
        with pytest.raises(store.AnswerError, match=message):
            store.parse_rank_form(form, shown)
    with pytest.raises(store.AnswerError, match="exactly once"):
        store.parse_rank_form({"rank_A": "1", "rank_B": "1", "rank_C": "2"}, shown, allow_ties=False)


def test_display_order_is_the_persona_judges_seeded_order_and_differs_between_annotators():
    task = {**RANK_TASKS[0], "candidates": [{"id": f"c{i}", "text": str(i)} for i in range(6)]}
    orders = {tuple(store.shown_order(task, "rank", f"h{i:02d}", 0)) for i in range(1, 21)}
    assert len(orders) > 10
    expected = [f"c{i}" for i in range(6)]
    judge_rng(0, "p1", "h01").shuffle(expected)
    assert store.shown_order(task, "rank", "h01", 0) == expected


# --- routes -----------------------------------------------------------------------------------------------------


def test_overview_shows_progress_and_only_a_real_token_opens_it(client, project):
    tokens = project[1]
    page = client.get(f"/a/{tokens['h01']}/")
    assert page.status_code == 200 and "0 / 3 answered" in page.get_data(as_text=True)
    assert client.get("/").status_code == 200
    for bad in ("x" * 32, tokens["h01"][:-1], "a" * 500):
        resp = client.get(f"/a/{bad}/")
        assert resp.status_code == 404 and "copied the whole link" in resp.get_data(as_text=True)


def test_access_log_lines_carry_no_token(project):
    line = f"GET /a/{project[1]['h01']}/task/2 HTTP/1.1 ... GET /admin/{project[2]} HTTP/1.1"
    assert TOKEN_IN_PATH.sub(r"/\1/<token>", line) == "GET /a/<token>/task/2 HTTP/1.1 ... GET /admin/<token> HTTP/1.1"


def test_security_headers_forbid_scripts_and_referrers(client, project):
    resp = client.get(f"/a/{project[1]['h01']}/")
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    assert resp.headers["Referrer-Policy"] == "no-referrer" and resp.headers["X-Content-Type-Options"] == "nosniff"


def test_model_output_with_script_tags_renders_as_text(client, project):
    db, tokens, _ = project
    for pid in ("p1", "p2"):
        html = client.get(f"/a/{tokens['h01']}/task/{position_of(db, tokens['h01'], 'rank', pid)}") \
            .get_data(as_text=True)
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
        assert "<script" not in html


def test_ranking_is_saved_redisplayed_and_advances_the_progress_bar(client, project):
    db, tokens, _ = project
    resp = submit_rank(client, db, tokens["h01"], {"chosen": 1, "s0": 1, "rejected": 3})
    assert resp.status_code == 303 and "/task/" in resp.headers["Location"]
    pos = position_of(db, tokens["h01"], "rank")
    html = client.get(f"/a/{tokens['h01']}/task/{pos}").get_data(as_text=True)
    labels = labels_of(db, tokens["h01"])
    for cid, rank in {"chosen": 1, "s0": 1, "rejected": 3}.items():
        select = re.search(rf'name="rank_{labels[cid]}".*?</select>', html, re.DOTALL).group(0)
        assert re.search(rf'<option value="{rank}" selected>', select), cid
    assert "1 / 3 answered" in html and 'id="saved"' in html


def test_resubmission_updates_the_same_row(client, project):
    db, tokens, _ = project
    submit_rank(client, db, tokens["h01"], {"chosen": 1, "s0": 2, "rejected": 3})
    submit_rank(client, db, tokens["h01"], {"chosen": 3, "s0": 2, "rejected": 1})
    rows = sqlite3.connect(db).execute("SELECT answer, revisions FROM answers").fetchall()
    assert len(rows) == 1 and rows[0][1] == 1
    assert json.loads(rows[0][0])["ranking"] == [["rejected"], ["s0"], ["chosen"]]


def test_invalid_ranking_is_refused_with_a_message_and_nothing_saved(client, project):
    db, tokens, _ = project
    resp = submit_rank(client, db, tokens["h01"], {"chosen": 1, "s0": 2})
    assert resp.status_code == 400 and "has no rank; give every response a rank" in resp.get_data(as_text=True)
    assert n_answers(db) == 0


def test_pairwise_answer_is_saved_and_a_bad_choice_refused(client, project):
    db, tokens, _ = project
    pos = position_of(db, tokens["h02"], "pairwise", "q1")
    page = client.get(f"/a/{tokens['h02']}/task/{pos}").get_data(as_text=True)
    assert "Hey, how can I help?" in page and "Both are equally good" in page
    bad = client.post(f"/a/{tokens['h02']}/task/{pos}", data={"choice": "D", "csrf_token": csrf_of(page)})
    assert bad.status_code == 400 and "Choose one of" in bad.get_data(as_text=True)
    ok = client.post(f"/a/{tokens['h02']}/task/{pos}", data={"choice": "C", "csrf_token": csrf_of(page)})
    assert ok.status_code == 303 and n_answers(db) == 1
    assert 'id="choice_C" checked' in client.get(f"/a/{tokens['h02']}/task/{pos}").get_data(as_text=True)


def test_post_without_or_with_a_wrong_csrf_token_is_forbidden(client, project):
    db, tokens, _ = project
    pos = position_of(db, tokens["h01"], "rank")
    form = {"rank_A": "1", "rank_B": "2", "rank_C": "3"}
    resp = client.post(f"/a/{tokens['h01']}/task/{pos}", data=form)
    assert resp.status_code == 403 and "CSRF check failed" in resp.get_data(as_text=True)
    client.get(f"/a/{tokens['h01']}/task/{pos}")
    assert client.post(f"/a/{tokens['h01']}/task/{pos}", data={**form, "csrf_token": "forged"}).status_code == 403
    assert n_answers(db) == 0


def test_an_annotator_reaches_only_their_own_tasks_and_answers(client, project):
    db, tokens, _ = project
    submit_rank(client, db, tokens["h01"], {"chosen": 1, "s0": 2, "rejected": 3})
    other = client.get(f"/a/{tokens['h02']}/task/{position_of(db, tokens['h02'], 'rank')}").get_data(as_text=True)
    assert 'id="saved"' not in other and " selected>1<" not in other and "0 / 3 answered" in other
    assert client.get(f"/a/{tokens['h01']}/task/4").status_code == 404
    assert client.get(f"/a/{tokens['h01']}/task/0").status_code == 404


def test_profile_form_needs_consent_and_listed_values(client, project):
    db, tokens, _ = project
    url = f"/a/{tokens['h03']}/profile"
    page = client.get(url).get_data(as_text=True)
    assert "age group" in page and "South Korean" in page and "I agree" in page
    csrf = csrf_of(page)
    no_consent = client.post(url, data={"sex": "female", "csrf_token": csrf})
    assert no_consent.status_code == 400 and "consent" in no_consent.get_data(as_text=True)
    off_list = client.post(url, data={"nationality": "Atlantean", "consent": "yes", "csrf_token": csrf})
    assert off_list.status_code == 400 and "not one of the listed options" in off_list.get_data(as_text=True)
    ok = client.post(url, data={"sex": "female", "age": "adult", "consent": "yes", "csrf_token": csrf})
    assert ok.status_code == 303
    row = sqlite3.connect(db).execute("SELECT consent, profile FROM annotators WHERE annotator_id='h03'").fetchone()
    assert row[0] == 1 and json.loads(row[1]) == {"sex": "female", "age": "adult", "nationality": None,
                                                  "social_class": None}


def test_admin_view_shows_progress_without_tokens_and_needs_its_own_token(client, project):
    db, tokens, admin = project
    submit_rank(client, db, tokens["h02"], {"chosen": 1, "s0": 2, "rejected": 3})
    html = client.get(f"/admin/{admin}").get_data(as_text=True)
    assert re.search(r"h02</td><td>1 / 3", html) and re.search(r"h01</td><td>0 / 3", html)
    assert not any(t in html for t in tokens.values())
    assert client.get(f"/admin/{tokens['h01']}").status_code == 404
    assert client.get(f"/a/{admin}/").status_code == 404


def test_wrong_method_and_oversized_request_get_clean_error_pages(client, project):
    resp = client.post(f"/admin/{project[2]}")
    assert resp.status_code == 405 and "<h1>405 Method not allowed</h1>" in resp.get_data(as_text=True)
    big = client.post(f"/a/{project[1]['h01']}/task/1", data={"rank_A": "1" * 100_000})
    assert big.status_code == 413 and "Request too large" in big.get_data(as_text=True)


# --- export and comparison --------------------------------------------------------------------------------------


def test_export_feeds_rlchf_aggregate_unchanged(client, project, tmp_path):
    db, tokens, _ = project
    for who in ("h01", "h02"):
        submit_rank(client, db, tokens[who], {"s0": 1, "chosen": 2, "rejected": 3})
    submit_rank(client, db, tokens["h03"], {"chosen": 1, "s0": 2, "rejected": 2})
    persona = [{"prompt_id": "p1", "judge_id": "j00", "ranking": [["chosen"], ["s0"], ["rejected"]],
                "abstained": False, "mode": "ranking", "shown_order": ["chosen", "s0", "rejected"]}]
    write_jsonl(tmp_path / "persona.jsonl", persona)
    metrics = export_answers(store.connect(db), tmp_path / "export", synthetic=str(tmp_path / "persona.jsonl"))
    assert metrics["n_ballots"] == 3 and metrics["n_ballots_combined"] == 4
    ballots = read_jsonl(tmp_path / "export" / "rankings.jsonl")
    assert {b["judge_id"] for b in ballots} == {"h01", "h02", "h03"}
    assert set(ballots[0]) >= {"prompt_id", "judge_id", "ranking", "abstained", "mode", "shown_order"}
    h03 = next(b for b in ballots if b["judge_id"] == "h03")
    assert h03["ranking"] == [["chosen"], sorted(["s0", "rejected"], key=h03["shown_order"].index)]
    out = run_aggregate(AggregateConfig(candidates=str(tmp_path / "export" / "candidates.jsonl"),
                                        rankings=str(tmp_path / "export" / "rankings.jsonl"),
                                        rules=["borda", "plurality"], output_dir=str(tmp_path / "agg")))
    borda = next(a for a in read_jsonl(tmp_path / "agg" / "aggregates.jsonl")
                 if a["rule"] == "borda" and a["prompt_id"] == "p1")
    # Borda (tie = average of the positions): s0 2+2+0.5, chosen 1+1+2, rejected 0+0+0.5 -> s0 > chosen > rejected
    assert borda["ranking"] == ["s0", "chosen", "rejected"] and out["n_ballots"] == 3
    pairs = read_jsonl(tmp_path / "agg" / "pairs" / "swf_borda.jsonl")
    assert [(p["chosen_id"], p["rejected_id"]) for p in pairs] == [("s0", "rejected")]
    annotate_main(["compare", "--candidates", str(tmp_path / "export" / "candidates.jsonl"), "--human",
                   str(tmp_path / "export" / "rankings.jsonl"), "--persona", str(tmp_path / "persona.jsonl"),
                   "--output-dir", str(tmp_path / "cmp"), "--rules", "borda,schulze"])
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    # humans: s0 > chosen > rejected by Borda; the one persona: chosen first -> the Borda winner changes
    assert report["n_shared_prompts"] == 1 and report["rules"]["borda"]["changed_prompts"] == ["p1"]
    assert "| borda | 0.000 | p1 |" in (tmp_path / "cmp" / "compare.md").read_text()


def test_pairwise_export_counts_wins_ties_and_losses_of_system_a():
    def ans(who, winner, shown):
        return {"kind": "pairwise", "payload": PAIRWISE_TASKS[0], "annotator_id": who,
                "answer": {"answer": "C" if winner is None else "AB"[shown.index(winner)], "winner": winner,
                           "shown_order": shown}}

    recs = pairwise_records([ans("h01", "sft", ["dpo", "sft"]), ans("h02", "sft", ["sft", "dpo"]),
                             ans("h03", None, ["sft", "dpo"]), ans("h04", "dpo", ["dpo", "sft"])])
    assert [r["outcome"] for r in recs] == ["win", "win", "tie", "loss"]
    rates = win_rates(recs)["sft vs dpo"]
    assert (rates["wins"], rates["ties"], rates["losses"]) == (2, 1, 1)
    assert rates["win_rate"] == pytest.approx((2 + 0.5) / 4)
    assert rates["first_position_rate"] == pytest.approx(2 / 3)  # h02 and h04 picked A, h01 picked B


def test_compare_reports_agreement_kendalls_w_and_changed_winners():
    rows = [{"prompt_id": p, "candidates": [{"id": c} for c in "xyz"]} for p in ("p1", "p2", "p3")]

    def b(pid, who, *tiers):
        return {"prompt_id": pid, "judge_id": who, "ranking": [list(t) for t in tiers], "abstained": False}

    human = [b("p1", "h1", "x", "y", "z"), b("p1", "h2", "x", "y", "z"),
             b("p2", "h1", "z", "y", "x"), b("p2", "h2", "z", "y", "x")]
    persona = [b("p1", "j1", "x", "y", "z"), b("p1", "j2", "x", "y", "z"),
               b("p2", "j1", "x", "y", "z"), b("p2", "j2", "x", "y", "z"), b("p3", "j1", "x", "y", "z")]
    report = compare_panels(rows, human, persona, ["borda", "schulze"])
    assert report["n_shared_prompts"] == 2 and report["n_persona_ballots"] == 4
    assert report["pairwise_majority_agreement"] == pytest.approx(3 / 6)  # p1 agrees on 3 pairs, p2 on none
    assert report["kendalls_w_human"] == pytest.approx(1.0) and report["kendalls_w_persona"] == pytest.approx(1.0)
    assert report["kendalls_w_pooled"] == pytest.approx((1.0 + 0.0) / 2)  # p2: two panels exactly reversed
    assert report["rules"]["borda"]["changed_prompts"] == ["p2"]
    assert report["rules"]["schulze"]["winner_agreement"] == pytest.approx(0.5)


def test_cli_pair_load_invite_status_and_export(project, tmp_path, capsys):
    db = project[0]
    annotate_main(["invite", "--db", str(db), "--n", "2", "--per-annotator", "1", "--base-url", "http://h:1/"])
    printed = capsys.readouterr().out
    links = re.findall(r"^(h0[45])\thttp://h:1/a/([\w-]{32})/$", printed, re.MULTILINE)
    assert [who for who, _ in links] == ["h04", "h05"] and "admin" not in printed
    assert (tmp_path / "invites.csv").read_text().count("http://h:1/a/") == 2
    conn = store.connect(db)
    assert len(store.assigned_tasks(conn, store.annotator_for(conn, links[0][1])["id"])) == 1
    rows = annotate_main(["status", "--db", str(db)])
    assert [r["assigned"] for r in rows] == [3, 3, 3, 1, 1]
    with pytest.raises(SystemExit) as exc:
        annotate_main(["invite", "--db", str(db), "--n", "1", "--per-annotator", "9"])
    assert exc.value.code == 2 and "between 1 and 3" in capsys.readouterr().err
    write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "Hi", "response": "Hello"}, {"prompt": "Bye", "response": "Ciao"}])
    write_jsonl(tmp_path / "ppo.jsonl", [{"prompt": "Bye", "response": "See you"}, {"prompt": "Hi", "response": "Hey"}])
    annotate_main(["pair", "--a", str(tmp_path / "sft.jsonl"), "--b", str(tmp_path / "ppo.jsonl"), "--name-a", "sft",
                   "--name-b", "ppo", "--out", str(tmp_path / "pw.jsonl")])
    assert [(t["prompt"], t["a"]["text"], t["b"]["text"]) for t in read_jsonl(tmp_path / "pw.jsonl")] == \
        [("Hi", "Hello", "Hey"), ("Bye", "Ciao", "See you")]
    assert annotate_main(["load", "--db", str(db), "--tasks", str(tmp_path / "pw.jsonl"), "--kind", "pairwise"]) == \
        {"added": 2, "already_loaded": 0}
    metrics = annotate_main(["export", "--db", str(db), "--output-dir", str(tmp_path / "ex")])
    assert metrics["n_ballots"] == 0 and (tmp_path / "ex" / "metrics.json").exists()
    with pytest.raises(SystemExit):
        annotate_main(["export", "--db", str(db), "--output-dir", str(tmp_path / "ex")])
    assert "already holds a finished run" in capsys.readouterr().err
