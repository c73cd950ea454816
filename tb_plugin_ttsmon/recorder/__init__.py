"""The collection side: sampling and writing. Imports no plugin or web code."""
