"""The I/O-bound table: each order awaits a simulated call (runs.py), the processor order-service
loads for it (processor.py), and the pyrallel-consumer contender's own venv (pyrallel_venv.py).

Nothing is imported here: order-service and the FastStream contender import processor.py in the
process being measured, and must not load the harness with it.
"""
