"""Agent specs shipped with ltlagent (package data)."""
