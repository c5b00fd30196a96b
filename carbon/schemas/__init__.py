"""JSON Schemas factory-twin validates its exchange documents against (package data)."""
