"""Tools for developers, not part of any service: the AsyncAPI generator."""
