"""Command-line entry points (`shiftstream ...`) and deployment helpers."""
