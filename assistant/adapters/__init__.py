"""Adapters to other frameworks (LangChain) over the assistant's own interfaces."""
