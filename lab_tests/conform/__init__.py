"""The conformance suite: any program of the guide's six roles, both byte orders (docs/conformance.md)."""
