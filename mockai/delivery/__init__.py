"""What delivery applies, and the stage that applies it: the fault vocabulary, seeded chaos,
rate-limit budgets, timing, and the writer that puts an answer on the socket.
"""
