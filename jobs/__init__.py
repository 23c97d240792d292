"""Thin engine adapters (PyFlink, Beam) around the core. No business logic here."""
