"""Tests of the environment runtime, and the ids of the DentalAppointments fixture.

The fixture output directory (`fixtures/dental`) holds hand-written reference-shaped
exports, data and a tool module. Simulation time in tests: 2025-01-23T15:00-05:00.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "dental"
SERVER = "DentalAppointments"
SIMULATION_TIME = "2025-01-23T15:00:00-05:00"
FUSED = "DentalAppointments_TreatmentBilling"
"""A fused environment of the demo world's servers (see the `demo_output` fixture)."""

ANA = "3f1c2a9e-5b7d-4c1e-9a2b-1d4e5f6a7b8c"
"""Active patient with one upcoming booked and one cancelled appointment."""
BEN = "8b2d4f6a-1c3e-4a5b-8d7f-9e0a1b2c3d4e"
"""Active patient with one upcoming booked appointment."""
CHEN = "c7e9a1b3-d5f7-4b9d-a1c3-e5f7a9b1c3d5"
"""Suspended patient."""

BRIGHT_SMILES = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
"""Lisbon clinic taking new patients."""
HARBOR = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"
"""Porto clinic taking new patients."""
OLD_TOWN = "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f"
"""Lisbon clinic not taking new patients."""

ANA_BOOKED = "d4e5f6a7-b8c9-4d0e-9f2a-3b4c5d6e7f80"
ANA_CANCELLED = "e5f6a7b8-c9d0-4e1f-8a3b-4c5d6e7f8091"
BEN_BOOKED = "f6a7b8c9-d0e1-4f2a-9b4c-5d6e7f8091a2"

FUTURE = "2025-02-10T10:00:00-05:00"
BOOK = {"clinic_id": BRIGHT_SMILES, "scheduled_at": FUTURE}
"""Arguments of `book_appointment` for Bright Smiles (a preview without confirm)."""


def serve_arguments(transport: str, *options: str) -> list[str]:
    """The arguments of `python -m tasks.runtime.serve` for the fixture server
    (run it with the repository root as working directory)."""
    return [
        "-m",
        "tasks.runtime.serve",
        SERVER,
        "--output-dir",
        str(FIXTURE_DIR),
        "--transport",
        transport,
        "--simulation-time",
        SIMULATION_TIME,
        *options,
    ]
