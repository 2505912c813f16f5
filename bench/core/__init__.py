"""What every layer shares: checked options, budgets, arithmetic, the run folder and its resume state."""
