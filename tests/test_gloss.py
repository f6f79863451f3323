"""English glosses under Arabic quotes: right senses, names transliterated, and the labelled-set precision.

The labelled set is ``tests/data/gloss_labels.jsonl`` (seed sentences, held-out sentences and a test
subset written before any tuning); ``bench/gloss_precision.py`` prints the full comparison, including
Debian's FreeDict dictionary when it is installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from assistant.text.gloss import gloss_arabic, transliterate

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("gloss_precision", ROOT / "bench" / "gloss_precision.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gloss_precision", module)
    spec.loader.exec_module(module)
    return module


def glosses(text: str) -> dict[str, str]:
    return {arabic: english for arabic, english in gloss_arabic(text, max_terms=50)}


def test_neighbours_pick_the_sense():
    embassy = glosses("أعلن لافروف استئناف عمل السفارة الروسية في ليبيا")
    assert embassy["عمل"] == "work"
    ministry = glosses("تظاهر العمال أمام وزارة العمل للمطالبة برفع الأجور")
    assert "labour" in ministry.values() or "labor ministry" in ministry.values() or "ministry of labour" in ministry.values()
    assert glosses("فاز الفريق الوطني بكأس البطولة بعد مباراة مثيرة")["الفريق"] == "team"
    assert glosses("قال الفريق أول قائد الجيش إن القوات ستنسحب")["الفريق"] == "lieutenant general"
    assert glosses("وقعت الشركة عقدا بقيمة مليار دولار")["عقدا"] == "contract"
    assert glosses("تقع القرية على بعد عشرين كيلومترا شمال حلب")["بعد"] == "distance"


def test_a_prefix_is_not_split_off_a_short_word_and_hamza_spellings_stay_apart():
    out = glosses("وغرد غوتيرش بعيد لقائه مع حفتر")
    assert out.get("بعيد") == "shortly after" and "eid" not in out.values()
    assert "imam" not in glosses("تظاهر آلاف العمال أمام مقر الوزارة").values()
    assert "imam" in glosses("خطب إمام المسجد في المصلين").values()


def test_phrases_before_words_and_the_word_as_written_first():
    out = glosses("أعلن وزير الخارجية الروسي اليوم عن وقف إطلاق النار")
    assert out["وزير الخارجيه"] == "foreign minister"
    assert out["اليوم"] == "today"
    assert any(english in ("ceasefire", "cease-fire") for english in out.values())


def test_unknown_names_after_a_title_are_transliterated_and_stop_at_punctuation():
    out = glosses("وأعلن وزير الخارجية الروسي، سيرغي لافروف، اليوم استئناف عمل السفارة")
    assert out["سيرغي لافروف"] == "Sirghi Lafruf"
    out = glosses("مع رئيس مجلس النواب الليبي عقيلة صالح: “أود أن أختتم")
    assert out["عقيله صالح"] == "Qila Salh"
    assert glosses("أعلنت الرئاسة المصرية توافقا مصريا فرنسيا") .get("توافقا مصريا فرنسيا") is None, \
        "an office (the presidency) is not followed by a person's name"
    assert transliterate("البرهان") == "al-Brhan" and transliterate("أوغلو") == "Awghlu"


def test_skip_words_are_left_to_the_caller():
    out = glosses("وأعلن وزير الخارجية الروسي سيرغي لافروف")
    assert "سيرغي لافروف" in out
    skipped = dict(gloss_arabic("وأعلن وزير الخارجية الروسي سيرغي لافروف", skip_words={"لافروف"}))
    assert "لافروف" not in " ".join(skipped)


def test_labelled_set_precision_stays_high():
    bench = _bench()
    rows = bench.load(bench.LABELS)
    result = bench.measure(rows, lambda text: gloss_arabic(text, max_terms=50))
    assert result["all"]["judged"] >= 300
    assert result["test"]["precision"] >= 0.95 and result["all"]["precision"] >= 0.95, result["all"]["errors"]
    assert result["all"]["unjudged"] <= 3


def test_works_without_freedict_and_reads_it_when_installed(monkeypatch):
    from assistant.text import freedict

    monkeypatch.setenv("ASSISTANT_FREEDICT", "off")
    freedict._load.cache_clear()
    assert not freedict.available() and freedict.senses("بعيد") == ()
    assert gloss_arabic("استئناف عمل السفارة", dictionary="both") == gloss_arabic("استئناف عمل السفارة")
    assert gloss_arabic("استئناف عمل السفارة", dictionary="freedict") == []
    monkeypatch.delenv("ASSISTANT_FREEDICT")
    if not freedict.DEFAULT.with_suffix(".index").is_file():
        pytest.skip("dict-freedict-ara-eng is not installed")
    assert freedict.available()
    assert "distant" in freedict.senses("بعيد") and "embassy" in freedict.senses("السفاره")
