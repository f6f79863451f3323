"""Text that documents and questions share: normalization, the news lexicon and glosses, sentences, dates."""
