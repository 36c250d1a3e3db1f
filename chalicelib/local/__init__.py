"""Local mode only (make run, tests, bench): never imported by the deployed handlers."""
