"""Reconciliation: does every input record have exactly one outcome, in input order? And, with the
effects inbox, one inbox row holding the outcome that was published?"""

from kafka_delivery.tools.reconcile.inbox import InboxCheck, InboxReport
from kafka_delivery.tools.reconcile.kafka import Selection, Topics, read_and_reconcile
from kafka_delivery.tools.reconcile.report import Report

__all__ = ["InboxCheck", "InboxReport", "Report", "Selection", "Topics", "read_and_reconcile"]
