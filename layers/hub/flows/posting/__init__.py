"""Approved time and expenses -> the ERP of their legal entity (the time-expense-posting flow).

``rules`` holds one pure function per check before posting; ``checks`` runs them all in order for one time
entry or expense line, so a caller parks an entry with every reason at once.
"""

FLOW = "time-expense-posting"
