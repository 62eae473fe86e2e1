"""Shared code of ringcast's bare-metal tools (tuning/audit, tuning/irq-affinity).

Standard library only, Python 3.9+ (Debian 12 ships 3.11). Nothing here writes to the
system; irq-affinity does its own writes.
"""
