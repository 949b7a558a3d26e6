"""Cluster runs (I/O): a run's hosts in shards on a Dask cluster (`fleetmon run --cluster`).

`shards` cuts the run (pure), `task` is what a worker runs (`entry` sends it there),
`engine` is the client's side.
Dask is an optional dependency (`fleetmon[cluster]`), imported only by a cluster run.
"""
