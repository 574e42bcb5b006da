"""The effects table: the stock processor's database work in PostgreSQL, consumed from Kafka.

postgres   the bench's own PostgreSQL (scripts/postgres on port 20532), a fresh database per
           run with its stock filled, the ledger checked after the run, the server's CPU
runs       the three contenders in rounds: order-service exactly once with the inbox and
           without it, and a loop written by hand (contenders/naive_effects.py)
"""
