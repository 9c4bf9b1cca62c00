"""The LLM layer: the only code that imports openai or instructor.

Inputs: `LLMConfig`, environment variables and cassettes. Output: an `LLMClient`
(`build_llm_client`) returning validated pydantic answers per call key, a usage
ledger, cassette record/replay and a replay HTTP server. Side effects happen only
when the functions are called: nothing is built at import time.
"""
