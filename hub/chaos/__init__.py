"""The fault-injection suite (`hub chaos`, `make chaos`): the real hub on private
services, a stream of updates with ground truth, faults, and the exactly-once
check against what the sources had confirmed. See hub/chaos/suite.py."""
