"""Prefect steps and the libraries they use (llm, store, core, runtime)."""
