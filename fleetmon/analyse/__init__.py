"""Analyse stage: deltas per host and VM, fleet statistics, the report model (pure; the
executor that spreads the per-host work is the caller's).

host.py      host, disk, NIC and filesystem rows from two samples
vms.py       VM rows and the hypervisor's figures (virsh, xl/xentop)
fleet.py     fleet statistics and outliers
pipeline.py  raw output -> HostReport -> Report
executor.py  analyse many hosts as picklable tasks on a given Executor
"""
