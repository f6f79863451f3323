from assistant.records import Document
from assistant.ingest.chunking import chunk_document
from assistant.text.sentences import split_sentences


def _doc(text, pages=()):
    return Document(doc_id="d", title="t", source="s", text=text, content_hash="h", pages=pages)


def test_sentences_split_on_scraper_joins_and_arabic_punctuation():
    text = "أعلن الجيش السيطرة., وقال المتحدث إن العملية انتهت؟ ثم غادر؛ وانتهى"
    spans = [text[s.start : s.end] for s in split_sentences(text)]
    assert spans == ["أعلن الجيش السيطرة.,", "وقال المتحدث إن العملية انتهت؟", "ثم غادر؛", "وانتهى"]


def test_decimal_point_is_not_a_sentence_end():
    text = "بلغت النسبة 3.5 في المئة. وارتفعت"
    spans = [text[s.start : s.end] for s in split_sentences(text)]
    assert spans[0] == "بلغت النسبة 3.5 في المئة."


def test_glued_subheading_is_split_off():
    text = "انتهى الاجتماع. مسيرة تركيةوكان الجيش الوطني أكد أنه أسقط مسيرة."
    spans = [text[s.start : s.end] for s in split_sentences(text)]
    assert "مسيرة تركية" in spans
    assert "وكان الجيش الوطني أكد أنه أسقط مسيرة." in spans


def test_share_and_read_also_debris_is_marked():
    text = "خبر مهم عن ليبيا.\nاقرأ أيضا على يورونيوز: عنوان آخر..\nمشاركة :"
    sentences = split_sentences(text)
    debris = [text[s.start : s.end] for s in sentences if s.debris]
    assert debris == ["اقرأ أيضا على يورونيوز: عنوان آخر..", "مشاركة :"]


def test_chunks_have_exact_offsets_and_skip_debris():
    text = ("جملة أولى عن الاجتماع في طرابلس. " * 12) + "\nمشاركة :\n" + "جملة أخيرة."
    doc = _doc(text)
    chunks = chunk_document(doc, target_chars=120, max_chars=200)
    assert len(chunks) > 2
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert "مشاركة" not in chunk.text
        assert len(chunk.text) <= 200
        for s, e in chunk.sentences:
            assert chunk.start <= s < e <= chunk.end


def test_chunks_do_not_cross_pages():
    page1, page2 = "صفحة أولى فيها جملة.", "صفحة ثانية فيها جملة."
    text = page1 + "\n\n" + page2
    doc = _doc(text, pages=((0, len(page1)), (len(page1) + 2, len(text))))
    chunks = chunk_document(doc, target_chars=300, max_chars=500)
    assert [c.page for c in chunks] == [1, 2]


def test_overlong_sentence_is_cut_at_clause_boundaries():
    text = "، ".join(["كلمة أخرى في جملة طويلة جدا"] * 40) + "."
    chunks = chunk_document(_doc(text), target_chars=200, max_chars=300)
    assert all(len(c.text) <= 300 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")
