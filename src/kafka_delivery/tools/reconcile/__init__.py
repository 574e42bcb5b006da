"""Reconciliation: does every input record have exactly one outcome, in input order?"""

from kafka_delivery.tools.reconcile.kafka import Selection, Topics, read_and_reconcile
from kafka_delivery.tools.reconcile.report import Report

__all__ = ["Report", "Selection", "Topics", "read_and_reconcile"]
