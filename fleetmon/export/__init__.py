"""Network sinks (I/O edge): the Pushgateway, InfluxDB and Alertmanager, with timeouts and
retries. What they send is made by the pure renderers (render.prom, .influx, .alerts)."""
