"""Testing helpers for annealq.

:class:`LeapEmulator` is a local stand-in for D-Wave's Leap solver API that
the real Ocean samplers can be pointed at; its answers are classical.
"""

from annealq.testing.leap import FaultSpec, LeapEmulator, parse_faults

__all__ = ["LeapEmulator", "FaultSpec", "parse_faults"]
