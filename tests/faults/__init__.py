"""The fault suite (issue 21): real ``nextbest serve`` processes under load while a fault
is injected and lifted; a checker compares what the client was acknowledged with the
decision log and the model's counters. ``python -m tests.faults [--full] [SCENARIO ...]``
runs it; tests/test_faults.py runs the short version (docs/operations.md, "Fault suite")."""
