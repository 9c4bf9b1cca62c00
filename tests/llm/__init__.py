"""Tests of the LLM layer (client, cassettes, transports, replay server)."""
