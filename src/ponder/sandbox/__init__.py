"""A sandbox for model-written code: a separate process, limits, no network.

    from ponder.sandbox import Limits, Sandbox
    result = Sandbox(Limits(wall_seconds=5)).run("print(6 * 7)")
    result.stdout, result.killed_by, result.network_isolated
"""

from ponder.sandbox.isolation import Isolation, IsolationMode, detect_isolation
from ponder.sandbox.limits import KillReason, Limits, SandboxResult
from ponder.sandbox.runner import Sandbox

__all__ = ["Isolation", "IsolationMode", "KillReason", "Limits", "Sandbox", "SandboxResult",
           "detect_isolation"]
