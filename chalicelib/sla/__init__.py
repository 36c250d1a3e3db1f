"""Reply deadlines: the Step Functions flow per turn (flow.py), the consumer of its timers and
the safety-net sweeper (timers.py)."""
