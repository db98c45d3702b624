"""Disclosure control: small counts, and counts that could be worked out from totals, hidden."""
