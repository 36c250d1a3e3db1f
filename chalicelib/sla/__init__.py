"""Reply deadlines: the Step Functions flow per turn (flow.py), the consumer of its timers and
the safety-net sweeper (timers.py), SLA policies and their matching (policies.py) and the
business-time arithmetic they count deadlines in (calendar.py)."""
