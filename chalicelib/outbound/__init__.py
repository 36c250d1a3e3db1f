"""Our replies on their way out: the window rules checked before queueing (policy) and the
outbox worker that sends them (worker)."""
