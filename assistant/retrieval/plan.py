"""Query planning: what a question asks about (its concepts, with their terms in both languages and
scripts), and how rare each concept is in the corpus."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

from assistant.text.normalize import (
    ARABIC_STOPWORDS,
    ENGLISH_STOPWORDS,
    arabic_relatives,
    article_stem,
    fold,
    is_arabic_token,
    skeleton,
    tokenize,
    word_forms,
)
from assistant.text.english import common_word
from assistant.text.lexicon import arabic_vocabulary, entry_kinds, load_lexicon, related_names, translate_arabic, translate_phrases
from assistant.stores.base import Vocabulary
from assistant.stores.lexical import idf as bm25_idf

# A Latin word this long in a question may be a name written in Arabic in the corpus.
_NAME_MIN_LETTERS = 4
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")



@dataclass
class Concept:
    """One thing a question asks about, with every lexical term that expresses it in either language.

    Attributes:
        label: The question's own word(s), as written.
        terms: BM25 terms for it: its folded and stemmed forms, other spellings of a name in either
            script, and lexicon translations.
        kind: ``name`` (a person, place or organisation: capitalized in English, or listed as one in
            the lexicon), ``number``, ``date`` (a weekday, month or year) or ``word``.
        in_corpus: Whether any of ``terms`` occurs in the index.
        checkable: Whether its absence from a passage means something: it has terms in a script the
            index holds (an English word with no Arabic translation cannot be checked against Arabic
            text), or it is a name (names cross scripts by their consonant skeletons).
        inherited: Taken from an earlier turn of the conversation (the subject of a follow-up).
        spellings: Index terms that may spell a short name in the other script (Umar / عمر,
            ``Vocabulary.short_spellings``): read by the ranking's coverage only. Too loose for
            the decision (Malik also finds الملك, "the king") and never searched for.
    """

    label: str
    terms: frozenset[str]
    kind: str = "word"
    in_corpus: bool = False
    checkable: bool = True
    inherited: bool = False
    spellings: frozenset[str] = frozenset()


@dataclass
class QueryPlan:
    """The weighted lexical terms of a query and what they tell about the corpus.

    Attributes:
        terms: BM25 term → weight.
        concepts: What the question asks about, one entry per content word or lexicon phrase.
        names: Capitalized words of an English question (likely names) → the vocabulary terms their
            consonant skeleton matched in either script.
        unknown: Labels of name concepts that appear nowhere in the index.
        translated: Lexicon phrases found in the question → their forms in the other language.
    """

    terms: dict[str, float] = field(default_factory=dict)
    concepts: list[Concept] = field(default_factory=list)
    names: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    translated: dict[str, tuple[str, ...]] = field(default_factory=dict)


# Weights of expanded terms relative to the question's own terms (1.0): a spelling variant of a
# name is nearly as good as the name; a dictionary translation or a skeleton match of a word is
# weaker evidence.
VARIANT_EXACT_SKELETON = 0.8
TRANSLATION_WEIGHT = 0.7
LATIN_NAME_WEIGHT = 1.0
# Follow-ups: the previous question's terms count half, the previous answer's a little.
FOLLOWUP_WEIGHT = 0.5
CONTEXT_WEIGHT = 0.05
_CAPITALIZED = re.compile(r"\b[A-Z][a-zA-Z]+(?:'s)?\b")
# The measure after "how" asks for a number; the passage that answers says "220 kilometres", not "long".
_HOW_MEASURES = frozenset("long far big large tall high deep wide old often soon heavy".split())
_SENTENCE_OPENERS = frozenset(".!?:;\"'“‘«([—-")
_QUESTION_OPENERS = frozenset("""what which who whom whose when where why how is are was were do does did can could
    should would will has have had tell list give show find name describe explain summarize""".split())


# Weight of a concept carried over from an earlier question, relative to one of the question itself.
INHERITED_WEIGHT = 0.5


def concept_weights(plan: QueryPlan, document_frequency: Callable[[str], int], n_docs: int) -> dict[str, float]:
    """Rarity weight (BM25 idf of its rarest known term) of each checkable concept, by label; a concept
    found nowhere in the corpus gets the weight of a term seen once. Used by the fusion's coverage and by
    the evidence decision (``SearchResult.weights`` carries them from one to the other)."""
    n = max(n_docs, 1)
    weights: dict[str, float] = {}
    for concept in plan.concepts:
        if not concept.checkable:
            continue
        known = [df for df in (document_frequency(t) for t in concept.terms) if df > 0]
        weight = max(bm25_idf(n, df) for df in known) if known else bm25_idf(n, 1)
        # A follow-up's inherited subject counts, but less than what the follow-up itself asks.
        weights[concept.label] = weight * (INHERITED_WEIGHT if concept.inherited else 1.0)
    return weights


def _vocabulary_scripts(vocabulary: Vocabulary) -> tuple[bool, bool]:
    """(has Arabic terms, has Latin terms): which scripts the index's text is in. Cached per vocabulary
    object and size, since a vocabulary only grows between commits."""
    size = len(vocabulary.vocab)
    cached = _SCRIPTS_CACHE.get(id(vocabulary))
    if cached is not None and cached[0] == size:
        return cached[1]
    arabic = latin = False
    for term in vocabulary.vocab:
        if is_arabic_token(term):
            arabic = True
        elif term[:1].isascii() and term[:1].isalpha():
            latin = True
        if arabic and latin:
            break
    _SCRIPTS_CACHE[id(vocabulary)] = (size, (arabic, latin))
    return arabic, latin


_SCRIPTS_CACHE: dict[int, tuple[int, tuple[bool, bool]]] = {}


def plan_query(query: str, vocabulary: Vocabulary) -> QueryPlan:
    """Expand a question into weighted BM25 terms and the concepts it asks about.

    The same steps for either language of question and corpus:

    * its own folded and stemmed terms (weight 1);
    * lexicon translations into the other language (embassy → سفارة, سفارة → embassy);
    * names matched by consonant skeleton in either script (Lavrov → لافروف, ترهوني → tarhouni,
      غوتيرش → غوتيريش): the cheapest cross-lingual signal for names, and the one that survives
      the many spellings of a name in Arabic news.
    """
    plan = QueryPlan()
    vocab = vocabulary.vocab
    has_arabic, has_latin = _vocabulary_scripts(vocabulary)
    for term in tokenize(query):
        plan.terms[term] = max(plan.terms.get(term, 0.0), 1.0)

    def add(terms: dict[str, float]) -> None:
        for term, weight in terms.items():
            plan.terms[term] = max(plan.terms.get(term, 0.0), weight)

    # Lexicon phrases first (multi-word entries: "foreign minister", "وزير الخارجية"), then single words.
    # Both lookups and the loop below split the same folded text the same way, so positions agree.
    folded = fold(query)
    words = _WORD_RE.findall(folded)
    phrase_at: dict[int, tuple[str, tuple[str, ...], str]] = {}
    for phrase, forms, first, last in translate_phrases(folded):
        plan.translated[phrase] = forms
        for position in range(first, last):
            phrase_at[position] = (phrase, forms, entry_kinds().get(phrase, "word"))
    arabic_phrase_of: dict[str, tuple[str, tuple[str, ...]]] = {}
    for arabic, english in translate_arabic(folded) if _ARABIC_WORD.search(folded) else []:
        plan.translated[arabic] = english
        kind = entry_kinds().get(english[0], "word")  # the most direct sense decides (سكان: residents)
        for word in arabic.split():
            arabic_phrase_of.setdefault(word, (arabic, english, kind))  # type: ignore[arg-type]

    # Capitalized words, and whether each opens a sentence or a quotation (where a capital marks no name).
    capitalized: dict[str, tuple[int, bool]] = {}
    for match in _CAPITALIZED.finditer(query):
        written = match.group(0).removesuffix("'s")
        before = query[: match.start()].rstrip()
        opens = not before or before[-1] in _SENTENCE_OPENERS
        capitalized.setdefault(written.lower(), (match.start(), opens and common_word(written)))
    # A question written with capitals that writes a name of the lexicon in lower case means the
    # common word ("tell us", not the US); a question all in lower case says nothing either way.
    cased = any(ch.isupper() for ch in query)
    seen_phrases: set[str] = set()
    for position, word in enumerate(words):
        if word in ARABIC_STOPWORDS or word in ENGLISH_STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        if position > 0 and words[position - 1] == "how" and word in _HOW_MEASURES:
            continue  # "how long", "how far": what is asked for (a number), not a word to find
        own = set(_word_terms(word))
        expansions: dict[str, float] = {}
        kind = "word"
        label = word
        spellings: frozenset[str] = frozenset()
        if word.isdigit():
            kind = "number"
            checkable = True
        elif is_arabic_token(word):
            entry = arabic_phrase_of.get(word)
            if entry is not None:
                phrase, english, kind = entry  # type: ignore[misc]
                if phrase in seen_phrases:
                    continue  # a multi-word phrase is one concept, made at its first word
                label, own = _phrase_concept(phrase, english, seen_phrases, expansions)
            latin_variant = False
            if len(word) >= 3:
                for variant, weight in vocabulary.variants(word):
                    expansions[variant] = max(expansions.get(variant, 0.0), weight)
                    latin_variant = latin_variant or not is_arabic_token(variant)
            if kind == "word" and entry is None and has_arabic and not word_forms(word) & arabic_vocabulary() \
                    and len(skeleton(word)) >= 4 and not any(t in vocab for t in own) and not _ARABIC_INFLECTED.search(word):
                # In no document of an Arabic corpus, not a common news word, and not a verb or a
                # noun carrying a pronoun (names rarely do): most likely a name the corpus lacks.
                # (Over an English corpus an Arabic word the lexicon does not know says nothing: it
                # may be any word.)
                kind = "name"
            elif kind == "word" and latin_variant:
                kind = "name"  # spelled like a name of the English documents (ترهوني → tarhouni)
            checkable = has_arabic or bool(expansions) or (kind == "name" and len(skeleton(word)) >= 3)
        else:
            entry = phrase_at.get(position)
            if entry is not None and entry[2] == "name" and entry[0] == word and cased and word not in capitalized \
                    and common_word(word):
                entry = None
            if entry is not None:
                phrase, forms, kind = entry
                if phrase in seen_phrases:
                    continue
                label, own = _phrase_concept(phrase, forms, seen_phrases, expansions)
            name = word.removesuffix("'s")  # "Sohar's port": the name is Sohar
            start, common = capitalized.get(name, (None, False))
            opener = start == 0 and word in _QUESTION_OPENERS
            # "Narrated ...", "... said: 'Whenever ...'": a common word opening a sentence or a quotation
            # (a name of the lexicon stays one). Inside a sentence a capital is kept as a name: "the
            # Museum of Medina Crafts" is capitals on common words.
            common = common and not (entry is not None and entry[2] == "name")
            if start is not None and not opener and not common and len(name) >= _NAME_MIN_LETTERS:
                variants = [v for v, _ in vocabulary.variants(name)]
                plan.names[name] = variants
                for variant in variants:
                    expansions[variant] = max(expansions.get(variant, 0.0), LATIN_NAME_WEIGHT)
                spellings = frozenset(vocabulary.short_spellings(name))
                if entry is None:
                    kind = "name"
            # A name crosses scripts by its consonant skeleton, so its absence means something even
            # over a corpus in the other language.
            checkable = has_latin or bool(expansions) or (kind == "name" and len(skeleton(word)) >= 3)
        add(expansions)
        terms = frozenset(own | set(expansions))
        in_corpus = any(t in vocab for t in terms)
        if not in_corpus and kind == "word" and is_arabic_token(word):
            # An Arabic word the corpus holds under another form (مغادرة asked, يغادر written) is
            # known: only its absence in every form says the corpus lacks it. Names keep the exact test.
            in_corpus = any(t in vocab for t in arabic_relatives(word))
        plan.concepts.append(Concept(label, terms, kind, in_corpus, checkable, spellings=spellings - terms))
        if kind == "name" and checkable and not in_corpus:
            plan.unknown.append(label)
    return plan


@lru_cache(maxsize=1 << 16)
def _word_terms(word: str) -> tuple[str, ...]:
    """``tokenize(word)`` of one folded word of a question (kept: the same words recur across questions)."""
    return tuple(tokenize(word))


def _phrase_concept(phrase: str, translations: Sequence[str], seen: set[str], expansions: dict[str, float]) -> tuple[str, set[str]]:
    """A lexicon phrase as one concept: its label and own terms; its translations join ``expansions``."""
    seen.add(phrase)
    name = entry_kinds().get(phrase) == "name"
    for translation in translations:
        # A common noun is written with and without the article; a name keeps its own form.
        other = None if name else article_stem(translation)
        for term in (*tokenize(translation), *((other,) if other else ())):
            expansions[term] = TRANSLATION_WEIGHT
    return phrase, set(tokenize(phrase)) | _related_terms((phrase, *translations))


@lru_cache(maxsize=1 << 12)
def _related_terms(entries: tuple[str, ...]) -> frozenset[str]:
    """Terms, in both languages, of the lexicon names related to these entries (a country for its
    people, an acronym for its full name: ``lexicon.related_names``): a passage holding them holds the
    concept. Not search terms."""
    related, lexicon = related_names(), load_lexicon()
    out: set[str] = set()
    for entry in entries:
        for other in related.get(entry, ()):
            out.update(tokenize(other))
            # One-word forms only: a phrase's words are not each the name (العاصمة of "العاصمة التونسية").
            for form in lexicon.get(other, ()):
                if " " not in form:
                    out.update(tokenize(form))
    return frozenset(out)


# A future-tense verb (سيدير، ستوفر) or a word with an attached pronoun (ستوفرها، قواتهم).
_ARABIC_INFLECTED = re.compile(r"^(?:س[يتنا]|[وف]?(?:سي|ست))\w{3,}|\w{3,}(?:ها|هم|هما|هن|كم|كما|نا)$")
_WORD_RE = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")
_ARABIC_WORD = re.compile(r"[\u0621-\u064A]")
