"""A PACT Technical Specifications v3 host system: the plant's product footprints, shared with its
customers over HTTPS (``factory-twin pact-api``). See twin/pact_api/app.py for the routes."""
