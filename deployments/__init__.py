"""Deployment presets: parameter sets used by `prefect.yaml` and documented runs."""
