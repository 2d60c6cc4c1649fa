"""Routing code that is NOT on the serving path: fitting the semantic-head router's heads and
calibrating its thresholds (`heads`, `calibration`), evaluating routers on labelled data
(`evaluation`) and choosing confidence thresholds from those evaluations (`thresholds`).

The serving path (orchestrator/routing/*.py) imports from here only lazily, when the default
semantic-head router fits its head at start-up (`SemanticHeadRouter.warm_up()`); routing a turn
never does. Benchmarks (bench/router_*.py), `sidebar-assistant eval-router` and the tests use it.
"""
