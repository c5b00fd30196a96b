"""Shipped emission factor data (YAML with provenance); a package so its data files ship with carbon/."""
