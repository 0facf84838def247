import ponder


def test_all_is_exact() -> None:
    public = {name for name in dir(ponder) if not name.startswith("_")}
    exported = set(ponder.__all__) - {"__version__"}
    submodules = {"backends", "engine", "errors", "ledger", "params", "strategies",
                  "verifiers", "model_files", "server", "sandbox", "evals", "sleep", "cli",
                  "budget", "train"}
    assert exported == public - submodules
