"""Processors shipped with the service; set one with ORDER_SERVICE_PROCESSING__PROCESSOR.

    stock    reserves each item's stock in PostgreSQL and appends to an order ledger, exactly once
             through the inbox (`order_service.processors.stock:processor`)

The default, `order_service.domain.rules:process_order`, applies the order rules and nothing else.
"""
