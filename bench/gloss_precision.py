"""Gloss precision: how often the English gloss shown under an Arabic quote names the right sense.

    python bench/gloss_precision.py [--labels tests/data/gloss_labels.jsonl] [--show-errors] [--json]

The labelled set (``tests/data/gloss_labels.jsonl``) holds 56 Arabic news sentences, each with the
acceptable English senses of its words and phrases (``"NAME:Lavrov"`` marks a name, where a
transliteration close to it counts): 12 from the seed articles ("seed"), 32 written apart from them
("heldout"; the sense rules were tuned while looking at the seed and held-out errors) and 12 written
before any tuning and never tuned on ("test": the clean measure).

For each glosser it prints:
- precision: correct glosses / glosses judged (a gloss is judged when its Arabic span is labelled);
- unjudged: glosses whose span has no label (listed with --show-errors so the set can be completed);
- found: correct glosses / labelled single words and phrases (how much of the sentence it explains);
each for the seed and the held-out sentences and overall.

Glossers: ``lexicon`` (the hand-made news lexicon, what the product uses), ``freedict`` (Debian's
FreeDict Arabic-English dictionary alone, read from /usr/share/dictd when installed) and
``lexicon+freedict`` (the lexicon first, FreeDict for words it lacks).
"""

from __future__ import annotations

import argparse
import json
import sys
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.text import gloss, lexicon
from assistant.text.normalize import fold, raw_tokens  # noqa: E402

LABELS = ROOT / "tests" / "data" / "gloss_labels.jsonl"


def _key(text: str) -> tuple[str, ...]:
    return tuple(lexicon.bare(w) for w in raw_tokens(fold(text)))


def _stem(word: str) -> str:
    """A crude English stem, so an inflection is not counted as a wrong sense (declared/declare)."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _english(text: str) -> str:
    words = text.lower().replace("-", " ").split()
    while words and words[0] in ("the", "to", "a", "an"):
        words = words[1:]
    return " ".join(_stem(w) for w in words)


def _skeleton(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha() and ch not in "aeiouy")


def judge(span: str, english: str, labels: dict[tuple[str, ...], list[str]]) -> bool | None:
    """True/False when the span is labelled, None when it is not."""
    senses = labels.get(_key(span))
    if senses is None:
        return None
    got = _english(english)
    for sense in senses:
        if sense.startswith("NAME:"):
            name = sense[5:]
            if got == _english(name) or SequenceMatcher(None, _skeleton(english), _skeleton(name)).ratio() >= 0.6:
                return True
        elif got == _english(sense):
            return True
    return False


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["keys"] = {}
        for surface, senses in row["labels"].items():
            row["keys"].setdefault(_key(surface), []).extend(senses)
    return rows


def glossers() -> dict[str, object]:
    import inspect

    if "dictionary" not in inspect.signature(gloss.gloss_arabic).parameters:  # the code before issue 14
        return {"lexicon": lambda text: gloss.gloss_arabic(text, max_terms=50)}
    out = {"lexicon": lambda text: gloss.gloss_arabic(text, max_terms=50, dictionary="lexicon")}
    if gloss.freedict_available():
        out["freedict"] = lambda text: gloss.gloss_arabic(text, max_terms=50, dictionary="freedict")
        out["lexicon+freedict"] = lambda text: gloss.gloss_arabic(text, max_terms=50, dictionary="both")
    return out


def measure(rows: list[dict], gloss) -> dict:
    result: dict[str, dict] = {}
    for subset in ("seed", "heldout", "test", "all"):
        chosen = [r for r in rows if subset == "all" or r["source"] == subset]
        judged = correct = unjudged = labelled = 0
        errors: list[str] = []
        unknown: list[str] = []
        for row in chosen:
            labelled += len(row["keys"])
            for span, english in gloss(row["text"]):
                verdict = judge(span, english, row["keys"])
                if verdict is None:
                    unjudged += 1
                    unknown.append(f"{row['id']}: {span} -> {english}")
                    continue
                judged += 1
                correct += verdict
                if not verdict:
                    errors.append(f"{row['id']}: {span} -> {english} (want {'/'.join(row['keys'][_key(span)])})")
        result[subset] = {"sentences": len(chosen), "glosses": judged + unjudged, "judged": judged, "correct": correct,
                          "precision": round(correct / judged, 3) if judged else None, "unjudged": unjudged,
                          "found": round(correct / labelled, 3) if labelled else None,
                          "errors": errors, "unknown": unknown}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = load(args.labels)
    report = {name: measure(rows, gloss) for name, gloss in glossers().items()}
    if args.json:
        print(json.dumps({k: {s: {m: v for m, v in d.items() if m not in ("errors", "unknown")} for s, d in r.items()}
                          for k, r in report.items()}, indent=1))
        return
    print(f"{'glosser':<18} {'subset':<8} {'precision':>9} {'correct/judged':>15} {'unjudged':>8} {'found':>6}")
    for name, result in report.items():
        for subset, r in result.items():
            print(f"{name:<18} {subset:<8} {r['precision'] if r['precision'] is not None else '-':>9} "
                  f"{r['correct']:>7}/{r['judged']:<7} {r['unjudged']:>8} {r['found']:>6}")
        if args.show_errors:
            for line in result["all"]["errors"]:
                print("   wrong:", line)
            for line in result["all"]["unknown"]:
                print("   unlabelled:", line)
    if hasattr(gloss, "freedict_available") and not gloss.freedict_available():
        print("(FreeDict is not installed: apt-get install dict-freedict-ara-eng to compare it)")


if __name__ == "__main__":
    main()
