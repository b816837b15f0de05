"""Lark grammars of the spec language (package data)."""
