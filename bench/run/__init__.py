"""The harness: run specs and suites, records and the results table, executors, the worker and the driver."""
