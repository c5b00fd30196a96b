"""OPC UA: the client source (client.py), the simulated PLC (plc.py), browse (browse.py), certificates (security.py)."""
