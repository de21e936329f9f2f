"""``python -m rlchf.annotate <command>``: load tasks, invite annotators, serve the app, watch progress, export.

    pair    --a A.jsonl --b B.jsonl --name-a --name-b --out T   pairwise tasks from two systems' {prompt, response}
    load    --db D --tasks F --kind rank|pairwise     add tasks from a jsonl file (rlchf/annotate/store.py: formats)
    invite  --db D --n 20 --base-url URL              one secret link per new annotator (+ the admin link once)
    serve   --db D --host 127.0.0.1 --port 8000       the web app (threaded; put TLS in front for the internet)
    status  --db D                                    answered / assigned per annotator
    export  --db D --output-dir OUT [--synthetic R]   rankings.jsonl / candidates.jsonl / pairwise.jsonl / win rates
    compare --candidates C --human H --persona P --output-dir OUT   human vs persona-judge report
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from common.artifacts import atomic_write_text, write_jsonl
from common.config import UserError, run_cli
from rlchf.annotate import store

ALL_RULES = ["plurality", "borda", "copeland", "maximin", "kemeny_young", "schulze", "ranked_pairs"]


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlchf.annotate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--db", required=True, help="SQLite file of the annotation project (created if missing)")
        return p

    p = sub.add_parser("pair", help="pairwise task file from two systems' response files (common.eval.judge format)")
    p.add_argument("--a", required=True, help="jsonl of {prompt, response} of system a")
    p.add_argument("--b", required=True, help="jsonl of {prompt, response} of system b (same prompts)")
    p.add_argument("--name-a", required=True)
    p.add_argument("--name-b", required=True)
    p.add_argument("--out", required=True, help="task jsonl to write (then `load --kind pairwise`)")
    p = with_db("load", "add rank or pairwise tasks from a jsonl file")
    p.add_argument("--tasks", required=True, help="jsonl of tasks (formats in rlchf/annotate/store.py)")
    p.add_argument("--kind", required=True, choices=store.TASK_KINDS)
    p = with_db("invite", "create annotators with secret links")
    p.add_argument("--n", type=int, required=True, help="number of new annotators")
    p.add_argument("--base-url", default="http://127.0.0.1:8000", help="where annotators reach `serve`")
    p.add_argument("--per-annotator", type=int, default=None, help="tasks per annotator (default: all tasks)")
    p.add_argument("--seed", type=int, default=0, help="seed of each annotator's task sample and order")
    p.add_argument("--rotate-admin", action="store_true", help="make a new admin link (the old one stops working)")
    p.add_argument("--out", default=None, help="csv of the links (default: invites.csv beside the db)")
    p = with_db("serve", "run the annotation web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--allow-ties", type=_bool, default=True, help="accept equal ranks (equally good); default true")
    p.add_argument("--threads", type=_bool, default=True, help="one thread per request (default true)")
    with_db("status", "answered / assigned per annotator")
    p = with_db("export", "write rankings.jsonl (rlchf format), candidates.jsonl, pairwise.jsonl, win_rates.json")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--synthetic", default=None, help="persona rankings.jsonl to merge into rankings_combined.jsonl")
    p.add_argument("--overwrite", type=_bool, default=False, help="replace a finished export in output-dir")
    p = sub.add_parser("compare", help="human vs persona-judge rankings on shared prompts")
    p.add_argument("--candidates", required=True, help="candidates.jsonl (the export's, or the candidates stage's)")
    p.add_argument("--human", required=True, help="rankings.jsonl of the export")
    p.add_argument("--persona", required=True, help="rankings.jsonl of rlchf.rank")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--rules", default=",".join(ALL_RULES), help="comma-separated SWFs (rlchf.voting)")
    p.add_argument("--seed", type=int, default=0, help="tie-break seed (as rlchf.aggregate's)")
    p.add_argument("--overwrite", type=_bool, default=False)
    return parser


def write_invites(path: Path, links: list[tuple[str, str]]) -> None:
    """Append-safe: earlier links are kept (they cannot be recovered from the hashed tokens)."""
    old = path.read_text() if path.exists() else "who,link\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(links)
    atomic_write_text(path, old + buf.getvalue())
    os.chmod(path, 0o600)


def cmd_invite(args: argparse.Namespace) -> list[tuple[str, str]]:
    conn = store.connect(args.db)
    base = args.base_url.rstrip("/")
    made = store.create_annotators(conn, args.n, args.per_annotator, args.seed)
    links = [(who, f"{base}/a/{token}/") for who, token in made]
    if args.rotate_admin or store.get_meta(conn, "admin_token_hash") is None:
        links.append(("admin", f"{base}/admin/{store.new_admin_token(conn)}"))
    out = Path(args.out) if args.out else Path(args.db).with_name("invites.csv")
    write_invites(out, links)
    for who, link in links:
        print(f"{who}\t{link}")
    print(f"links also appended to {out} (keep it private: a link is the only key)", file=sys.stderr)
    return links


def cmd_status(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = store.progress(store.connect(args.db))
    print(f"{'annotator':<10} {'answered':>9} {'assigned':>9}  self-report")
    for r in rows:
        print(f"{r['annotator_id']:<10} {r['answered']:>9} {r['assigned']:>9}  {'yes' if r['has_profile'] else 'no'}")
    print(f"{'total':<10} {sum(r['answered'] for r in rows):>9} {sum(r['assigned'] for r in rows):>9}")
    return rows


def cmd_serve(args: argparse.Namespace) -> None:
    from werkzeug.serving import make_server

    from rlchf.annotate.app import RedactingRequestHandler, create_app

    server = make_server(args.host, args.port, create_app(args.db, allow_ties=args.allow_ties),
                         threaded=args.threads, request_handler=RedactingRequestHandler)
    print(f"serving {args.db} on http://{args.host}:{server.port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def cmd_pair(args: argparse.Namespace) -> int:
    from common.eval.judge import paired_responses

    if args.name_a == args.name_b:
        raise UserError(f"pair: --name-a and --name-b are both {args.name_a!r}; name the two systems differently")
    prompts, resp_a, resp_b = paired_responses(args.a, args.b)
    tasks = [{"prompt_id": hashlib.sha1(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12], "prompt": p,
              "a": {"system": args.name_a, "text": ra}, "b": {"system": args.name_b, "text": rb}}
             for p, ra, rb in zip(prompts, resp_a, resp_b)]
    n = write_jsonl(args.out, tasks)
    print(f"{args.out}: {n} pairwise tasks ({args.name_a} vs {args.name_b})")
    return n


def dispatch(args: argparse.Namespace) -> Any:
    if args.command == "pair":
        return cmd_pair(args)
    if args.command == "load":
        counts = store.load_tasks(store.connect(args.db), args.tasks, args.kind)
        print(f"{args.tasks}: {counts['added']} {args.kind} tasks added, {counts['already_loaded']} already loaded")
        return counts
    if args.command == "invite":
        return cmd_invite(args)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "status":
        return cmd_status(args)
    if args.command == "export":
        from rlchf.annotate.export import export_answers

        metrics = export_answers(store.connect(args.db), args.output_dir, args.synthetic, args.overwrite)
        print({k: v for k, v in metrics.items() if k != "wall_time_s"})
        return metrics
    from rlchf.annotate.export import run_compare

    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    from rlchf.voting import SWFS

    unknown = [r for r in rules if r not in SWFS]
    if unknown or not rules:
        raise UserError(f"compare --rules: {unknown or rules!r} not among {sorted(SWFS)}")
    return run_compare(args.candidates, args.human, args.persona, args.output_dir, rules, args.seed, args.overwrite)


def main(argv: list[str] | None = None) -> Any:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: dispatch(args))


if __name__ == "__main__":
    main()
