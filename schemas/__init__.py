"""Pydantic models only: artifacts, LLM response models, configuration, lineage records.

Nothing here performs I/O; every module imports only pydantic and the standard library.
"""
