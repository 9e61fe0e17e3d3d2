"""Reporting: figures, reproduced tables, the claims audit, the paper reference numbers."""
