"""``assistant eval``: score a bilingual QA set (format of shared/eval/README.md)."""

from __future__ import annotations

import json
import re
import statistics
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from assistant.errors import ConfigError
from assistant.text.normalize import detect_language
from assistant.records import Answer

_EVAL_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"})
_EVAL_MARKS = re.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u0640]")
_QUOTED = re.compile(r"«[^»]*»|“[^”]*”|\"[^\"]*\"")


def eval_normalize(text: str) -> str:
    """The matching normalization of the eval README: NFKC, marks, letter folding, spaces, case."""
    text = unicodedata.normalize("NFKC", text)
    text = _EVAL_MARKS.sub("", text).translate(_EVAL_FOLD)
    return " ".join(text.split()).lower()


@dataclass
class QAItem:
    id: str
    lang: str
    type: str
    turns: list[str]
    gold: list[dict[str, str]]
    answer_any: dict[str, list[str]]

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def load_qa(path: Path | str) -> list[QAItem]:
    """Read a QA jsonl file; a malformed line is an error naming the line."""
    items = []
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"Cannot read the QA file {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            items.append(QAItem(data["id"], data["lang"], data.get("type", "factoid"), list(data["turns"]),
                                list(data.get("gold", [])), dict(data.get("answer_any", {}))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: not a QA item ({exc})") from exc
    if not items:
        raise ConfigError(f"{path} holds no questions")
    return items


@dataclass
class ItemResult:
    id: str
    lang: str
    type: str
    question: str
    answer: str
    abstained: bool
    hit1: bool | None
    hit5: bool | None
    citations_in_gold: int
    citations: int
    evidence_found: int
    evidence_total: int
    correct: bool | None
    language_ok: bool
    seconds: float
    top_docs: list[str] = field(default_factory=list)
    outcome: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _passage_has_evidence(doc_id: str, text: str, gold: list[dict[str, str]]) -> bool:
    folded = eval_normalize(text)
    return any(g["doc"] == doc_id and eval_normalize(g["evidence"]) in folded for g in gold)


def answer_language(answer: Answer) -> str:
    """Language of the answer's own words: quoted evidence is left out."""
    own = _QUOTED.sub(" ", answer.text)
    return detect_language(own) if own.strip() else answer.language


def score_item(item: QAItem, answer: Answer, seconds: float) -> ItemResult:
    passages = list(answer.passages)
    hit1 = hit5 = None
    if item.answerable:
        hit1 = any(_passage_has_evidence(h.chunk.doc_id, h.chunk.text, item.gold) for h in passages[:1])
        hit5 = any(_passage_has_evidence(h.chunk.doc_id, h.chunk.text, item.gold) for h in passages[:5])
    gold_docs = {g["doc"] for g in item.gold}
    by_chunk = {h.chunk.chunk_id: h.chunk for h in passages}
    cited_texts = [(c.doc_id, by_chunk[c.chunk_id].text if c.chunk_id in by_chunk else c.quote) for c in answer.citations]
    evidence_found = sum(
        1 for g in item.gold if any(d == g["doc"] and eval_normalize(g["evidence"]) in eval_normalize(t) for d, t in cited_texts)
    )
    correct = None
    if item.answerable:
        keywords = item.answer_any.get(item.lang, [])
        folded = eval_normalize(answer.text)
        correct = (not answer.abstained) and any(eval_normalize(k) in folded for k in keywords)
    return ItemResult(
        id=item.id, lang=item.lang, type=item.type, question=item.turns[-1], answer=answer.text,
        abstained=answer.abstained, hit1=hit1, hit5=hit5,
        citations_in_gold=sum(1 for c in answer.citations if c.doc_id in gold_docs), citations=len(answer.citations),
        evidence_found=evidence_found, evidence_total=len(item.gold), correct=correct,
        language_ok=answer_language(answer) == item.lang, seconds=seconds,
        top_docs=[h.chunk.doc_id for h in passages[:5]], outcome=answer.outcome,
    )


def run_eval(ask: Callable[[str, list[dict]], Answer], items: list[QAItem],
             progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], list[ItemResult]]:
    """Ask every item (earlier turns first, with the assistant's answers as history) and score it."""
    results = []
    for number, item in enumerate(items, 1):
        history: list[dict] = []
        for turn in item.turns[:-1]:
            previous = ask(turn, history)
            history += [{"role": "user", "content": turn}, {"role": "assistant", "content": previous.text}]
        started = time.perf_counter()
        answer = ask(item.turns[-1], history)
        results.append(score_item(item, answer, time.perf_counter() - started))
        if progress:
            progress(number, len(items))
    return summarize(results), results


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarize(results: list[ItemResult]) -> dict[str, Any]:
    answerable = [r for r in results if r.type != "unanswerable"]
    unanswerable = [r for r in results if r.type == "unanswerable"]
    citations = sum(r.citations for r in answerable)
    evidence_total = sum(r.evidence_total for r in answerable)
    summary: dict[str, Any] = {
        "questions": len(results),
        "answerable": len(answerable),
        "hit@1": _share([bool(r.hit1) for r in answerable]),
        "hit@5": _share([bool(r.hit5) for r in answerable]),
        "citation_precision": round(sum(r.citations_in_gold for r in answerable) / citations, 4) if citations else None,
        "evidence_recall": round(sum(r.evidence_found for r in answerable) / evidence_total, 4) if evidence_total else None,
        "answer_accuracy": _share([bool(r.correct) for r in answerable]),
        "answer_accuracy_en": _share([bool(r.correct) for r in answerable if r.lang == "en"]),
        "answer_accuracy_ar": _share([bool(r.correct) for r in answerable if r.lang == "ar"]),
        # An unanswerable question is handled when it is not answered: declined, or answered in part
        # with what the sources lack said first ("the sources do not mention Macron"); the strict
        # figure counts declines only.
        "abstention": _share([r.outcome != "answer" for r in unanswerable]),
        "abstention_strict": _share([r.abstained for r in unanswerable]),
        "false_abstention": _share([r.abstained for r in answerable]),
        "partial_answerable": _share([r.outcome == "partial" for r in answerable]),
        "language_match": _share([r.language_ok for r in results]),
        "median_seconds": round(statistics.median(r.seconds for r in results), 4) if results else None,
    }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    rows = []
    for key, value in summary.items():
        shown = "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        rows.append(f"{key:<22} {shown}")
    return "\n".join(rows)
