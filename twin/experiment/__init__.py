"""What-if experiments: a plan of scenarios as overrides of a base factory, replications with common
random numbers (the same seeds in every scenario), and statistics users can trust.

``plan`` reads and checks the plan file, ``replication`` and ``cluster`` run the replications (on
Dask), ``stats`` summarises them (Student t intervals, paired differences against the base),
``runner`` ties these together (with the optional sequential mode) and ``report`` prints the table
and writes the JSON, the CSV of replications and the chart.
"""
