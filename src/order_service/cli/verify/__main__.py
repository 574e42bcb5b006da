"""`python -m order_service.cli.verify`: `order-service verify` without the installed script, as the
bench and the chaos tests run it (docs/reliability.md)."""

import sys

from order_service.cli import main

main(["verify", *sys.argv[1:]])
