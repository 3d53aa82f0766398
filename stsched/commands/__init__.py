"""Subcommands of the `stsched` command line (see stsched/cli.py)."""
