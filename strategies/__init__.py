"""Pure rollout strategies: from a Rollout's settings and what is observed, the next safe move.

No I/O and no clock: time-dependent facts (has the scale-down delay passed?) come in as booleans,
and the same facts always give the same `Desired`, so a controller that restarts decides the same
again. The order of safety on every move: scale up before sending traffic; take traffic away
before scaling down; never leave fewer ready pods than the strategy allows.
"""

from strategies.bluegreen import BlueGreenFacts, decide_bluegreen
from strategies.canary import CanaryFacts, decide_canary
from strategies.rolling import IntOrPercent, RollingFacts, decide_rolling, fenceposts
from strategies.steps import Analysis, Pause, SetCanaryScale, SetWeight, Step
from strategies.types import Desired, ReplicaSetState, Role

__all__ = [
    "Analysis",
    "BlueGreenFacts",
    "CanaryFacts",
    "Desired",
    "IntOrPercent",
    "Pause",
    "ReplicaSetState",
    "Role",
    "RollingFacts",
    "SetCanaryScale",
    "SetWeight",
    "Step",
    "decide_bluegreen",
    "decide_canary",
    "decide_rolling",
    "fenceposts",
]
