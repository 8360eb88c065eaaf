"""The side-by-side benchmark harness behind `make bench` (entry point: ../run.py)."""
