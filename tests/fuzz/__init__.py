"""Fuzzing: every adapter parser and the router's input, with hypothesis (and atheris).

CI runs a fixed number of cases per target (``test_fuzz.py``); ``python -m tests.fuzz
--minutes N`` runs longer. See ``targets.py`` for the contract and how to add a target.
"""
