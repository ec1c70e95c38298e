"""Reports: the summary of a period (`summary`) and self-service figures (`selfservice`). Read-only.
May import features (CSAT, self-service) and below.
"""
