"""The ltlagent compiler: spec files in, minimal automata, checks and prompt verification out.

Nothing here imports torch, transformers or outlines; ``ltlagent.runtime`` builds on this package.
"""
