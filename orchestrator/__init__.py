"""Per-session orchestration: routing, parallel agents, synthesis."""
