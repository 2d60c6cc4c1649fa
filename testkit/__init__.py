"""What the tests and the benchmarks both drive the assistant with.

One home for the helpers that tests/ and bench/ share, so neither imports the other: a free TCP
port and a live in-process server (servers), the machine a measurement ran on (machine), a
recording Socket.IO client (client), scripted agents and turn handlers (agents, handlers) and an
in-process Vertex AI REST server (fake_vertex). It imports the product packages, never tests/ or
bench/.
"""
