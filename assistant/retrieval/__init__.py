"""Finding passages: embedders, query planning (concepts in both languages) and hybrid search with fusion."""
