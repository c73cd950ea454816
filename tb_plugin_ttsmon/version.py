"""The package version, kept in one place for setup.py and the run facts."""

VERSION = "0.1.0"
