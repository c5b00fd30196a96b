"""Carbon accounting: emission factors with provenance, Scope 1 and 2, allocation, reports."""
