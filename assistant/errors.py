"""The assistant's exception hierarchy.

Library code raises these; only the CLI and the UI turn them into user-facing messages.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base class of every error the assistant raises on purpose."""


class ConfigError(AssistantError):
    """A bad argument or setting (the message names the value)."""


class MissingDependencyError(AssistantError):
    """An optional dependency is not installed; the message says what to install."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f"pip install '{package}'" if extra is None else f"pip install -e '.[{extra}]'"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"The package {package!r} is not installed{what}. Install it with: {hint}")
        self.package = package


class DocumentError(AssistantError):
    """A file could not be turned into a document. ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class UnsupportedFileError(DocumentError):
    """The file type is not one the assistant reads."""


class EmptyDocumentError(DocumentError):
    """The file holds no text (empty, whitespace only, or a PDF without a text layer)."""


class EncryptedDocumentError(DocumentError):
    """The PDF is encrypted and cannot be read without a password."""


class CorruptDocumentError(DocumentError):
    """The file is damaged, truncated, binary, or in an encoding that cannot be decoded."""


class DocumentTooLargeError(DocumentError):
    """The file is bigger than the configured limit."""


class DocumentIdCollisionError(AssistantError):
    """Two different files map to the same document id."""


class IndexError_(AssistantError):
    """Base class for problems with the on-disk index."""


class IndexMismatchError(IndexError_):
    """The index was built with another model, format or settings than the ones requested."""


class IndexCorruptError(IndexError_):
    """The index files are missing, damaged or disagree with each other."""


class IndexLockedError(IndexError_):
    """Another process is writing to the index."""


class UnknownDocumentError(AssistantError):
    """A document id that is not in the index."""


class QuestionError(AssistantError):
    """A question that cannot be asked (empty, punctuation only, ...)."""


class PromptTemplateError(AssistantError):
    """A prompt template is missing or uses a variable that was not supplied."""


class EmbeddingEndpointError(AssistantError):
    """An embedding server failed, refused the request or answered with another model or dimension."""


class LLMError(AssistantError):
    """The language model backend failed or is misconfigured."""


class FetchError(DocumentError):
    """A web page, feed or sitemap could not be fetched or used. ``path`` is the URL."""


class RefusedURLError(FetchError):
    """A URL the fetcher will not open: another scheme than http(s), a private or loopback address
    (without ``allow_private``), or a path robots.txt disallows."""
