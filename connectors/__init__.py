"""Live data from the plant: one plugin folder per protocol (opcua/, mqtt/), the rules they share
(transform.py), the mapping file (mapping.py, registry.py), and the InfluxDB sink (influxdb/).
See README.md here."""
