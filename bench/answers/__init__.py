"""The end-to-end answer benchmark: labelled agent questions over the demo tenant, asked through
the real Socket.IO path of a running assistant, scored on what the answer states and cites.

`cases.py` is the case format and loader; `python -m bench.answers` runs it (`make bench-answers`).
"""
