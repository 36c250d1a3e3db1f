"""Reply deadlines: a turn's timers (flow.py: a delayed SQS warning per turn, the Step Functions
flow only for turns whose warning was recorded), the consumer of the timer messages and the
safety-net sweeper (timers.py), SLA policies and their matching (policies.py) and the
business-time arithmetic they count deadlines in (calendar.py)."""
