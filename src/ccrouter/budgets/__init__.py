"""Spending limits per client key, per user and global, decided by the shared ledger store."""

from ccrouter.budgets.admission import WARNING_HEADER, BudgetAdmission, BudgetAlert, BudgetExceededError
from ccrouter.budgets.periods import period_bounds

__all__ = ["WARNING_HEADER", "BudgetAdmission", "BudgetAlert", "BudgetExceededError", "period_bounds"]
