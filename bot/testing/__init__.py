"""Helpers for tests and benchmarks (throwaway database servers)."""
