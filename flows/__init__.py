"""Thin Prefect flows: order the steps, fan out over items, hand artifacts on."""
