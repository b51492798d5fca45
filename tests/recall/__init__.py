"""Recall: full-text search over the stored history, fusion, budget, expansion, the tool and scopes."""
