"""The ltlagent runtime (constrained decoding on a local model). Imports the compiler, never the reverse."""
