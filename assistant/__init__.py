"""Bilingual (Arabic/English) retrieval assistant with cited answers.

    from assistant import Assistant
    bot = Assistant()                 # index/ (or ASSISTANT_INDEX), offline multilingual-e5-small
    bot.ingest(["seeds/"])
    answer = bot.ask("What did Lavrov announce?")
    print(answer.text); print(answer.citations[0].quote)
"""

from assistant.core import Assistant, IngestReport
from assistant.errors import AssistantError
from assistant.records import Answer, Chunk, Citation, Document, Hit

__all__ = ["Answer", "Assistant", "AssistantError", "Chunk", "Citation", "Document", "Hit", "IngestReport"]
__version__ = "0.1.0"
