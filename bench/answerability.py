"""Generated answerable / unanswerable questions in both directions; fit and test the answerability model.

    python bench/answerability.py            # build the sets, fit on the fit split, report the test split
    python bench/answerability.py --no-fit   # report the packaged model on the test split only
    python bench/answerability.py --quick    # smaller hadith sets (a few minutes)

What is generated (at run time; the hadith text is of unclear licence and is never written into the
repository, only into ``bench/cache/``):

* **hadith, ar docs / en questions**: Arabic records (diacritics stripped for the index as for any
  document) asked with their English translation, clipped to its first sentence or to 512 characters;
  records sampled evenly from three length bands (one or two lines, a paragraph, a page); every record
  of the pool is asked, in both directions.
* **hadith, en docs / ar questions**: the English translations as documents, asked with the Arabic
  (first sentence or clipped).
* **wire**: the English and Arabic articles of ``bench/data/wire`` beside the Arabic seeds (a mixed
  corpus), with their hand-written questions in both languages (same-language and cross-language).

Each answerable question has unanswerable twins:

* **leave-gold-out**: the same question asked of the index without its gold document and the gold's
  near-duplicates (hadith collections repeat one report through several chains; a candidate sharing
  ``NEAR_DUP_JACCARD`` of its words with the gold document counts as one);
* **entity swap**: one name of the question replaced by a name no document mentions;
* **off topic**: the question asked of another set's index, on another subject (a wire question of
  the hadith records, a hadith question of the news): its words, not only one name, are missing
  ("Who won the football match in Cairo?" over the seeds). At most ``OFF_TOPIC_PER_SET`` a set.

Records and articles are split into fit and test halves (hadith by a hash of the record id, wire by the
``split`` field of the file); the model is fitted on the fit half only and every figure printed is the
test half's. The decision is judged apart from retrieval: answerable questions count only when their
gold document is in the top 5.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from common import CACHE, ROOT, cached_embedder, log, write_result

from assistant.answer.decide import FEATURES, MODEL_PATH, AnswerabilityModel, load_model, outcome_of
from assistant.answer.quoting import quote_order
from assistant.core import Assistant
from assistant.text.normalize import clean_for_embedding, fold, raw_tokens, skeleton

WIRE = ROOT / "bench" / "data" / "wire"
SEEDS = ROOT / "seeds"
K_EVIDENCE = 5          # the passages the decision sees (the product's default k)
K_FETCH = 60            # chunks fetched: ten distinct documents for hit@10, five left after leave-gold-out
NEAR_DUP_JACCARD = 0.5
ANSWER_RECALL = 0.92    # share of the fit split's answerable questions the chosen threshold answers
MIN_DIRECTION_POSITIVES = 20  # a direction needs this many to set its own threshold point
OFF_TOPIC_PER_SET = 60
# Which index a set's questions are asked of for their off-topic twins: the question stays in its
# language, and over the other index its evidence is in the other language as often as the same.
OFF_TOPIC_INDEX = {"hadith_ar": "wire", "hadith_en": "wire", "wire": ("hadith_ar", "hadith_en")}
LENGTH_BANDS = {"short": (40, 200), "medium": (200, 700), "long": (700, 3000)}
# Names that no document of these sets mentions (checked against each index before use).
SWAP_LATIN = ["Zoltan", "Mombasa", "Yokohama", "Valparaiso", "Brisbane", "Ingrid", "Tobias", "Dubrovnik",
              "Winnipeg", "Aberdeen", "Katowice", "Guadalajara", "Nagoya", "Halifax", "Reykjavik", "Svetlana"]
SWAP_ARABIC = ["زولتان", "مومباسا", "يوكوهاما", "فالبارايسو", "بريسبان", "إنغريد", "توبياس", "دوبروفنيك",
               "وينيبيغ", "أبردين", "كاتوفيتشي", "غوادالاخارا", "ناغويا", "هاليفاكس", "ريكيافيك", "سفيتلانا"]


@dataclass
class Item:
    dataset: str
    direction: str          # ar_docs/en_q, en_docs/ar_q, en_docs/en_q, ar_docs/ar_q
    split: str              # fit | test
    question: str
    gold: set[str]
    kind: str               # answerable | leave_gold_out | entity_swap | unanswerable
    band: str = ""
    history: list[dict] = field(default_factory=list)
    gold_evidence: list[dict] = field(default_factory=list)


def _split_of(key: str) -> str:
    return "fit" if int(hashlib.sha1(key.encode()).hexdigest(), 16) % 2 == 0 else "test"


def _words(text: str) -> set[str]:
    return {w for w in raw_tokens(fold(text)) if len(w) > 2}


# -- data sets ---------------------------------------------------------------------------------------
def hadith_sets(per_band: int, queries_per_band: int) -> list[tuple[str, dict[str, str], list[Item]]]:
    """(name, {doc_id: text}, items) for both directions over one length-stratified pool of records."""
    from corpus import filter_records, first_sentence, load_records, shuffled, clip

    kept, _ = filter_records(load_records())
    rng = random.Random(20261130)
    pool = []
    for band, (low, high) in LENGTH_BANDS.items():
        members = [r for r in shuffled(kept) if low <= r.arabic_clean_len < high]
        pool.extend((band, r) for r in members[:per_band])
    ar_docs = {r.doc_id: clean_for_embedding(r.arabic) for _, r in pool}
    en_docs = {r.doc_id: r.english for _, r in pool}
    ar_items, en_items = [], []
    by_band = defaultdict(list)
    for band, rec in pool:
        by_band[band].append(rec)
    for band, records in by_band.items():
        for rec in rng.sample(records, min(queries_per_band, len(records))):
            split = _split_of(rec.doc_id)
            english = first_sentence(rec.english) if rng.random() < 0.5 else clip(rec.english)
            arabic_clean = clean_for_embedding(rec.arabic)
            arabic = clip(arabic_clean, 300) if rng.random() < 0.5 else clip(arabic_clean, 160)
            ar_items.append(Item("hadith", "ar_docs/en_q", split, english, {rec.doc_id}, "answerable", band))
            en_items.append(Item("hadith", "en_docs/ar_q", split, arabic, {rec.doc_id}, "answerable", band))
    return [("hadith_ar", ar_docs, ar_items), ("hadith_en", en_docs, en_items)]


def wire_set() -> tuple[str, dict[str, str], list[Item]] | None:
    """The mixed corpus (seeds + wire articles) with its hand-written questions."""
    qa = WIRE / "qa.jsonl"
    if not qa.is_file():
        log(f"answerability: {qa} not found; the wire set is skipped")
        return None
    docs: dict[str, str] = {}
    for folder in (SEEDS, WIRE / "en", WIRE / "ar"):
        for path in sorted(folder.glob("*.txt")):
            docs[path.stem] = path.read_text(encoding="utf-8")
    items = []
    for line in qa.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gold = {g["doc"] for g in row.get("gold", [])}
        doc_lang = "ar" if any(d.startswith(("khabar", "0")) for d in gold) else "en"
        if not gold:
            doc_lang = "any"
        direction = f"{doc_lang}_docs/{row['lang']}_q"
        turns = list(row["turns"])
        history = [{"role": "user", "content": t} for t in turns[:-1]]
        kind = "answerable" if row.get("type") != "unanswerable" else ("entity_swap" if row.get("twin_of") else "unanswerable")
        items.append(Item("wire", direction, row.get("split", "test"), turns[-1], gold, kind, "", history, row.get("gold", [])))
    return "wire", docs, items


# -- running ---------------------------------------------------------------------------------------
def build_index(name: str, docs: dict[str, str], embedder, workdir: Path) -> Assistant:
    folder = workdir / name
    docs_dir = folder / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    docs_dir.mkdir(parents=True)
    for doc_id, text in docs.items():
        (docs_dir / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    index = folder / "index"
    assistant = Assistant(index, embedder=embedder)
    started = time.perf_counter()
    report = assistant.ingest([docs_dir], rebuild=True)
    log(f"answerability: {name}: {report.summary()} ({time.perf_counter() - started:.0f} s)")
    return assistant


def _near_duplicates(gold: set[str], candidates: list[str], docs: dict[str, str]) -> set[str]:
    out = set(gold)
    gold_words = [_words(docs[g]) for g in gold if g in docs]
    for doc in candidates:
        if doc in out or doc not in docs:
            continue
        words = _words(docs[doc])
        for gw in gold_words:
            if gw and words and len(gw & words) / len(gw | words) >= NEAR_DUP_JACCARD:
                out.add(doc)
    return out


def _swap(question: str, assistant: Assistant, rng: random.Random, english_names: str = "") -> str | None:
    """The question with one of its names replaced by a name the index never mentions."""
    vocab = assistant.data.vocabulary.vocab
    if re.search(r"[A-Za-z]", question) and not re.search(r"[\u0621-\u064A]", question):
        names = [m for m in re.finditer(r"\b[A-Z][a-z]{3,}\b", question) if m.start() > 0]
        pool = [n for n in SWAP_LATIN if n.lower() not in vocab]
    else:
        # An Arabic word is a name when its skeleton is that of a capitalized word of the aligned
        # English (hadith), or when it is capitalized nowhere but found nowhere either (wire: skipped).
        keys = {skeleton(w.lower()) for w in re.findall(r"\b[A-Z][a-z]{3,}\b", english_names)}
        names = [m for m in re.finditer(r"[\u0621-\u064A]{4,}", question) if skeleton(fold(m.group(0))) in keys and len(skeleton(fold(m.group(0)))) >= 3]
        pool = [n for n in SWAP_ARABIC if fold(n) not in vocab]
    if not names or not pool:
        return None
    target = rng.choice(names)
    return question[: target.start()] + rng.choice(pool) + question[target.end():]


def _ranked_docs(hits) -> list[str]:
    out: list[str] = []
    for hit in hits:
        if hit.chunk.doc_id not in out:
            out.append(hit.chunk.doc_id)
    return out


def run_set(name: str, docs: dict[str, str], items: list[Item], embedder, models: dict[str, AnswerabilityModel],
            english_of: dict[str, str] | None = None, workdir: Path = CACHE / "answerability") -> list[dict]:
    """Search every item (and its twins), record features, outcomes and retrieval ranks."""
    from baseline import TutorialRetriever
    from assistant.adapters.langchain.embeddings import LangChainEmbeddings
    from langchain_core.documents import Document as LCDocument

    assistant = build_index(name, docs, embedder, workdir)
    tutorial = TutorialRetriever(LangChainEmbeddings(embedder))
    tutorial.add_documents([LCDocument(page_content=text, metadata={"doc": doc}) for doc, text in docs.items()])
    rng = random.Random(7)
    rows = []
    started = time.perf_counter()
    for number, item in enumerate(items, 1):
        history = _history(assistant, item.history)
        result = assistant.search(item.question, K_FETCH, history=history)
        ranked = _ranked_docs(result.hits)
        row_base = {"dataset": item.dataset, "direction": item.direction, "split": item.split, "band": item.band}
        if item.kind == "answerable":
            rank = next((i + 1 for i, d in enumerate(ranked) if d in item.gold), None)
            dense = assistant.search(item.question, K_FETCH, mode="dense", history=history)
            dense_rank = next((i + 1 for i, d in enumerate(_ranked_docs(dense.hits)) if d in item.gold), None)
            lc_docs = []
            for doc, _ in tutorial.search(item.question, K_FETCH):
                if doc.metadata["doc"] not in lc_docs:
                    lc_docs.append(doc.metadata["doc"])
            lc_rank = next((i + 1 for i, d in enumerate(lc_docs) if d in item.gold), None)
            top = replace(result, hits=result.hits[:K_EVIDENCE])
            gold_in_top5 = rank is not None and rank <= 5
            rows.append(row_base | {"kind": "answerable", "rank": rank, "dense_rank": dense_rank, "langchain_rank": lc_rank,
                                    "label": 1 if gold_in_top5 else None, **_decisions(assistant, top, models)})
            # Leave-gold-out twin.
            removed = _near_duplicates(item.gold, ranked, docs)
            rest = [h for h in result.hits if h.chunk.doc_id not in removed][:K_EVIDENCE]
            rows.append(row_base | {"kind": "leave_gold_out", "label": 0,
                                    **_decisions(assistant, replace(result, hits=rest), models)})
            # Entity-swap twin.
            swapped = _swap(item.question, assistant, rng, (english_of or {}).get(next(iter(item.gold)), ""))
            if swapped:
                twin = assistant.search(swapped, K_EVIDENCE, history=history)
                rows.append(row_base | {"kind": "entity_swap", "label": 0, **_decisions(assistant, twin, models)})
        else:
            top = replace(result, hits=result.hits[:K_EVIDENCE])
            rows.append(row_base | {"kind": item.kind, "label": 0, **_decisions(assistant, top, models)})
        if number % 50 == 0:
            log(f"answerability: {name}: {number}/{len(items)} questions ({time.perf_counter() - started:.0f} s)")
    embedder.cache.flush()
    return rows


def off_topic_rows(sets: list, embedder, models: dict[str, AnswerabilityModel], workdir: Path) -> list[dict]:
    """Off-topic twins: answerable questions of one set asked of another set's index (``OFF_TOPIC_INDEX``;
    the indexes ``run_set`` built), up to ``OFF_TOPIC_PER_SET`` a set, fit and test kept apart as their
    questions are. Follow-ups are left out (their history belongs to their own corpus)."""
    names = {name for name, _, _ in sets}
    rng = random.Random(11)
    rows = []
    for name, _, items in sets:
        targets = OFF_TOPIC_INDEX.get(name, ())
        targets = [targets] if isinstance(targets, str) else list(targets)
        for target in targets:
            if target not in names:
                continue
            assistant = Assistant(workdir / target / "index", embedder=embedder)
            # A wire question in Arabic goes to the English records and one in English to the Arabic ones.
            pool = [i for i in items if i.kind == "answerable" and not i.history
                    and (len(targets) == 1 or (target == "hadith_ar") == (i.direction.endswith("en_q")))]
            for item in rng.sample(pool, min(OFF_TOPIC_PER_SET // len(targets), len(pool))):
                result = assistant.search(item.question, K_EVIDENCE)
                rows.append({"dataset": item.dataset, "direction": item.direction, "split": item.split, "band": item.band,
                             "kind": "off_topic", "label": 0, **_decisions(assistant, result, models)})
            log(f"answerability: off-topic twins of {name} over {target}: {len(rows)} rows so far")
    return rows


def _history(assistant: Assistant, turns: list[dict]) -> list[dict]:
    history: list[dict] = []
    for turn in turns:
        answer = assistant.ask(turn["content"], history=history)
        history += [turn, {"role": "assistant", "content": answer.text}]
    return history


def _decisions(assistant: Assistant, result, models: dict[str, AnswerabilityModel]) -> dict:
    out: dict = {}
    for name, model in models.items():
        decision = assistant.decide(result, model=model)
        out[f"{name}_outcome"] = decision.outcome
        out[f"{name}_p"] = round(decision.probability, 5)
        out["features"] = {k: round(float(v), 5) for k, v in decision.features.items()}
        out["signals"] = decision.signals
        # For reading the rows: what was asked, and the sentence an answer would quote first.
        quoted = quote_order(decision.evidence, result.query, result.plan, result.weights)
        out["question"] = result.query
        out["quote"] = f"{quoted[0].hit.chunk.doc_id}: {quoted[0].sentence[:240]}" if quoted else ""
    return out


# -- fitting -----------------------------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50,
                 groups: list[str] | None = None) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression by Newton's method (IRLS) on standardized x.

    Rows are weighted so that each group (data set) weighs the same in total, and within a group the
    answerable and unanswerable rows weigh the same: the hadith sets are large and hard to separate
    (their "questions" are whole translated reports, and the collections repeat one report in many
    versions), and must not drown the news questions the product is for.
    """
    n, d = x.shape
    groups = groups or ["all"] * n
    names = sorted(set(groups))
    weights = np.zeros(n)
    for name in names:
        for label in (0, 1):
            mask = np.array([g == name for g in groups]) & (y == label)
            if mask.any():
                weights[mask] = n / (len(names) * 2 * mask.sum())
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.eye(d + 1) * l2
    penalty[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(xb @ beta, -50, 50)))
        gradient = xb.T @ (weights * (p - y)) + penalty @ beta
        hessian = (xb * (weights * p * (1 - p))[:, None]).T @ xb + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


# Features whose direction is known before any fit: more of the question found in the evidence, or a
# closer sentence, never lowers the probability; a name or word found nowhere never raises it. A fit that
# gives one of them the other sign has learned an accident of the generated data (the hadith questions
# are whole reports, so nearly all their words are "unknown" whether the gold is retrieved or not).
EXPECTED_SIGN = {"dense_sentence": 1, "dense_passage": 1, "cross_dense": 1, "coverage": 1, "passage_coverage": 1, "names_missing": -1,
                 "unknown_name": -1, "quote_coverage": 1, "quote_names_missing": -1, "quote_passage_names_missing": -1,
                 "quote_type": 1, "dense_margin": 1, "unknown_words": -1}


def fit_signed(x: np.ndarray, y: np.ndarray, groups: list[str]) -> tuple[np.ndarray, float]:
    """``fit_logistic`` with the signs of ``EXPECTED_SIGN``: a feature fitted with the wrong sign is
    left out (coefficient 0) and the rest refitted, until every sign agrees."""
    keep = list(range(x.shape[1]))
    while True:
        coef, intercept = fit_logistic(x[:, keep], y, groups=groups)
        wrong = [j for j, c in zip(keep, coef) if EXPECTED_SIGN.get(FEATURES[j], 0) * c < 0]
        if not wrong:
            break
        # The worst offender goes first: leaving one feature out changes the others' signs.
        worst = max(wrong, key=lambda j: abs(coef[keep.index(j)]))
        keep.remove(worst)
    full = np.zeros(x.shape[1])
    full[keep] = coef
    return full, intercept


def auc(scores: list[float], labels: list[int]) -> float:
    """ROC AUC by the rank-sum formula (ties count half)."""
    pos = [s for s, l in zip(scores, labels) if l == 1]
    neg = [s for s, l in zip(scores, labels) if l == 0]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def fit(rows: list[dict]) -> dict:
    """The model fitted on the fit split: one regression for evidence in the question's language and
    one (``cross_language_model``) for evidence in the other language, each with its own threshold."""
    train = [r for r in rows if r["split"] == "fit" and r["label"] is not None]
    same = [r for r in train if r["features"].get("cross_language", 0.0) < 0.5]
    cross = [r for r in train if r["features"].get("cross_language", 0.0) >= 0.5]
    if not all({0, 1} <= {r["label"] for r in part} for part in (same, cross)):
        return _fit_part(train)  # too few rows of one kind to fit two
    return _fit_part(same) | {"cross_language_model": _fit_part(cross)}


def _fit_part(train: list[dict]) -> dict:
    x = np.array([[r["features"][f] for f in FEATURES] for r in train], dtype=float)
    y = np.array([r["label"] for r in train], dtype=float)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    coef, intercept = fit_signed((x - mean) / scale, y, groups=[r["dataset"] for r in train])
    # The operating point, chosen on the fit split by a stated rule (never on a test set): answer at
    # least ANSWER_RECALL of the answerable questions whose evidence was retrieved, and never be
    # stricter than the balanced point 0.5.
    model = AnswerabilityModel.from_dict({"features": list(FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
                                          "coef": coef.tolist(), "intercept": intercept})
    # Every direction (ar docs / en questions, en docs / ar questions, same language) is held to it on
    # its own: the threshold is the lowest of the directions' own ANSWER_RECALL points (the hard
    # direction must not be sacrificed to the easy one).
    # A direction with fewer than MIN_DIRECTION_POSITIVES answerable questions here is too small to set
    # a quantile (its lowest score would decide alone); it joins the pooled point instead.
    positives = [r for r in train if r["label"] == 1]
    by_direction = defaultdict(list)
    for r in positives:
        by_direction[r["direction"]].append(model.probability(r["features"]))
    groups = [scores for scores in by_direction.values() if len(scores) >= MIN_DIRECTION_POSITIVES]
    groups.append([model.probability(r["features"]) for r in positives])
    threshold = 0.5
    for scores in groups:
        scores = sorted(scores)
        threshold = min(threshold, scores[int(math.floor((1 - ANSWER_RECALL) * len(scores)))])
    # Lower still when the whole decision (the probability and the rules of ``outcome_of``) gains by it:
    # a twin the rules already make partial is not declined again by a higher threshold, while
    # answerable questions are.
    threshold = min(threshold, best_outcome_threshold(train, model))
    counts = defaultdict(int)
    for r in train:
        counts[f"{r['dataset']}:{r['direction']}:{r['kind']}"] += 1
    return {
        "features": list(FEATURES), "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
        "coef": coef.round(6).tolist(), "intercept": round(intercept, 6),
        "threshold": math.floor(float(threshold) * 1e6) / 1e6,  # rounded down: the point itself is answered
        "fitted_on": {"command": "python bench/answerability.py", "date": time.strftime("%Y-%m-%d"),
                      "rows": len(train), "positives": int(y.sum()), "negatives": int(len(y) - y.sum()),
                      "by_set": dict(sorted(counts.items())),
                      "method": "logistic regression, L2 1.0, standardized features, each data set and within it each class weighing the same, features of known direction (EXPECTED_SIGN) left out when fitted with the other sign; threshold: the probability "
                                "at or above which ANSWER_RECALL of each direction's fit-split answerable questions fall (the lowest over directions with at least MIN_DIRECTION_POSITIVES of them, and over all pooled), at most 0.5, "
                                "lowered to best_outcome_threshold (the highest threshold at which the worst direction's Youden J of the whole decision, rules included, is best) when that is lower"},
    }


def best_outcome_threshold(train: list[dict], model: AnswerabilityModel) -> float:
    """The highest threshold at which the whole decision (the probability and the rules of
    ``outcome_of``) does best on the fit rows: Youden's J (answerable questions answered or partial,
    plus unanswerable ones declined or partial, minus 1) of the worst direction (directions with at
    least ``MIN_DIRECTION_POSITIVES`` answerable questions; all rows pooled otherwise). Of thresholds
    that do equally well, the highest declines the most."""
    scored = [(model.probability(r["features"]), r) for r in train]
    by_direction = defaultdict(list)
    for p, r in scored:
        by_direction[r["direction"]].append((p, r))
    # Questions no document answers (written, not twins: "Who won the football match in Cairo?" over
    # the seeds) belong to no document direction; every direction is judged on them as well.
    unanswerable = [(p, r) for p, r in scored if r["kind"] == "unanswerable"]
    groups = [rows + unanswerable for rows in by_direction.values()
              if sum(r["label"] == 1 for _, r in rows) >= MIN_DIRECTION_POSITIVES and any(r["label"] == 0 for _, r in rows)]
    groups = groups or [scored]

    def worst_j(t: float) -> float:
        out = 1.0
        for rows in groups:
            pos = [outcome_of(p, t, r["signals"])[0] != "abstain" for p, r in rows if r["label"] == 1]
            neg = [outcome_of(p, t, r["signals"])[0] != "answer" for p, r in rows if r["label"] == 0]
            out = min(out, sum(pos) / max(len(pos), 1) + sum(neg) / max(len(neg), 1) - 1)
        return out

    # The outcomes change only at a row's probability (a threshold equal to it answers it).
    values = [(t, worst_j(t)) for t in sorted({0.0, 0.5} | {round(p, 6) for p, _ in scored if p <= 0.5})]
    best = max(j for _, j in values)
    return max(t for t, j in values if j >= best - 1e-9)


# -- reporting ---------------------------------------------------------------------------------------
def report(rows: list[dict], model_names: list[str]) -> dict:
    test = [r for r in rows if r["split"] == "test"]
    out: dict = {}
    for direction in sorted({r["direction"] for r in test}):
        subset = [r for r in test if r["direction"] == direction]
        entry: dict = {}
        answerable = [r for r in subset if r["kind"] == "answerable"]
        if answerable:
            n = len(answerable)
            for system, key in (("hybrid", "rank"), ("dense_only", "dense_rank"), ("langchain", "langchain_rank")):
                entry[f"{system}_hit@1"] = round(sum(1 for r in answerable if r[key] and r[key] <= 1) / n, 3)
                entry[f"{system}_hit@5"] = round(sum(1 for r in answerable if r[key] and r[key] <= 5) / n, 3)
                entry[f"{system}_hit@10"] = round(sum(1 for r in answerable if r[key] and r[key] <= 10) / n, 3)
            entry["questions"] = n
        for model in model_names:
            judged = [r for r in subset if r["label"] is not None]
            pos = [r for r in judged if r["label"] == 1]
            m: dict = {}
            if pos:
                m["answered"] = round(sum(r[f"{model}_outcome"] != "abstain" for r in pos) / len(pos), 3)
                m["answered_full"] = round(sum(r[f"{model}_outcome"] == "answer" for r in pos) / len(pos), 3)
                m["answerable_in_top5"] = len(pos)
            for kind in ("leave_gold_out", "entity_swap", "off_topic", "unanswerable"):
                twins = [r for r in subset if r["kind"] == kind]
                if twins:
                    m[f"{kind}_declined_or_partial"] = round(sum(r[f"{model}_outcome"] != "answer" for r in twins) / len(twins), 3)
                    m[f"{kind}_abstained"] = round(sum(r[f"{model}_outcome"] == "abstain" for r in twins) / len(twins), 3)
                    m[f"{kind}_n"] = len(twins)
            m["auc"] = round(auc([r[f"{model}_p"] for r in judged], [r["label"] for r in judged]), 3)
            entry[model] = m
        out[direction] = entry
    bands: dict = {}
    for band in LENGTH_BANDS:
        subset = [r for r in test if r.get("band") == band and r["kind"] == "answerable"]
        if subset:
            n = len(subset)
            bands[band] = {s: round(sum(1 for r in subset if r[k] and r[k] <= 10) / n, 3)
                           for s, k in (("hybrid_hit@10", "rank"), ("dense_only_hit@10", "dense_rank"), ("langchain_hit@10", "langchain_rank"))}
            bands[band]["questions"] = n
    out["hadith_by_record_length"] = bands
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller hadith sets (60 records and 30 questions per length band)")
    parser.add_argument("--per-band", type=int, default=150, help="hadith records per length band (default 150)")
    parser.add_argument("--questions", type=int, default=None,
                        help="hadith questions per length band and direction (default: every record of the band is asked)")
    parser.add_argument("--no-fit", action="store_true", help="do not refit: report the packaged model")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="where the fitted model is written")
    parser.add_argument("--rows", type=Path, default=CACHE / "answerability" / "rows.json",
                        help="generated rows (features, outcomes, ranks) are kept here; --reuse reads them back")
    parser.add_argument("--workdir", type=Path, default=CACHE / "answerability",
                        help="where the generated indexes are built (one folder per set; rebuilt on every run)")
    parser.add_argument("--reuse", action="store_true", help="refit from the rows of an earlier run (no searching)")
    args = parser.parse_args()
    # Every record is asked by default: a sample of a third (50 of 150) left about 57 answerable questions
    # per direction in the test split, where one question moves "answered" by 0.018 and its standard
    # error is about 0.04, as wide as the margin the figures are judged by.
    per_band, queries = (60, 30) if args.quick else (args.per_band, args.questions or args.per_band)
    packaged = load_model(str(MODEL_PATH)) if MODEL_PATH.is_file() else load_model("/nonexistent")
    models = {"packaged": packaged}
    if args.reuse and args.rows.is_file():
        rows = json.loads(args.rows.read_text(encoding="utf-8"))
    else:
        embedder = cached_embedder()
        rows = []
        sets = []
        try:
            sets.extend(hadith_sets(per_band, queries))
        except Exception as exc:  # the bench extra is not installed
            log(f"answerability: hadith sets skipped ({exc})")
        wire = wire_set()
        if wire:
            sets.append(wire)
        english_of = {}
        try:
            from corpus import filter_records, load_records
            english_of = {r.doc_id: r.english for r in filter_records(load_records())[0]}
        except Exception:
            pass
        for name, docs, items in sets:
            rows.extend(run_set(name, docs, items, embedder, models, english_of if name == "hadith_ar" else None,
                                args.workdir))
        rows.extend(off_topic_rows(sets, embedder, models, args.workdir))
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        args.rows.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    names = ["packaged"]
    if not args.no_fit:
        fitted = fit(rows)
        model = AnswerabilityModel.from_dict(fitted)
        # The fitted model's outcome for every row: its probability from the stored features, then the
        # product's own rules (``outcome_of``) on the stored evidence signals: exactly what ``decide``
        # would answer with this model, without searching again.
        for r in rows:
            r["fitted_p"] = round(model.probability(r["features"]), 5)
            r["fitted_outcome"] = outcome_of(r["fitted_p"], model.threshold_for(r["features"]), r["signals"])[0]
        test_report = report(rows, ["packaged", "fitted"])
        fitted["test_split"] = {k: v.get("fitted", v) if isinstance(v, dict) else v for k, v in test_report.items()}
        args.out.write_text(json.dumps(fitted, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        log(f"answerability: model written to {args.out}")
        names.append("fitted")
    else:
        test_report = report(rows, names)
    write_result("answerability", test_report)
    print(json.dumps(test_report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
