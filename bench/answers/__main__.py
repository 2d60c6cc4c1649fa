"""`python -m bench.answers`: see bench/answers/run.py (options: --help)."""

from bench.answers.run import main

raise SystemExit(main())
