import pytest

from assistant.text.normalize import (
    clean_for_embedding,
    detect_language,
    edit_distance_at_most_one,
    fold,
    skeleton,
    tokenize,
)


def test_fold_unifies_letters_digits_and_strips_marks():
    assert fold("إِسْتِئْنَافُ ٱلسَّفَارَةِ ١٤٥ مؤقتـــا على") == "استيناف السفاره 145 موقتا علي"


def test_clean_for_embedding_keeps_letters_but_repairs_scraping_glue():
    text = "حذر الاتحاد من تفاقم الأزمة., ودعا الوزير. مسيرة تركيةوكان الجيش"
    cleaned = clean_for_embedding(text)
    assert "الأزمة. ودعا" in cleaned
    assert "تركية وكان" in cleaned
    assert "أ" in cleaned  # hamza seats kept for the dense model


def test_presentation_forms_fold_to_base_letters():
    assert fold("ﻟﻴﺒﻴﺎ") == "ليبيا"


def test_tokenize_is_unicode_aware_and_drops_stopwords():
    terms = tokenize("ماذا أعلن لافروف في طرابلس؟ What did Lavrov announce?")
    assert "اعلن" in terms and "لافروف" in terms and "طرابلس" in terms
    assert "lavrov" in terms and "announce" in terms
    assert "في" not in terms and "what" not in terms


def test_tokenize_emits_stem_next_to_surface_form():
    terms = tokenize("السفارة")
    assert "السفاره" in terms and "سفار" in terms


@pytest.mark.parametrize("spelling", ["غوتيرش", "غوتيريش", "غوتيريس", "جوتيريش", "Guterres"])
def test_guterres_spellings_share_one_skeleton(spelling):
    assert skeleton(fold(spelling)) == skeleton(fold("غوتيريش"))


def test_unrelated_names_have_different_skeletons():
    assert skeleton("ماكرون") != skeleton("لافروف")


def test_edit_distance_at_most_one():
    assert edit_distance_at_most_one("TRBL", "TRBLS")
    assert edit_distance_at_most_one("GTRS", "GDRS")
    assert not edit_distance_at_most_one("GTRS", "LFRF")


@pytest.mark.parametrize(
    "text, lang",
    [("What did Lavrov announce?", "en"), ("ماذا أعلن لافروف؟", "ar"), ("ما موقف NATO من ليبيا؟", "ar"), ("Qu'a dit Lavrov ?", "en")],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang
