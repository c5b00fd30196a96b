"""Live data from OPC UA and MQTT sources, simulated PLCs and sensors, and the InfluxDB writer."""
