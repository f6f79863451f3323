"""Deciding and writing answers: the evidence for a question, the answer / partial / abstain decision."""
