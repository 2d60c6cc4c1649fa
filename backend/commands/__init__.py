"""CLI sub-commands; each module exposes one click command wired in backend.cli."""
