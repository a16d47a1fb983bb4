"""dhbot: cancel orders in a DHgate-style seller backend by driving a real browser."""

__version__ = "0.1.0"
