"""Reconciliation: does every input record have exactly one outcome, in input order?"""

from kafka_delivery.tools.reconcile.kafka import Selection, Topics, read_and_reconcile
from kafka_delivery.tools.reconcile.report import Report
from kafka_delivery.tools.reconcile.scan import CannotConnect, CannotRead

__all__ = ["CannotConnect", "CannotRead", "Report", "Selection", "Topics", "read_and_reconcile"]
