"""The answer pipeline's seams: both answerers satisfy the ``Answerer`` Protocol, history may be
``Turn`` records or the ``{"role", "content"}`` dicts the doors pass, and they give the same answer."""

from __future__ import annotations

import re

import pytest

from assistant import Assistant
from assistant.answer.base import Answerer
from assistant.answer.extractive import ExtractiveAnswerer
from assistant.answer.llm import LLMAnswerer
from assistant.errors import ConfigError
from assistant.records import Turn


def test_both_answerers_are_answerers() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    assert isinstance(ExtractiveAnswerer(), Answerer)
    assert isinstance(LLMAnswerer(FakeListChatModel(responses=["x"])), Answerer)
    assert not isinstance(object(), Answerer)


def test_turn_round_trips_through_its_dict() -> None:
    turn = Turn(role="assistant", content="It reopens in Tripoli [1].")
    assert turn.to_dict() == {"role": "assistant", "content": "It reopens in Tripoli [1]."}
    assert Turn.from_dict(turn.to_dict()) == turn


@pytest.fixture(scope="module")
def bot(tmp_path_factory) -> Assistant:
    folder = tmp_path_factory.mktemp("pipeline")
    (folder / "embassy.txt").write_text(
        "Russia reopens its embassy in Libya\n\nForeign Minister Sergei Lavrov announced that the Russian embassy in "
        "Libya will resume its work in Tripoli. The embassy has operated from Tunis since 2013, the ministry said.\n",
        encoding="utf-8")
    assistant = Assistant(folder / "index", embedder="hash")
    assistant.ingest([folder / "embassy.txt"])
    return assistant


def test_history_as_turns_or_dicts_gives_the_same_answer(bot: Assistant) -> None:
    first = bot.ask("What did Lavrov announce about the embassy?")
    dicts = [{"role": "user", "content": first.question}, {"role": "assistant", "content": first.text}]
    turns = [Turn.from_dict(d) for d in dicts]
    assert bot.ask("Where does it work from?", dicts).to_dict() == bot.ask("Where does it work from?", turns).to_dict()
    assert bot.search("Where does it work from?", history=turns).hits == bot.search("Where does it work from?", history=dicts).hits


def test_a_bad_history_turn_is_named(bot: Assistant) -> None:
    bad = {"role": "system", "content": "x"}
    with pytest.raises(ConfigError, match=re.escape(f'Each history turn must be {{"role": "user"|"assistant", "content": str}}, got {bad!r}')):
        bot.ask("Where does it work from?", [bad])



def test_a_model_that_is_not_an_answerer_is_refused_by_name(tmp_path):
    from assistant import Assistant
    from assistant.errors import ConfigError

    class ChatModel:  # e.g. a LangChain chat model passed as it is, which would silently answer nothing
        def invoke(self, prompt):
            return prompt

    with pytest.raises(ConfigError, match="llm must be an Answerer.*got ChatModel"):
        Assistant(tmp_path / "index", embedder="hash", llm=ChatModel())
