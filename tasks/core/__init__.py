"""Pure pipeline logic (naming, draft validation, draft-to-canonical conversion,
graph building, reference export shapes): takes `schemas` models and plain values,
returns `schemas` models, plain dicts and problem sentences for re-asks; no I/O, no
Prefect, no LLM calls."""
