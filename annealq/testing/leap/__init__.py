"""Local emulator of D-Wave's Leap solver API (SAPI), for tests and demos.

Answers are classical (simulated annealing), never quantum hardware.
"""

from annealq.testing.leap.emulator import LeapEmulator, main
from annealq.testing.leap.faults import FaultSpec, parse_faults

__all__ = ["LeapEmulator", "FaultSpec", "parse_faults", "main"]
