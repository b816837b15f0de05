"""The retail world (τ-bench retail, offline): its database and per-episode copies (``world``), the 15
tools (``tools``; ``binding`` for ltlagent ToolBoxes), replay of ground-truth actions (``replay``),
scripted users (``users``) and an independent policy monitor with per-episode metrics (``monitor``).
Only the standard library and jsonschema are imported."""
from .world import Episode, World, WorldError, default_folder

__all__ = ["Episode", "World", "WorldError", "default_folder"]
