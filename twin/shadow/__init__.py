"""The live shadow: Samples routed into the event log, the live twin's rolling KPIs, recorded data
replayed through the same router, and the end-of-shift forecast forked from "now"."""
