"""Deciding and writing answers, one stage per module; ``Assistant.ask_stream`` drives them.

``base`` (the ``Answerer`` Protocol and the records between stages), ``followup`` (follow-ups and
their rewrite), ``evidence`` and ``decide`` (answer / partial / abstain), ``extractive`` (quoted
answers), ``llm`` (the model's answerer) with ``generate``, ``verify``, ``citations``, ``markers``,
``injection``, ``fallback``, ``rewrite``, ``translate``; model clients in ``chat``, ``models``,
``gguf``, ``llama_server``; templates in ``prompts``.
"""
