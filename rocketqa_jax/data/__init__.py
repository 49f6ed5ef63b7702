"""Readers for retrieval data sets: passages, questions and their labels."""
