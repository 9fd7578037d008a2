"""Tokens, roles and (later) audit and privacy."""
