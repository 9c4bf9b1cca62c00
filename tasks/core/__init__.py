"""Pure pipeline logic: naming, validation of model drafts, draft-to-canonical
conversion, graph building and the reference export shapes.

Inputs are `schemas` models and plain values; outputs are `schemas` models, plain
dicts in the reference JSON shapes, and lists of problem sentences that are sent
back to the language model verbatim. No I/O, no Prefect, no LLM calls.
"""
