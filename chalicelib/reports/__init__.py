"""Reports: how fast we answer, where we miss, how much comes in.

A layer above the inbox: it reads the conversation event log's DynamoDB stream (the log is the
seam; the store never learns reports exist), folds each conversation's entries into reopen
cycles (`cycles`), adds what they contribute to counters and mergeable log-bucket histograms
(`sketch`) in 15-minute UTC buckets and UTC days (`aggregates`), exactly once per log entry,
and answers a report with a bounded number of Queries (`summary`), never a Scan.
"""
