"""Analyse stage: deltas per host and VM, fleet statistics, the report model (pure but for
`executor`, which spreads the per-host work over an Executor).

host.py      host, disk, NIC and filesystem rows from two samples
vms.py       VM rows and the hypervisor's figures (virsh, xl/xentop)
fleet.py     fleet statistics and outliers
pipeline.py  raw output -> HostReport -> Report
executor.py  analyse many hosts over a concurrent.futures Executor
"""
